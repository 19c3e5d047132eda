// Raw CONNECT → CONNACK return code over a plain socket, so tests see the exact
// code (no client library retries or reinterpretation). MQTT 3.1.1 §3.1, §3.2.
import { connect as tcpConnect } from 'node:net'

export interface RawConnect {
  clientId: string
  username?: string
  password?: string
  clean?: boolean
  keepalive?: number
  will?: { topic: string; payload: string; qos?: 0 | 1 | 2; retain?: boolean }
  /** Protocol name (default MQTT): a wrong one must be refused [MQTT-3.1.2-1]. */
  protocolName?: string
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

export function remainingLength(n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

export function connectPacket(c: RawConnect): Buffer {
  let flags = (c.clean ?? true) ? 0x02 : 0
  if (c.username !== undefined) flags |= 0x80
  if (c.password !== undefined) flags |= 0x40
  if (c.will) flags |= 0x04 | ((c.will.qos ?? 0) << 3) | (c.will.retain ? 0x20 : 0)
  const ka = Buffer.alloc(2)
  ka.writeUInt16BE(c.keepalive ?? 30)
  const body = Buffer.concat([
    str(c.protocolName ?? 'MQTT'),
    Buffer.from([4, flags]),
    ka,
    str(c.clientId),
    ...(c.will ? [str(c.will.topic), str(c.will.payload)] : []),
    ...(c.username !== undefined ? [str(c.username)] : []),
    ...(c.password !== undefined ? [str(c.password)] : []),
  ])
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body])
}

export function connack(port: number, c: RawConnect): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error('no CONNACK'))
    }, 8000)
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 4 && buf[0] === 0x20) {
        clearTimeout(timer)
        sock.destroy()
        resolve(buf[3] ?? -1)
      }
    })
    sock.on('error', reject)
    sock.on('close', () => {
      clearTimeout(timer)
      reject(new Error('closed without CONNACK'))
    })
    sock.write(connectPacket(c))
  })
}
