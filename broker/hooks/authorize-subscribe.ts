// SUBSCRIBE: deny by default; a refused filter gets SUBACK 0x80 [MQTT-3.9.3-2]
// and the connection stays open.
import type { Client, Subscription } from 'aedes'
import { UPLINK_KINDS } from '../../firmware-protocol/index.ts'
import { authorizeSubscribeFilter, mayForward } from '../acl.ts'
import { principalLabel, type BrokerContext } from '../context.ts'
import { guardDeliveries } from '../outgoing-queue.ts'
import type { AedesPublishPacket } from 'aedes'

export function makeAuthorizeSubscribe(ctx: BrokerContext) {
  return function authorizeSubscribe(client: Client, sub: Subscription, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    const st = ctx.clients.get(client)
    const decision = st?.principal ? authorizeSubscribeFilter(st.principal, sub.topic) : { allow: false as const, reason: 'not authenticated' }
    if (decision.allow) {
      // aedes reads client.deliverQoS right after this callback: bound it first.
      if (st) guardDeliveries(ctx, client, st)
      return callback(null, sub)
    }
    ctx.metrics.refusals.inc({ stage: 'subscribe', reason: decision.reason.replace(/\W+/g, '_').slice(0, 48) })
    ctx.log.warn({ clientId: client.id, ...principalLabel(st?.principal), topic: sub.topic, reason: decision.reason }, 'subscription refused')
    // aedes turns a null subscription into return code 0x80 (failure) in the SUBACK.
    callback(null, null)
  }
}

/** Delivery-time filter: anonymous lab clients never receive device traffic. */
export function makeAuthorizeForward(ctx: BrokerContext) {
  const out = ctx.metrics.messagesOut
  // Topic → its counter cell: a delivered packet's topic is the published string, whose
  // hash V8 already keeps, so this is cheaper than classifying it on every delivery.
  const cells = new Map<string, { n: number }>()
  return function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const st = ctx.clients.get(client)
    if (!st?.principal || !mayForward(st.principal, packet.topic)) return null
    let cell = cells.get(packet.topic)
    if (!cell) {
      if (cells.size >= 50_000) cells.clear()
      cells.set(packet.topic, (cell = out.cell(outKind(packet.topic))))
    }
    cell.n++
    return packet
  }
}

/** gp/v1/<id>/up/<kind> → up_<kind>; down → cmd; presence; anything else → other. No allocation but the label. */
export function outKind(topic: string): string {
  if (!topic.startsWith('gp/')) return 'other'
  const a = topic.indexOf('/', 3) // after the version
  const b = a < 0 ? -1 : topic.indexOf('/', a + 1) // after the device id
  if (b < 0) return 'other'
  const c = topic.indexOf('/', b + 1)
  const dir = topic.slice(b + 1, c < 0 ? topic.length : c)
  if (dir === 'down') return 'cmd'
  if (dir === 'presence') return 'presence'
  if (dir !== 'up') return 'other'
  const kind = c < 0 ? 'unknown' : topic.slice(c + 1, topic.indexOf('/', c + 1) < 0 ? topic.length : topic.indexOf('/', c + 1))
  return KINDS.get(kind) ?? `up_${kind}`.slice(0, 16)
}

const KINDS = new Map<string, string>(UPLINK_KINDS.map((k) => [k, `up_${k}`]))
