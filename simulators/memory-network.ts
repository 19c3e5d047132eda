// A broker-less network on the virtual clock: what devices publish is recorded
// (and handed to an optional sink) after `latencyMs`, the PUBACK comes back after
// another `latencyMs`. Commands to offline devices wait like a persistent session.
import { parseTopic, presenceTopic, PRESENCE_OFFLINE } from '../firmware-protocol/index.ts'
import type { Clock } from './clock.ts'
import { ConnectionLost, type PublishOptions, type Transport, type TransportHandlers } from './transport.ts'

export interface NetMessage {
  deviceId: string
  topic: string
  payload: Uint8Array
  qos: 0 | 1
  retain: boolean
  /** True time the server received it. */
  atMs: number
}

export interface MemoryNetworkOptions {
  latencyMs?: number
  /** A device that waits this long for a PUBACK drops the link and reconnects (default 30 s). */
  ackTimeoutMs?: number
  /** Keep every message in `messages` (default true; the bench turns it off). */
  record?: boolean
  /** Called for every message the server receives (e.g. to feed an ingest). */
  sink?: (m: NetMessage) => void
}

export class MemoryNetwork {
  readonly messages: NetMessage[] = []
  readonly latencyMs: number
  readonly ackTimeoutMs: number
  received = 0
  bytes = 0
  private readonly transports = new Map<string, MemoryTransport>()
  private readonly queued = new Map<string, Uint8Array[]>()
  private readonly ackLoss = new Map<string, number>()

  constructor(
    readonly clock: Clock,
    private readonly opts: MemoryNetworkOptions = {},
  ) {
    this.latencyMs = opts.latencyMs ?? 50
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 30_000
  }

  transport(deviceId: string): MemoryTransport {
    const t = new MemoryTransport(this, deviceId)
    this.transports.set(deviceId, t)
    return t
  }

  /** Sends a command (QoS 1); held until the device is online. */
  sendCommand(deviceId: string, payload: Uint8Array): void {
    const t = this.transports.get(deviceId)
    if (t?.online) t.deliverCommand(payload)
    else this.queued.set(deviceId, [...(this.queued.get(deviceId) ?? []), payload])
  }

  /** The next `n` PUBACKs to this device are lost (messages still arrive). */
  loseAcks(deviceId: string, n: number): void {
    this.ackLoss.set(deviceId, (this.ackLoss.get(deviceId) ?? 0) + n)
  }

  /** @internal */
  receive(deviceId: string, topic: string, payload: Uint8Array, opts: PublishOptions): boolean {
    const m: NetMessage = { deviceId, topic, payload, qos: opts.qos, retain: opts.retain ?? false, atMs: this.clock.now() }
    this.received++
    this.bytes += payload.length
    if (this.opts.record !== false) this.messages.push(m)
    this.opts.sink?.(m)
    const lose = this.ackLoss.get(deviceId) ?? 0
    if (lose > 0 && parseTopic(topic).ok) {
      this.ackLoss.set(deviceId, lose - 1)
      return false
    }
    return true
  }

  /** @internal */
  connected(t: MemoryTransport): void {
    const q = this.queued.get(t.deviceId)
    if (!q) return
    this.queued.delete(t.deviceId)
    for (const p of q) t.deliverCommand(p)
  }

  /** @internal the last will */
  lost(deviceId: string): void {
    this.receive(deviceId, presenceTopic(deviceId), Buffer.from(PRESENCE_OFFLINE), { qos: 1, retain: true })
  }
}

export class MemoryTransport implements Transport {
  online = false
  private handlers: TransportHandlers | undefined
  private reachable = true
  private epoch = 0
  private pending = new Map<number, (err?: Error) => void>()
  private nextPub = 1

  constructor(
    private readonly net: MemoryNetwork,
    readonly deviceId: string,
  ) {}

  start(handlers: TransportHandlers): void {
    this.handlers = handlers
    this.connect()
  }

  setReachable(reachable: boolean): void {
    if (reachable === this.reachable) return
    this.reachable = reachable
    if (reachable) this.connect()
    else this.drop('network unreachable', true)
  }

  publish(topic: string, payload: Uint8Array, opts: PublishOptions, done: (err?: Error) => void): void {
    if (!this.online) {
      done(new ConnectionLost('offline'))
      return
    }
    const epoch = this.epoch
    const id = this.nextPub++
    this.pending.set(id, done)
    const clock = this.net.clock
    const lat = this.net.latencyMs
    clock.setTimeout(() => {
      if (epoch !== this.epoch) return // connection lost in flight: never arrived
      const acked = this.net.receive(this.deviceId, topic, payload, opts)
      if (opts.qos === 0) return this.settle(id)
      if (!acked) {
        // The PUBACK never comes: like real firmware, give up on the link after
        // ackTimeoutMs, reconnect and re-send (the server dedups by seq).
        clock.setTimeout(() => {
          if (epoch !== this.epoch || !this.pending.has(id)) return
          this.drop('PUBACK timeout', true)
          if (this.reachable) this.connect()
        }, this.net.ackTimeoutMs)
        return
      }
      clock.setTimeout(() => {
        if (epoch === this.epoch) this.settle(id)
      }, lat)
    }, lat)
  }

  async close(): Promise<void> {
    this.reachable = false
    this.drop('closed', false)
  }

  /** @internal */
  deliverCommand(payload: Uint8Array): void {
    const epoch = this.epoch
    this.net.clock.setTimeout(() => {
      if (epoch === this.epoch && this.online) this.handlers?.onCommand(payload)
    }, this.net.latencyMs)
  }

  private settle(id: number, err?: Error): void {
    const done = this.pending.get(id)
    if (!done) return
    this.pending.delete(id)
    done(err)
  }

  private connect(): void {
    const epoch = ++this.epoch
    this.net.clock.setTimeout(() => {
      if (epoch !== this.epoch || !this.reachable || this.online) return
      this.online = true
      this.handlers?.onOnline()
      this.net.connected(this)
    }, this.net.latencyMs * 2)
  }

  private drop(reason: string, will: boolean): void {
    this.epoch++
    const wasOnline = this.online
    this.online = false
    const pending = [...this.pending.keys()]
    for (const id of pending) this.settle(id, new ConnectionLost())
    if (wasOnline) {
      if (will) this.net.lost(this.deviceId)
      this.handlers?.onOffline(reason)
    }
  }
}
