// SUBSCRIBE: deny by default; a refused filter gets SUBACK 0x80 [MQTT-3.9.3-2]
// and the connection stays open.
import type { Client, Subscription } from 'aedes'
import { authorizeSubscribeFilter, mayForward } from '../acl.ts'
import { principalLabel, type BrokerContext } from '../context.ts'
import type { AedesPublishPacket } from 'aedes'

export function makeAuthorizeSubscribe(ctx: BrokerContext) {
  return function authorizeSubscribe(client: Client, sub: Subscription, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    const st = ctx.clients.get(client)
    const decision = st?.principal ? authorizeSubscribeFilter(st.principal, sub.topic) : { allow: false as const, reason: 'not authenticated' }
    if (decision.allow) return callback(null, sub)
    ctx.metrics.refusals.inc({ stage: 'subscribe', reason: decision.reason.replace(/\W+/g, '_').slice(0, 48) })
    ctx.log.warn({ clientId: client.id, ...principalLabel(st?.principal), topic: sub.topic, reason: decision.reason }, 'subscription refused')
    // aedes turns a null subscription into return code 0x80 (failure) in the SUBACK.
    callback(null, null)
  }
}

/** Delivery-time filter: anonymous lab clients never receive device traffic. */
export function makeAuthorizeForward(ctx: BrokerContext) {
  return function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const st = ctx.clients.get(client)
    if (!st?.principal || !mayForward(st.principal, packet.topic)) return null
    ctx.metrics.messagesOut.inc({ kind: outKind(packet.topic) })
    return packet
  }
}

function outKind(topic: string): string {
  const parts = topic.split('/')
  if (parts[0] !== 'gp') return 'other'
  if (parts[3] === 'down') return 'cmd'
  if (parts[3] === 'presence') return 'presence'
  return parts[3] === 'up' ? `up_${parts[4] ?? 'unknown'}`.slice(0, 16) : 'other'
}
