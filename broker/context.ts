// State shared by the hooks of one broker instance.
import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import type { BrokerMetrics } from './metrics.ts'
import type { FlapTracker, TokenBucket } from './limits.ts'
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
}

export const DEFAULT_LIMITS: Limits = {
  maxPacketBytes: 256 * 1024,
  publishRate: 20,
  publishBurst: 200,
  maxQueued: 1000,
  keepaliveMax: 1200,
  flapLimit: 10,
  routingHighWater: 10_000,
}

export interface ClientState {
  listener: 'mqtt' | 'mqtts' | 'ws'
  remote: string
  certCN?: string
  principal?: Principal
  bucket?: TokenBucket
  /** Serialises this client's publish hooks: acks go out in arrival order. */
  chain: Promise<void>
  /** Deliveries handed to aedes and not yet flushed. */
  queued: number
  hadWill: boolean
  emptyClientId: boolean
  reason?: PresenceReason
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
  clients: WeakMap<Client, ClientState>
  /** Hook work in progress (commits), awaited on close. */
  inflight: Set<Promise<unknown>>
  closing: boolean
}

export function principalLabel(p: Principal | undefined): Record<string, string> {
  if (!p) return {}
  if (p.kind === 'device') return { deviceId: p.deviceId }
  if (p.kind === 'service') return { service: p.name }
  return { anonymous: 'true' }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
