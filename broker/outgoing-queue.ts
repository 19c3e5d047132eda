// Per-connection guards installed when aedes creates the Client, before any packet:
// the packet-size limit and the bounded outgoing queue.
//
// Queue policy (aedes 1.2.0 queues without bound for a slow subscriber, and its
// deliveries hold a broker-wide mqemitter slot until the socket drains, so one slow
// consumer stalls routing for everyone and, on disconnect, can crash the process with
// a stack overflow inside mqemitter):
// - every delivery releases its routing slot at once; per subscriber at most
//   `maxQueued` deliveries may wait for its socket;
// - over that bound a QoS 0 delivery is dropped and counted (at most once, by spec);
// - over that bound a QoS 1/2 delivery disconnects the subscriber (logged, counted):
//   a persistent session keeps the message in the store and gets it on reconnect;
//   nothing is ever acked to a publisher and then dropped silently;
// - publishers are held before their PUBACK while the routing backlog is over its
//   high-water mark (authorize-publish.ts).
import { createRequire } from 'node:module'
import type { Client } from 'aedes'
import { BrokerError } from './errors.ts'
import { internalsOf, type ClientInternals } from './internals.ts'
import { remoteOf, type BrokerContext, type ClientState } from './context.ts'

type Parser = ClientInternals['_parser'] & { client?: Client }
type ParseLength = (this: Parser) => boolean

/**
 * The packet-size guard (and the second-CONNECT check), checked on every connection
 * before any packet. mqtt-packet's `Parser.prototype._parseLength` is wrapped once per
 * process; the wrapper finds the broker through `this.client.broker` (aedes sets
 * `parser.client`) and does nothing for parsers of other brokers or of client
 * libraries. Nothing is added to a connection's parser: an own property per parser
 * cost a PropertyArray each (~40 B per idle connection), and switching each parser's
 * prototype cost a map and descriptor array each (~450 B).
 */
const contexts = new WeakMap<object, BrokerContext>()
const wrapped = new WeakSet<object>()
let lastBroker: object | undefined
let lastCtx: BrokerContext | undefined

export function makePacketSizeGuard(ctx: BrokerContext) {
  contexts.set(ctx.aedes, ctx)
  return function guarded(parser: Parser): void {
    const base = Object.getPrototypeOf(parser) as { _parseLength: ParseLength }
    if (wrapped.has(base)) return
    wrapped.add(base)
    base._parseLength = guardedParseLength(base._parseLength)
  }
}

function guardedParseLength(inner: ParseLength): ParseLength {
  return function guardedParseLength(this: Parser): boolean {
    const ok = inner.call(this)
    const client = this.client
    if (!client) return ok
    // One WeakMap lookup per packet otherwise; a process nearly always has one broker.
    const broker = (client as unknown as { broker: object }).broker
    let ctx = lastCtx
    if (lastBroker !== broker) {
      ctx = contexts.get(broker)
      if (!ctx) return ok
      lastBroker = broker
      lastCtx = ctx
    }
    if (!ctx) return ok
    // [MQTT-3.1.0-2] a second CONNECT is a protocol violation: close at once. aedes
    // checks this only once the packet is dispatched, and a second CONNECT that arrives
    // in the same read as the first is queued behind the handshake instead; counted
    // here, on the fixed header, it never gets that far.
    if (ok && this.packet.cmd === 'connect' && this.client) {
      const st = ctx.clients.get(this.client)
      if (st && ++st.connects > 1) {
        ctx.metrics.refusals.inc({ stage: 'packet', reason: 'second_connect' })
        this._emitError(new BrokerError('GP_BROKER_PROTOCOL', 'second CONNECT on one connection [MQTT-3.1.0-2]'))
        return false
      }
    }
    if (ok && this.packet.length > ctx.limits.maxPacketBytes) {
      const client = this.client
      ctx.metrics.refusals.inc({ stage: 'packet', reason: 'packet_too_large' })
      ctx.log.warn({ clientId: client?.id, remote: client && remoteOf(client), bytes: this.packet.length, max: ctx.limits.maxPacketBytes }, 'packet too large: connection closed')
      this._emitError(new BrokerError('GP_BROKER_PACKET_TOO_LARGE', `packet of ${this.packet.length} bytes exceeds ${ctx.limits.maxPacketBytes}`))
      return false
    }
    return ok
  }
}

export function guardPacketSize(client: Client, guard: (parser: Parser) => void): void {
  const parser = internalsOf(client)._parser as Parser & { _list?: { length: number } }
  // Checked on the fixed header, before the body is buffered.
  guard(parser)
  // mqtt-packet buffers a connection's unparsed bytes in a `bl` BufferListStream — a full
  // readable-stream Duplex per connection — of which it uses only the BufferList methods
  // (append, consume, slice, readUInt*, toString, length). The plain BufferList (the
  // same methods, the same module) replaces it before any byte arrives: ~1 KB less per
  // idle connection (heap snapshot diff). After a parse error mqtt-packet makes a new
  // stream, and the connection is closed anyway.
  if (BufferList && parser._list && parser._list.length === 0) parser._list = new BufferList()
}

/** bl's BufferList, resolved as mqtt-packet resolves it (aedes → mqtt-packet → bl). */
const BufferList: (new () => { length: number }) | undefined = (() => {
  try {
    const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'))
    const fromPacket = createRequire(fromAedes.resolve('mqtt-packet'))
    const bl = fromPacket('bl') as { BufferList?: new () => { length: number } }
    return typeof bl.BufferList === 'function' ? bl.BufferList : undefined
  } catch {
    return undefined
  }
})()

/**
 * The bounded outgoing queue. Installed lazily — when the client is first granted a
 * subscription, or a persistent session's subscriptions are restored (aedes reads
 * client.deliver0/deliverQoS at that moment) — so idle connections and publish-only
 * devices carry no per-client delivery closures.
 */
export function guardDeliveries(ctx: BrokerContext, client: Client, st: ClientState): void {
  if (st.deliveriesGuarded) return
  st.deliveriesGuarded = true
  const c = internalsOf(client)
  const deliver0 = c.deliver0
  const deliverQoS = c.deliverQoS
  const limits = ctx.limits
  const done = () => {
    st.queued--
  }

  c.deliver0 = (packet, cb) => {
    if (st.queued >= limits.maxQueued) {
      ctx.metrics.shed.inc()
    } else {
      st.queued++
      deliver0(packet, done)
    }
    // Release the routing slot now; the callback stays asynchronous so mqemitter
    // never recurses synchronously through its queue.
    setImmediate(cb)
  }

  c.deliverQoS = (packet, cb) => {
    if (packet.qos === 0) return c.deliver0(packet, cb)
    if (st.queued >= limits.maxQueued) {
      if (!client.closed && st.reason !== 'slow_consumer') {
        st.reason = 'slow_consumer'
        ctx.metrics.slowConsumers.inc()
        ctx.log.warn({ clientId: client.id, queued: st.queued, max: limits.maxQueued }, 'slow consumer: disconnected (persistent sessions keep their messages)')
        client.conn.destroy(new BrokerError('GP_BROKER_SLOW_CONSUMER', 'subscriber over its queue bound'))
      }
    } else {
      st.queued++
      deliverQoS(packet, done)
    }
    setImmediate(cb)
  }
}
