// A minimal MQTT 3.1.1 client over a raw socket, for interop checks a client library
// would hide: not acknowledging deliveries, staying silent past the keep-alive,
// sending a second CONNECT. Packets are built and parsed by hand (MQTT 3.1.1 §2, §3).
import { connect as tcpConnect, type Socket } from 'node:net'
import { connectPacket, remainingLength, type RawConnect } from './connack.ts'

export interface RawPacket {
  type: number // 2 CONNACK, 3 PUBLISH, 4 PUBACK, 5 PUBREC, 6 PUBREL, 7 PUBCOMP, 9 SUBACK, 11 UNSUBACK, 13 PINGRESP
  flags: number
  body: Buffer
}

export interface RawPublish {
  topic: string
  payload: string
  qos: number
  dup: boolean
  retain: boolean
  messageId?: number
}

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const str = (s: string) => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)])
const frame = (first: number, body: Buffer) => Buffer.concat([Buffer.from([first]), remainingLength(body.length), body])

export function decodePublish(p: RawPacket): RawPublish {
  const qos = (p.flags >> 1) & 3
  const tlen = p.body.readUInt16BE(0)
  const topic = p.body.subarray(2, 2 + tlen).toString()
  const rest = 2 + tlen + (qos > 0 ? 2 : 0)
  return { topic, payload: p.body.subarray(rest).toString(), qos, dup: (p.flags & 8) !== 0, retain: (p.flags & 1) !== 0, ...(qos > 0 ? { messageId: p.body.readUInt16BE(2 + tlen) } : {}) }
}

export class RawClient {
  readonly packets: RawPacket[] = []
  closed = false
  closedAt = 0
  private buf = Buffer.alloc(0)
  private waiters: Array<() => void> = []

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      for (;;) {
        let len = 0
        let mul = 1
        let i = 1
        for (; i < this.buf.length; i++) {
          const b = this.buf[i] ?? 0
          len += (b & 0x7f) * mul
          mul *= 128
          if ((b & 0x80) === 0) break
        }
        if (i >= this.buf.length || this.buf.length < i + 1 + len) break
        const first = this.buf[0] ?? 0
        this.packets.push({ type: first >> 4, flags: first & 0x0f, body: this.buf.subarray(i + 1, i + 1 + len) })
        this.buf = this.buf.subarray(i + 1 + len)
      }
      this.wake()
    })
    sock.on('error', () => undefined)
    sock.on('close', () => {
      this.closed = true
      this.closedAt = Date.now()
      this.wake()
    })
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const sock = tcpConnect(port, '127.0.0.1', () => resolve(new RawClient(sock)))
      sock.once('error', reject)
    })
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /** Resolves with (and removes) the first received packet of `type`; rejects on timeout or close. */
  async next(type: number, timeoutMs = 3000): Promise<RawPacket> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.packets.findIndex((p) => p.type === type)
      if (i >= 0) return this.packets.splice(i, 1)[0] as RawPacket
      if (this.closed) throw new Error(`connection closed before packet type ${type}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no packet of type ${type}`)
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          r()
        })
      })
    }
  }

  /** Resolves true once the server has closed the connection, false after the timeout. */
  async whenClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, deadline - Date.now())
        this.waiters.push(() => {
          clearTimeout(timer)
          r()
        })
      })
    }
    return this.closed
  }

  /** CONNECT; resolves with [session present, return code]. */
  async connect(c: RawConnect): Promise<[boolean, number]> {
    this.sock.write(connectPacket(c))
    const ack = await this.next(2)
    return [((ack.body[0] ?? 0) & 1) === 1, ack.body[1] ?? -1]
  }

  subscribe(messageId: number, filter: string, qos: 0 | 1 | 2): void {
    this.sock.write(frame(0x82, Buffer.concat([u16(messageId), str(filter), Buffer.from([qos])])))
  }

  /** PUBACK (4), PUBREC (5), PUBREL (6, flags 2) or PUBCOMP (7) for `messageId`. */
  ack(type: 4 | 5 | 6 | 7, messageId: number): void {
    this.sock.write(frame((type << 4) | (type === 6 ? 2 : 0), u16(messageId)))
  }

  send(bytes: Buffer): void {
    this.sock.write(bytes)
  }

  destroy(): void {
    this.sock.destroy()
  }
}
