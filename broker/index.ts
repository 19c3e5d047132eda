// The device broker: aedes plus our authentication, ACL, limits, ack-after-commit,
// presence, metrics; TCP, TLS and WebSocket listeners; memory or Redis state.
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { Aedes, type Client } from 'aedes'
import { pino, type Logger } from 'pino'
import { Registry } from 'prom-client'
import { commandTopic, isValidDeviceId } from '../firmware-protocol/index.ts'
import { ClientStates, DEFAULT_LIMITS, Inflight, type BrokerContext, type Limits } from './context.ts'
import { BrokerError } from './errors.ts'
import { makeAuthenticate, makePreConnect } from './hooks/authenticate.ts'
import { abandonAcks, makeAuthorizePublish } from './hooks/authorize-publish.ts'
import { makeAuthorizeForward, makeAuthorizeSubscribe } from './hooks/authorize-subscribe.ts'
import { FlapTracker } from './limits.ts'
import { createListeners, type ListenerName } from './listeners.ts'
import { createMetrics } from './metrics.ts'
import { createBackends } from './persistence.ts'
import { trackPresence } from './presence.ts'
import { guardPersistence } from './session-guard.ts'
import { compactRetainedPresence } from './retained-presence.ts'
import { warmUpClientShape } from './warm-up.ts'
import { RoutingGate, guardRouting } from './routing-guard.ts'
import { aedesInternals } from './internals.ts'
import type { DeviceDirectory, DownlinkReadyEvent, PresenceEvent, Session, UplinkSink } from './types.ts'

export type * from './types.ts'
export type { Limits } from './context.ts'
export { DEFAULT_LIMITS } from './context.ts'
export { BrokerError, type BrokerErrorCode } from './errors.ts'
export { createMemoryDirectory, type MemoryDirectory, type DeviceRecord, type ServiceRecord } from './memory-directory.ts'
export { hashSecret, verifySecret, generateSecret, createVerifyCache } from './secrets.ts'
export { authorizePublishTopic, authorizeSubscribeFilter, topicMatches } from './acl.ts'

export interface BrokerOptions {
  directory: DeviceDirectory
  sink: UplinkSink
  /** Address every listener binds to (GRIDPATROL_HOST). Default 127.0.0.1. */
  host?: string
  /** MQTT over TCP (GRIDPATROL_MQTT_PORT); 0 = ephemeral. Default 1883. */
  port?: number
  /** MQTT over TLS (GRIDPATROL_MQTTS_PORT); only with `tls`. Default 8883. */
  tlsPort?: number
  /** MQTT over WebSocket (GRIDPATROL_WS_PORT); null = no WebSocket listener. Default 8083. */
  wsPort?: number | null
  /** PEM file paths; with `ca`, client certificates are verified and their CN names the device. */
  tls?: { cert: string; key: string; ca?: string }
  /** Lab mode (GRIDPATROL_MQTT_ALLOW_ANONYMOUS): anonymous clients outside the device namespace. */
  allowAnonymous?: boolean
  /** TCP_NODELAY on every connection (GRIDPATROL_MQTT_NODELAY). Default true. */
  noDelay?: boolean
  limits?: Partial<Limits>
  /** Cluster mode: Redis-backed sessions, retained messages and routing. */
  redisUrl?: string
  logger?: Logger
  registry?: Registry
  /** Broker node id (cluster); default random. */
  id?: string
  /** Backoff of uplink commits that throw. */
  commitRetry?: { initialMs: number; maxMs: number }
  /** How long close() waits for in-flight commits before closing sessions. Default 5000 ms. */
  closeTimeoutMs?: number
}

