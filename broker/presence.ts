// Presence: connect, clean disconnect, keep-alive timeout, last will → online/offline
// events with a reason, and the retained presence topic kept current.
import type { EventEmitter } from 'node:events'
import type { Client } from 'aedes'
import { PRESENCE_OFFLINE, PRESENCE_ONLINE, commandTopic, presenceTopic } from '../firmware-protocol/index.ts'
import { internalsOf } from './internals.ts'
import type { BrokerContext } from './context.ts'
import type { DownlinkReadyEvent, PresenceEvent, PresenceReason } from './types.ts'

const ONLINE = Buffer.from(PRESENCE_ONLINE)
const OFFLINE = Buffer.from(PRESENCE_OFFLINE)

export function trackPresence(ctx: BrokerContext, events: EventEmitter): void {
  const { aedes } = ctx
  const emit = (client: Client, online: boolean, reason: PresenceReason) => {
    const st = ctx.clients.get(client)
    if (st?.principal?.kind !== 'device') return
    const ev: PresenceEvent = { deviceId: st.principal.deviceId, clientId: client.id, online, reason, at: new Date() }
    ctx.log.info({ deviceId: ev.deviceId, online, reason }, online ? 'device online' : 'device offline')
    events.emit('presence', ev)
  }
  const publishRetained = (deviceId: string, state: string) => {
    // PROTOCOL.md §2: retained "online"/"offline"; the broker writes it when the
    // device's own will does not (connect, clean disconnect, no will set).
    // One shared payload per state: the retained copy of every device points at it.
    aedes.publish({ cmd: 'publish', topic: presenceTopic(deviceId), payload: state === PRESENCE_ONLINE ? ONLINE : OFFLINE, qos: 1, retain: true, dup: false }, (err) => {
      if (err) ctx.log.warn({ deviceId, err: err.message }, 'presence publish failed')
    })
  }

  aedes.on('clientReady', (client) => {
    const st = ctx.clients.get(client)
    if (!st) return
    st.hadWill = Boolean(internalsOf(client).will)
    if (st.principal?.kind === 'device') publishRetained(st.principal.deviceId, PRESENCE_ONLINE)
    emit(client, true, 'connect')
  })
  // A command published before the device's subscription exists is lost for a
  // clean session: 'downlink-ready' says when it is in place (a SUBSCRIBE granted,
  // or a persistent session's subscription restored at connect — aedes emits
  // 'subscribe' for both).
  aedes.on('subscribe', (subs, client) => {
    const st = ctx.clients.get(client)
    if (st?.principal?.kind !== 'device') return
    const topic = commandTopic(st.principal.deviceId)
    if (!subs.some((s) => s.topic === topic && (s.qos as number) !== 128)) return
    const ev: DownlinkReadyEvent = { deviceId: st.principal.deviceId, clientId: client.id }
    events.emit('downlink-ready', ev)
  })
  aedes.on('keepaliveTimeout', (client) => {
    const st = ctx.clients.get(client)
    if (st && !st.reason) st.reason = 'keepalive_timeout'
  })
  aedes.on('clientDisconnect', (client) => {
    const st = ctx.clients.get(client)
    if (!st) return
    const clean = internalsOf(client)._disconnected
    const reason: PresenceReason = st.reason ?? (clean ? 'disconnect' : st.hadWill ? 'will' : 'connection_lost')
    const willPublished = !clean && st.hadWill && reason !== 'takeover'
    if (st.principal?.kind === 'device' && reason !== 'takeover' && !willPublished && !ctx.closing) {
      publishRetained(st.principal.deviceId, PRESENCE_OFFLINE)
    }
    emit(client, false, reason)
  })
}
