// MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s, no credentials) for warm-up.ts.
export function connectPacketBytes(clientId: string): Buffer {
  const id = Buffer.from(clientId)
  const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 0x02, 0, 60, id.length >> 8, id.length & 0xff]), id])
  if (body.length > 127) throw new RangeError('warm-up client id too long')
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}
