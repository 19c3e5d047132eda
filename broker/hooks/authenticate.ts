// CONNECT: flapping delay, client-id rules, then the directory. Secrets never logged.
import type { Client, ConnectPacket } from 'aedes'
import { BrokerError, CONNACK, connackError } from '../errors.ts'
import { principalLabel, remoteOf, sleep, type BrokerContext } from '../context.ts'
import { guardDeliveries } from '../outgoing-queue.ts'
import { secondsSince } from '../metrics.ts'
import { aedesInternals, internalsOf } from '../internals.ts'
import type { Principal, Refusal } from '../types.ts'

type Done = (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void

/** preConnect sees the raw packet: remember what authenticate cannot see any more. */
export function makePreConnect(ctx: BrokerContext) {
  return function preConnect(client: Client, packet: ConnectPacket, callback: (err: Error | null, ok: boolean) => void): void {
    const st = ctx.clients.get(client)
    if (st) st.emptyClientId = !packet.clientId
    // Keep-alive bounds (1..keepaliveMax). MQTT 3.1.1 has no CONNACK code for this
    // (aedes' keepaliveLimit answers 6, a reserved code): the connection is closed
    // without a CONNACK instead [MQTT-3.2.2-6].
    const ka = packet.keepalive
    if (st && !st.warmUp && (!ka || ka > ctx.limits.keepaliveMax)) {
      ctx.metrics.refusals.inc({ stage: 'connect', reason: 'keepalive_out_of_bounds' })
      ctx.log.warn({ clientId: packet.clientId, keepalive: ka, max: ctx.limits.keepaliveMax }, 'connection refused: keep-alive outside 1..max (closed without CONNACK)')
      return callback(new BrokerError('GP_BROKER_PROTOCOL', `keep-alive ${ka} outside 1..${ctx.limits.keepaliveMax}`), false)
    }
    callback(null, true)
  }
}

export function makeAuthenticate(ctx: BrokerContext) {
  const refuse = (client: Client, done: Done, code: number, reason: string, extra: Record<string, unknown> = {}) => {
    ctx.metrics.connects.inc({ result: reason })
    ctx.metrics.refusals.inc({ stage: 'connect', reason })
    ctx.log.warn({ clientId: client.id, ...extra, reason }, 'connection refused')
    done(connackError(code, reason), false)
  }

  return function authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void {
    const st = ctx.clients.get(client)
    if (!st) return done(connackError(CONNACK.serverUnavailable, 'unknown connection'), false)
    // The in-process warm-up client (warm-up.ts): accepted at once, with no principal.
    if (st.warmUp) return done(null, true)
    // [MQTT-3.1.3-8] a zero-byte client id requires CleanSession=1; aedes accepts it otherwise.
    if (st.emptyClientId && !client.clean) return refuse(client, done, CONNACK.identifierRejected, 'empty_client_id_persistent')
    if (ctx.closing) return refuse(client, done, CONNACK.serverUnavailable, 'broker_closing')

    const delay = ctx.flaps.attempt(client.id, Date.now())
    if (delay > 0) {
      ctx.metrics.flapDelays.inc()
      ctx.log.info({ clientId: client.id, delayMs: delay }, 'reconnecting too often: connect slowed down')
    }
    const started = performance.now()
    ;(delay > 0 ? sleep(delay) : Promise.resolve())
      .then((): Promise<Principal | Refusal | 'client_id_reserved' | null> | Refusal => {
        if (username === undefined && password === undefined && st.certCN === undefined) {
          // Lab mode only; devices' topics stay closed to anonymous clients (acl.ts).
          if (!ctx.allowAnonymous) return { refused: 'anonymous_not_allowed' } as Refusal
          return anonymousIdTaken(ctx, client).then((taken) => (taken ? 'client_id_reserved' : { kind: 'anonymous' }))
        }
        return ctx.directory.authenticate({ clientId: client.id, username, password, ...(st.certCN !== undefined ? { certCN: st.certCN } : {}) })
      })
      .then(
        (result) => {
          forgetConnect(client, password)
          ctx.metrics.authenticateSeconds.observe(secondsSince(started))
          // The connection may have died meanwhile (aedes then ignores the answer).
          if (client.closed) return done(null, false)
          if (result === null) return refuse(client, done, CONNACK.badCredentials, 'bad_credentials', { username })
          if (result === 'client_id_reserved') return refuse(client, done, CONNACK.identifierRejected, result)
          if ('refused' in result) return refuse(client, done, CONNACK.notAuthorized, result.refused.replace(/\W+/g, '_'), { username })
          // A device's session is its own: its client id must be its device id, so no
          // one else can take over (or read) that session.
          if (result.kind === 'device' && client.id !== result.deviceId) {
            return refuse(client, done, CONNACK.identifierRejected, 'client_id_not_device_id', { username })
          }
          // A service's sessions are its own too: `<name>` or `<name>:<suffix>`, so one
          // service cannot take over (or read) another's session.
          if (result.kind === 'service' && client.id !== result.name && !client.id.startsWith(`${result.name}:`)) {
            return refuse(client, done, CONNACK.identifierRejected, 'client_id_not_service_name', { username })
          }
          // One string per device id: the client id's (the directory's copy is dropped).
          st.principal =
            result.kind !== 'device' ? result
            : result.credential === undefined ? { kind: 'device', deviceId: client.id }
            : { kind: 'device', deviceId: client.id, credential: result.credential }
          // A persistent session's subscriptions are restored right after this, without
          // authorizeSubscribe: bound its deliveries now (others: at their first SUBACK).
          if (!client.clean) guardDeliveries(ctx, client, st)
          const previous = aedesInternals(ctx.aedes).clients[client.id]
          if (previous && previous !== client) {
            const prev = ctx.clients.get(previous)
            if (prev) prev.reason = 'takeover'
          }
          ctx.metrics.connects.inc({ result: 'ok' })
          if (ctx.log.isLevelEnabled('info')) ctx.log.info({ clientId: client.id, listener: st.listener, remote: remoteOf(client), ...principalLabel(result) }, 'client connected')
          done(null, true)
        },
        (err: unknown) => {
          forgetConnect(client, password)
          ctx.log.error({ clientId: client.id, err: err instanceof Error ? err.message : String(err) }, 'device directory failed')
          refuse(client, done, CONNACK.serverUnavailable, 'directory_unavailable')
        },
      )
  }
}

/**
 * Once the directory has answered, the CONNECT packet is not needed any more, but
 * mqtt-packet's parser keeps it as `settings` for the life of the connection (it reads
 * only `protocolVersion` and `bridgeMode` from it) — with the password buffer. The
 * secret's bytes are zeroed and the packet is replaced by those two fields: no copy
 * of a device secret stays in the heap, and ~300 B less per idle connection.
 */
function forgetConnect(client: Client, password: Buffer | undefined): void {
  password?.fill(0)
  const parser = internalsOf(client)._parser
  const settings = parser.settings
  if (settings.cmd !== 'connect') return
  parser.settings = settings.bridgeMode ? { protocolVersion: settings.protocolVersion, bridgeMode: true } : (PARSER_SETTINGS[settings.protocolVersion ?? 4] ?? { protocolVersion: settings.protocolVersion })
}

// Shared, read-only: mqtt-packet never writes to `settings` after the CONNECT.
const PARSER_SETTINGS: Record<number, { protocolVersion: number }> = {
  3: Object.freeze({ protocolVersion: 3 }),
  4: Object.freeze({ protocolVersion: 4 }),
  5: Object.freeze({ protocolVersion: 5 }),
}

/**
 * Lab mode: an anonymous client may not use a device id or a service name as its
 * client id (nor `<service>:<suffix>`) — aedes would hand it that session.
 */
async function anonymousIdTaken(ctx: BrokerContext, client: Client): Promise<boolean> {
  const id = client.id
  const colon = id.indexOf(':')
  const ids = colon > 0 ? [id, id.slice(0, colon)] : [id]
  if (ctx.directory.isReserved) {
    for (const candidate of ids) if (await ctx.directory.isReserved(candidate)) return true
    return false
  }
  // Without the directory's answer: refuse ids held right now by an authenticated client.
  const held = aedesInternals(ctx.aedes).clients[id]
  const holder = held && held !== client ? ctx.clients.get(held)?.principal : undefined
  return holder !== undefined && holder.kind !== 'anonymous'
}
