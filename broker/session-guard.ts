// aedes 1.2.0 persists every filter of a SUBSCRIBE for a persistent session —
// refused ones included — and re-subscribes them at reconnect and queues offline
// messages for them. Filtered here so a refused filter never reaches the store
// (delivery is re-checked in authorizeForward as well).
//
// It also resends, at reconnect, the QoS 1/2 deliveries the client had not
// acknowledged without setting DUP, against [MQTT-3.3.1-1]: packets in the outgoing
// store that already carry a message id were sent before, and are marked here.
import { Readable } from 'node:stream'
import type { Client } from 'aedes'
import { authorizeSubscribeFilter } from './acl.ts'
import type { BrokerContext } from './context.ts'

type Sub = { topic: string; qos: number }
type Outgoing = { cmd?: string; messageId?: number; dup?: boolean }
interface SubscriptionStore {
  addSubscriptions(client: Client, subs: Sub[]): Promise<void>
  outgoingStream(client: Client): Readable
}

export function guardPersistence(ctx: BrokerContext): void {
  const store = (ctx.aedes as unknown as { persistence: SubscriptionStore }).persistence
  const add = store.addSubscriptions.bind(store)
  store.addSubscriptions = (client: Client, subs: Sub[]) => {
    const principal = ctx.clients.get(client)?.principal
    const allowed = principal ? subs.filter((s) => authorizeSubscribeFilter(principal, s.topic).allow) : []
    return allowed.length > 0 ? add(client, allowed) : Promise.resolve()
  }
  const outgoing = store.outgoingStream.bind(store)
  store.outgoingStream = (client: Client) =>
    Readable.from(
      (async function* () {
        for await (const p of outgoing(client) as AsyncIterable<Outgoing>) {
          yield p.cmd === 'publish' && p.messageId ? { ...p, dup: true } : p
        }
      })(),
      { objectMode: true },
    )
}
