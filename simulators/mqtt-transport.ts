// The real-network transport on mqtt.js. One mqtt.js client per connection
// attempt (its own reconnect and in-memory resend are off): the device owns
// re-sending, so "delivered" means exactly "this device saw the PUBACK".
import mqtt, { type MqttClient } from 'mqtt'
import { PRESENCE_OFFLINE, commandTopic, presenceTopic } from '../firmware-protocol/index.ts'
import { ConnectionLost, type ConnectOptions, type PublishOptions, type Transport, type TransportHandlers } from './transport.ts'

export interface MqttTransportOptions extends ConnectOptions {
  /** mqtt://host:port, mqtts://..., ws://... */
  url: string
  /** Wait between connection attempts, ms (default 1000). */
  reconnectMs?: number
  keepaliveS?: number
  /** Extra mqtt.js options (TLS CA, etc.). */
  mqttOptions?: mqtt.IClientOptions
}

export class MqttTransport implements Transport {
  private client: MqttClient | undefined
  private handlers: TransportHandlers | undefined
  private reachable = true
  private closed = false
  private retry: NodeJS.Timeout | undefined
  private pending = new Set<(err?: Error) => void>()
  online = false
  /** Connection attempts refused or failed (for progress displays). */
  failures = 0
  lastError: string | undefined

  constructor(private readonly opts: MqttTransportOptions) {}

  start(handlers: TransportHandlers): void {
    this.handlers = handlers
    this.connect()
  }

  setReachable(reachable: boolean): void {
    if (reachable === this.reachable) return
    this.reachable = reachable
    if (reachable) this.connect()
    else this.drop(true)
  }

  publish(topic: string, payload: Uint8Array, opts: PublishOptions, done: (err?: Error) => void): void {
    const c = this.client
    if (!c || !this.online) {
      done(new ConnectionLost('offline'))
      return
    }
    let settled = false
    const once = (err?: Error) => {
      if (settled) return
      settled = true
      this.pending.delete(once)
      done(err)
    }
    this.pending.add(once)
    c.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos: opts.qos, retain: opts.retain ?? false }, (err) => once(err ?? undefined))
  }

  async close(): Promise<void> {
    this.closed = true
    this.reachable = false
    clearTimeout(this.retry)
    const c = this.client
    this.client = undefined
    this.failPending()
    this.online = false
    if (c) await c.endAsync(false).catch(() => undefined)
  }

  private connect(): void {
    if (this.closed || !this.reachable || this.client) return
    const o = this.opts
    const will = o.will ?? true
    const c = mqtt.connect(o.url, {
      clientId: o.clientId ?? o.deviceId,
      username: o.deviceId,
      password: o.secret,
      clean: o.clean ?? false,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      keepalive: o.keepaliveS ?? 30,
      protocolVersion: 4,
      ...(will ? { will: { topic: presenceTopic(o.deviceId), payload: Buffer.from(PRESENCE_OFFLINE), qos: 1 as const, retain: true } } : {}),
      ...o.mqttOptions,
    })
    this.client = c
    c.on('connect', () => {
      c.subscribe(commandTopic(o.deviceId), { qos: 1 }, (err) => {
        if (err || this.client !== c) return
        this.online = true
        this.handlers?.onOnline()
      })
    })
    c.on('message', (topic, payload) => {
      if (topic === commandTopic(o.deviceId)) this.handlers?.onCommand(new Uint8Array(payload))
    })
    c.on('error', (err) => {
      this.lastError = err.message
    })
    c.on('close', () => {
      if (this.client !== c) return
      this.client = undefined
      this.lost('connection closed')
      c.end(true)
      this.scheduleReconnect()
    })
  }

  private lost(reason: string): void {
    const was = this.online
    this.online = false
    this.failPending()
    if (was) this.handlers?.onOffline(reason)
    else this.failures++
  }

  private failPending(): void {
    for (const p of [...this.pending]) p(new ConnectionLost())
  }

  private scheduleReconnect(): void {
    clearTimeout(this.retry)
    if (this.closed || !this.reachable) return
    this.retry = setTimeout(() => this.connect(), this.opts.reconnectMs ?? 1000)
  }

  /** Drops the TCP connection without DISCONNECT, so the broker publishes the will. */
  private drop(_will: boolean): void {
    clearTimeout(this.retry)
    const c = this.client
    this.client = undefined
    if (!c) return
    this.lost('network unreachable')
    // Destroying the socket (no DISCONNECT packet) is what a lost cellular link looks like.
    c.stream?.destroy()
    c.end(true)
  }
}
