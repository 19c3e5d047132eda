// State shared by the hooks of one broker instance.
import { setTimeout as delay } from 'node:timers/promises'
import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import type { BrokerMetrics } from './metrics.ts'
import type { FlapTracker, TokenBucket } from './limits.ts'
import type { RoutingGate } from './routing-guard.ts'
import type { DeviceDirectory, Principal, PresenceReason, UplinkSink } from './types.ts'

export interface Limits {
  /** Largest MQTT packet accepted, bytes (remaining length). */
  maxPacketBytes: number
  /** Per-device publish rate, messages per second (token bucket refill). */
  publishRate: number
  /** Per-device burst, messages (token bucket size). */
  publishBurst: number
  /** Per-subscriber bound of deliveries written but not yet flushed to its socket. */
  maxQueued: number
  /** Largest keep-alive a client may ask for, seconds; 0 (none) is refused. */
  keepaliveMax: number
  /** Connects of one client id per minute before reconnects are slowed down. */
  flapLimit: number
  /** Broker-wide routing backlog (messages) above which publishers are held before their ack. */
  routingHighWater: number
  /** The same backlog in payload bytes (large packets fill memory long before the message mark). */
  routingHighWaterBytes: number
}

export const DEFAULT_LIMITS: Limits = {
  maxPacketBytes: 256 * 1024,
  publishRate: 20,
  publishBurst: 200,
  maxQueued: 1000,
  keepaliveMax: 1200,
  flapLimit: 10,
  routingHighWater: 100_000,
  // ≈ what the message mark holds at ~500 B per check-in (bench/broker/routing-backlog.ts).
  routingHighWaterBytes: 64 * 1024 * 1024,
}

const LISTENERS = ['mqtt', 'mqtts', 'ws'] as const
// Bits of ClientState.flags.
const CONNECTS = 0b11 // CONNECT packets seen, saturating at 3
const GUARDED = 1 << 2
const HAD_WILL = 1 << 3
const EMPTY_ID = 1 << 4
const LISTENER_SHIFT = 5 // two bits: index in LISTENERS
const WARM_UP = 1 << 7

/**
 * What the broker keeps per connection beside aedes' own Client. A class so every
 * instance shares one shape; nothing is allocated for a client until it needs it
 * (the publish queue's tail, the token bucket, the remote address string). Small
 * counters and booleans share one integer (idle-connection memory: 7 fields, 80 B).
 */
/** One publish awaiting its ack: committed is set when its commit settles. */
export interface AckSlot {
  committed: boolean | undefined
  callback: (err?: Error | null) => void
}

export class ClientState {
  principal: Principal | undefined = undefined
  bucket: TokenBucket | undefined = undefined
  /**
   * This client's publish hooks waiting for their turn to ack (arrival order), or
   * undefined when none is pending.
   */
  acks: AckSlot[] | undefined = undefined
  /** Deliveries handed to aedes and not yet flushed. */
  queued = 0
  reason: PresenceReason | undefined = undefined
  private flags: number

  constructor(
    listener: 'mqtt' | 'mqtts' | 'ws',
    readonly certCN: string | undefined,
  ) {
    this.flags = LISTENERS.indexOf(listener) << LISTENER_SHIFT
  }

  get listener(): 'mqtt' | 'mqtts' | 'ws' {
    return LISTENERS[(this.flags >> LISTENER_SHIFT) & 3] ?? 'mqtt'
  }

  /** CONNECT packets seen on this connection [MQTT-3.1.0-2] (saturates at 3). */
  get connects(): number {
    return this.flags & CONNECTS
  }
  set connects(n: number) {
    this.flags = (this.flags & ~CONNECTS) | Math.min(n, 3)
  }

  /** The bounded outgoing queue is installed (outgoing-queue.ts). */
  get deliveriesGuarded(): boolean {
    return (this.flags & GUARDED) !== 0
  }
  set deliveriesGuarded(v: boolean) {
    this.flags = v ? this.flags | GUARDED : this.flags & ~GUARDED
  }

  get hadWill(): boolean {
    return (this.flags & HAD_WILL) !== 0
  }
  set hadWill(v: boolean) {
    this.flags = v ? this.flags | HAD_WILL : this.flags & ~HAD_WILL
  }

  /** The in-process warm-up client (warm-up.ts); never set for a network connection. */
  get warmUp(): boolean {
    return (this.flags & WARM_UP) !== 0
  }
  set warmUp(v: boolean) {
    this.flags = v ? this.flags | WARM_UP : this.flags & ~WARM_UP
  }

  get emptyClientId(): boolean {
    return (this.flags & EMPTY_ID) !== 0
  }
  set emptyClientId(v: boolean) {
    this.flags = v ? this.flags | EMPTY_ID : this.flags & ~EMPTY_ID
  }
}

/** "address:port" of a client's peer, for logs (the WebSocket's HTTP socket for ws). */
export function remoteOf(client: Client): string {
  const c = client as Client & { conn?: { remoteAddress?: string; remotePort?: number }; req?: { socket?: { remoteAddress?: string; remotePort?: number } } }
  const s = c.conn?.remoteAddress !== undefined ? c.conn : c.req?.socket
  return `${s?.remoteAddress ?? '?'}:${s?.remotePort ?? '?'}`
}

/**
 * Our state of each aedes Client, kept on the Client's mqtt-packet parser under a
 * private symbol: the parser's out-of-object property store has room for it, where a
 * WeakMap entry cost ~33 B per connection (ephemeron table) and a property on the
 * Client ~40 B (a new property store). Same get/set surface as a WeakMap.
 */
export class ClientStates {
  private readonly key = Symbol('gridpatrol.clientState')

  get(client: Client): ClientState | undefined {
    return (client as unknown as { _parser: Record<symbol, ClientState | undefined> })._parser[this.key]
  }

  set(client: Client, st: ClientState): void {
    ;(client as unknown as { _parser: Record<symbol, ClientState | undefined> })._parser[this.key] = st
  }
}

/** Hook work in progress (commits): counted, and awaited on close. */
export class Inflight {
  count = 0
  private waiters: Array<() => void> = []

  begin(): void {
    this.count++
  }

  end(): void {
    if (--this.count === 0 && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w()
  }

  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve))
  }
}

export interface BrokerContext {
  aedes: Aedes
  log: Logger
  metrics: BrokerMetrics
  limits: Limits
  directory: DeviceDirectory
  sink: UplinkSink
  allowAnonymous: boolean
  flaps: FlapTracker
  commitRetry: { initialMs: number; maxMs: number }
  clients: ClientStates
  /** Hook work in progress (commits), awaited on close. */
  inflight: Inflight
  /** Holds publishers before their ack while the routing backlog is over its mark. */
  routing: RoutingGate
  closing: boolean
  /** Commit retries' backoff sleeps; close() wakes them, and they give up (not acked). */
  /** Aborted at close: retries' backoffs end (abortableSleep). */
  retryStop: AbortController
  /** Device messages close() leaves unacknowledged, logged once. */
  shutdown: { unacknowledged: number }
}

export function principalLabel(p: Principal | undefined): Record<string, string> {
  if (!p) return {}
  if (p.kind === 'device') return { deviceId: p.deviceId }
  if (p.kind === 'service') return { service: p.name }
  return { anonymous: 'true' }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A retry's backoff that `stop` cuts short (at shutdown), and every later one at once. */
export function abortableSleep(ms: number, stop: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal: stop }).catch(() => undefined)
}
