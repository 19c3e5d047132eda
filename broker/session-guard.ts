// aedes 1.2.0 persists every filter of a SUBSCRIBE for a persistent session —
// refused ones included — and re-subscribes them at reconnect and queues offline
// messages for them. Filtered here so a refused filter never reaches the store
// (delivery is re-checked in authorizeForward as well).
import type { Client } from 'aedes'
import { authorizeSubscribeFilter } from './acl.ts'
import type { BrokerContext } from './context.ts'

type Sub = { topic: string; qos: number }
interface SubscriptionStore {
  addSubscriptions(client: Client, subs: Sub[]): Promise<void>
}

export function guardPersistence(ctx: BrokerContext): void {
  const store = (ctx.aedes as unknown as { persistence: SubscriptionStore }).persistence
  const add = store.addSubscriptions.bind(store)
  store.addSubscriptions = (client: Client, subs: Sub[]) => {
    const principal = ctx.clients.get(client)?.principal
    const allowed = principal ? subs.filter((s) => authorizeSubscribeFilter(principal, s.topic).allow) : []
    return allowed.length > 0 ? add(client, allowed) : Promise.resolve()
  }
}
