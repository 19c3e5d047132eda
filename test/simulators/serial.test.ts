import t from 'tap'
import { decodeUplink, type Uplink } from '../../firmware-protocol/index.ts'
import { openSerialDock, dockFrames } from '../../simulators/serial-dock.ts'
import { openSerialGateway, type SerialUplink } from '../../ingest/serial-gateway.ts'
import { ptyPair } from '../helpers/pty.ts'

const envelopes = (n: number): Uplink[] =>
  Array.from({ length: n }, (_, i) => ({ seq: i + 1, deviceTimeMs: Date.UTC(2025, 2, 10, 8) + i * 60_000, kind: 'checkin', checkin: { tagId: `04AA${String(i).padStart(4, '0')}`, method: 'nfc', batteryPct: 80 } }))

t.test('the dock uploads stored check-ins over a pty; the gateway commits each with its device id, through line noise', async (t) => {
  const [a, b] = await ptyPair(t)
  const got: SerialUplink[] = []
  const rejects: string[] = []
  const gw = await openSerialGateway({ path: b, commit: async (m) => void got.push(m), onReject: (r) => void rejects.push(r.reason) })
  t.teardown(() => gw.close())
  const dock = await openSerialDock({ path: a })
  t.teardown(() => dock.close())

  const envs = envelopes(40)
  const frames = dockFrames('patrol-007', envs)
  const noise = [Buffer.from('AT+RESET\r\n'), Buffer.from([0x13, 0x37, 0xff, 0x00]), Buffer.from([0x05, 0x01, 0x02, 0x03, 0x04, 0x00]), Buffer.alloc(3, 0)]
  for (const [i, f] of frames.entries()) {
    await dock.writeRaw(noise[i % noise.length]!)
    await dock.writeRaw(Buffer.concat([Buffer.from([0]), f])) // what upload() writes: 0x00 ends the noise
  }
  // A frame cut in half by the line, then a good one: only the good one survives.
  await dock.writeRaw(frames[0]!.subarray(0, 10))
  await dock.writeRaw(Buffer.from([0x00]))
  await dock.upload('patrol-007', [{ seq: 41, deviceTimeMs: Date.UTC(2025, 2, 10, 9), kind: 'batch', batch: { items: envelopes(1).map((e) => ({ ...e, seq: 41 })) } } as Uplink])
  // An envelope without a device id is refused, not guessed.
  const { encodeFrame, encodeUplink } = await import('../../firmware-protocol/index.ts')
  await dock.writeRaw(encodeFrame(encodeUplink(envs[0]!)))

  const deadline = Date.now() + 5000
  while ((got.length < 41 || rejects.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await gw.idle()
  t.equal(got.length, 41, 'every valid frame recovered')
  t.same(got.map((m) => decodeUplink(m.payload).ok && (decodeUplink(m.payload) as { value: Uplink }).value.seq), [...envs.map((e) => e.seq), 41])
  t.ok(got.every((m) => m.deviceId === 'patrol-007' && m.kind === 'checkin' && m.topic === 'gp/v1/patrol-007/up/checkin'))
  t.equal(rejects.length, 1)
  t.match(rejects[0]!, /no device_id/)
  const s = gw.stats
  t.ok(s.crcErrors + s.cobsErrors + s.runts > 0, `line errors counted: ${JSON.stringify(s)}`)
  t.ok(s.empty > 0, 'idle delimiters counted')
  t.equal(s.committed, 41)
})

t.test('a failing commit (database down) is retried, never dropped; order is kept', async (t) => {
  const [a, b] = await ptyPair(t)
  const got: number[] = []
  let failuresLeft = 3
  const gw = await openSerialGateway({
    path: b,
    commit: async (m) => {
      if (failuresLeft > 0) {
        failuresLeft--
        throw new Error('database unreachable')
      }
      const r = decodeUplink(m.payload)
      if (r.ok) got.push(r.value.seq)
    },
  })
  t.teardown(() => gw.close())
  const dock = await openSerialDock({ path: a })
  t.teardown(() => dock.close())
  for (const f of dockFrames('patrol-008', envelopes(5))) await dock.writeRaw(Buffer.concat([Buffer.from([0]), f]))
  const deadline = Date.now() + 8000
  while (got.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await gw.idle()
  t.same(got, [1, 2, 3, 4, 5], 'every frame committed once, in order')
  t.equal(gw.stats.commitErrors, 3, 'each failure counted')
  t.equal(gw.stats.committed, 5)
})

t.test('a reject that cannot be stored yet is retried, and the frames after it wait their turn', async (t) => {
  const [a, b] = await ptyPair(t)
  const order: string[] = []
  let failuresLeft = 2
  const gw = await openSerialGateway({
    path: b,
    commit: async (m) => {
      const r = decodeUplink(m.payload)
      if (r.ok) order.push(`seq ${r.value.seq}`)
    },
    onReject: async (r) => {
      if (failuresLeft > 0) {
        failuresLeft--
        throw new Error('database unreachable')
      }
      order.push(r.code)
    },
  })
  t.teardown(() => gw.close())
  const dock = await openSerialDock({ path: a })
  t.teardown(() => dock.close())
  const { encodeFrame, encodeUplink } = await import('../../firmware-protocol/index.ts')
  await dock.writeRaw(Buffer.concat([Buffer.from([0]), encodeFrame(encodeUplink(envelopes(1)[0]!))])) // no device id
  for (const f of dockFrames('patrol-009', envelopes(2))) await dock.writeRaw(Buffer.concat([Buffer.from([0]), f]))
  const deadline = Date.now() + 8000
  while (order.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await gw.idle()
  t.same(order, ['GP_SERIAL_NO_DEVICE_ID', 'seq 1', 'seq 2'], 'stored once, in line order')
  t.equal(gw.stats.rejected, 1)
  t.equal(gw.stats.commitErrors, 2)
})