export interface Broker {
  listen(): Promise<{ mqtt: number; mqtts?: number; ws?: number }>
  close(): Promise<void>
  address(): Partial<Record<ListenerName, { address: string; port: number }>>
  /** The authenticated connections on this node (devices, services, lab-mode anonymous clients). */
  sessions(): Session[]
  /**
   * Closes one connection on this node because its credentials no longer hold
   * (device disabled, secret rotated): its presence event says 'revoked', its
   * will is published as for any lost connection, a persistent session keeps its
   * queued messages. False when the client is not connected here.
   */
  revoke(clientId: string, why: string): boolean
  /** Publishes a command (QoS 1) to the device's command topic; queued for a persistent session. */
  publishCommand(deviceId: string, payload: Buffer): Promise<void>
  on(event: 'presence', listener: (ev: PresenceEvent) => void): this
  on(event: 'downlink-ready', listener: (ev: DownlinkReadyEvent) => void): this
  off(event: 'presence', listener: (ev: PresenceEvent) => void): this
  off(event: 'downlink-ready', listener: (ev: DownlinkReadyEvent) => void): this
  readonly id: string
  readonly registry: Registry
  readonly mode: 'memory' | 'redis'
  /** The underlying aedes instance, for tests and diagnostics. */
  readonly aedes: Aedes
}

export function createBroker(opts: BrokerOptions): Broker {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'broker' })
  const registry = opts.registry ?? new Registry()
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits }
  const concurrency = 100
  const backends = createBackends(opts.redisUrl, concurrency)
  const events = new EventEmitter()
  const id = opts.id ?? randomUUID()

  const aedes = new Aedes({
    id,
    concurrency,
    ...(backends.persistence ? { persistence: backends.persistence } : {}),
    ...(backends.mq ? { mq: backends.mq } : {}),
    // Keep-alive bounds are checked in preConnect (hooks/authenticate.ts): aedes' own
    // keepaliveLimit answers with CONNACK 6, reserved in MQTT 3.1.1.
    maxClientsIdLength: 64,
    // Our own bound (outgoing-queue.ts) replaces the drain wait; keep aedes' as a backstop.
    drainTimeout: 60_000,
  })

  // Byte counters read the listeners lazily; they exist a few lines below.
  const sockets = { bytesRead: () => ls.bytesRead(), bytesWritten: () => ls.bytesWritten() }
  const metrics = createMetrics(registry, sockets)
  // Until listen() guards the router, its own queue length (no byte count yet).
  let routingBacklog = (): { messages: number; bytes: number } => ({ messages: aedesInternals(aedes).mq.length ?? 0, bytes: 0 })
  const ctx: BrokerContext = {
    aedes,
    log,
    metrics,
    limits,
    directory: opts.directory,
    sink: opts.sink,
    allowAnonymous: opts.allowAnonymous ?? false,
    flaps: new FlapTracker(limits.flapLimit, 60_000),
    commitRetry: opts.commitRetry ?? { initialMs: 100, maxMs: 5_000 },
    clients: new ClientStates(),
    inflight: new Inflight(),
    routing: new RoutingGate(
      () => routingBacklog(),
      () => ({ messages: limits.routingHighWater, bytes: limits.routingHighWaterBytes }),
      () => ctx.closing,
    ),
    closing: false,
    retryStop: new AbortController(),
    shutdown: { unacknowledged: 0 },
  }

  aedes.preConnect = makePreConnect(ctx)
  aedes.authenticate = makeAuthenticate(ctx)
  aedes.authorizePublish = makeAuthorizePublish(ctx)
  aedes.authorizeSubscribe = makeAuthorizeSubscribe(ctx)
  aedes.authorizeForward = makeAuthorizeForward(ctx)
  aedes.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
  aedes.on('connectionError', (_client: Client, err: Error) => {
    ctx.metrics.refusals.inc({ stage: 'packet', reason: 'malformed_or_early' })
    log.debug({ err: err.message }, 'connection error before CONNECT completed')
  })
  trackPresence(ctx, events)

  const ls = createListeners(ctx, {
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 1883,
    ...(opts.tls ? { tls: opts.tls, tlsPort: opts.tlsPort ?? 8883 } : {}),
    ...(opts.wsPort !== null ? { wsPort: opts.wsPort ?? 8083 } : {}),
    noDelay: opts.noDelay ?? true,
  })

  let started = false
  let closed: Promise<void> | undefined

  const broker: Broker = {
    id,
    registry,
    mode: backends.mode,
    aedes,
    async listen() {
      if (started) throw new BrokerError('GP_BROKER_BAD_OPTIONS', 'listen() called twice')
      started = true
      await aedes.listen()
      guardPersistence(ctx)
      await warmUpClientShape(ctx)
      if (backends.mode === 'memory') compactRetainedPresence((aedes as unknown as { persistence: unknown }).persistence)
      routingBacklog = guardRouting(aedesInternals(aedes).mq)
      if (ctx.allowAnonymous) {
        log.warn('LAB MODE: anonymous MQTT clients are allowed (outside the device namespace) — GRIDPATROL_MQTT_ALLOW_ANONYMOUS is on; never in production')
      }
      let ports: Partial<Record<ListenerName, number>>
      try {
        ports = await ls.listen()
      } catch (err) {
        await closeAedes()
        throw err
      }
      log.info({ ports, mode: backends.mode, noDelay: opts.noDelay ?? true, limits }, 'broker listening')
      return { mqtt: ports.mqtt ?? 0, ...(ports.mqtts !== undefined ? { mqtts: ports.mqtts } : {}), ...(ports.ws !== undefined ? { ws: ports.ws } : {}) }
    },
    close() {
      closed ??= (async () => {
        ctx.closing = true
        ls.stopAccepting()
        // Commits retrying after a failure give up now (no ack); commits in flight
        // get the grace period to finish (their acks follow them), then none is
        // waited for: an unacked message is redelivered by its device.
        ctx.retryStop.abort()
        const graceMs = opts.closeTimeoutMs ?? 5000
        let timer: NodeJS.Timeout | undefined
        await Promise.race([ctx.inflight.idle(), new Promise((r) => (timer = setTimeout(r, graceMs)))])
        clearTimeout(timer)
        const states = []
        for (const c of Object.values(aedesInternals(aedes).clients)) {
          const st = c && ctx.clients.get(c)
          if (!st) continue
          if (!st.reason) st.reason = 'broker_shutdown'
          states.push(st)
        }
        for (const st of states) abandonAcks(ctx, st)
        const { unacknowledged } = ctx.shutdown
        if (unacknowledged > 0) {
          log.warn(
            { unacknowledged, graceMs },
            `shutdown: ${unacknowledged} device message(s) left unacknowledged, not committed by the end of the ${graceMs} ms grace (database unavailable?): ` +
              'their devices re-send them after reconnecting, and each is stored once',
          )
        }
        await closeAedes()
        await ls.close()
        log.info('broker closed')
      })()
      return closed
    },
    address: () => ls.address(),
    sessions() {
      const out: Session[] = []
      for (const c of Object.values(aedesInternals(aedes).clients)) {
        const st = c && ctx.clients.get(c)
        if (c && st?.principal && !st.warmUp && !c.closed) out.push({ clientId: c.id, principal: st.principal })
      }
      return out
    },
    revoke(clientId, why) {
      const c = aedesInternals(aedes).clients[clientId]
      const st = c && ctx.clients.get(c)
      if (!c || !st || c.closed) return false
      st.reason = 'revoked'
      log.warn({ clientId, why }, 'connection revoked')
      c.conn.destroy(new BrokerError('GP_BROKER_REVOKED', `credentials revoked: ${why}`))
      return true
    },
    publishCommand(deviceId, payload) {
      if (!isValidDeviceId(deviceId)) return Promise.reject(new BrokerError('GP_BROKER_BAD_OPTIONS', `invalid device id "${deviceId}"`))
      return new Promise((resolve, reject) => {
        aedes.publish({ cmd: 'publish', topic: commandTopic(deviceId), payload, qos: 1, retain: false, dup: false }, (err?: Error | null) => (err ? reject(err) : resolve()))
      })
    },
    on(event: 'presence' | 'downlink-ready', listener: ((ev: PresenceEvent) => void) | ((ev: DownlinkReadyEvent) => void)) {
      events.on(event, listener as (ev: unknown) => void)
      return broker
    },
    off(event: 'presence' | 'downlink-ready', listener: ((ev: PresenceEvent) => void) | ((ev: DownlinkReadyEvent) => void)) {
      events.off(event, listener as (ev: unknown) => void)
      return broker
    },
  }

  async function closeAedes(): Promise<void> {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await backends.close()
  }

  return broker
}
