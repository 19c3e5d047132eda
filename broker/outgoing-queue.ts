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
import type { Client } from 'aedes'
import { BrokerError } from './errors.ts'
import { internalsOf } from './internals.ts'
import type { BrokerContext, ClientState } from './context.ts'

export function guardClient(ctx: BrokerContext, client: Client, st: ClientState): void {
  const c = internalsOf(client)

  // Largest packet: checked on the fixed header, before the body is buffered.
  const parser = c._parser
  const parseLength = parser._parseLength
  parser._parseLength = function guardedParseLength(this: typeof parser) {
    const ok = parseLength.call(this)
    if (ok && this.packet.length > ctx.limits.maxPacketBytes) {
      ctx.metrics.refusals.inc({ stage: 'packet', reason: 'packet_too_large' })
      ctx.log.warn({ clientId: client.id, remote: st.remote, bytes: this.packet.length, max: ctx.limits.maxPacketBytes }, 'packet too large: connection closed')
      this._emitError(new BrokerError('GP_BROKER_PACKET_TOO_LARGE', `packet of ${this.packet.length} bytes exceeds ${ctx.limits.maxPacketBytes}`))
      return false
    }
    return ok
  }

  const deliver0 = c.deliver0
  const deliverQoS = c.deliverQoS
  const done = () => {
    st.queued--
  }
  const overBound = () => st.queued >= ctx.limits.maxQueued

  c.deliver0 = function boundedDeliver0(packet, cb) {
    if (overBound()) {
      ctx.metrics.shed.inc()
    } else {
      st.queued++
      deliver0(packet, done)
    }
    // Release the routing slot now; the callback stays asynchronous so mqemitter
    // never recurses synchronously through its queue.
    setImmediate(cb)
  }

  c.deliverQoS = function boundedDeliverQoS(packet, cb) {
    if (packet.qos === 0) return c.deliver0(packet, cb)
    if (overBound()) {
      if (!client.closed && st.reason !== 'slow_consumer') {
        st.reason = 'slow_consumer'
        ctx.metrics.slowConsumers.inc()
        ctx.log.warn({ clientId: client.id, queued: st.queued, max: ctx.limits.maxQueued }, 'slow consumer: disconnected (persistent sessions keep their messages)')
        client.conn.destroy(new BrokerError('GP_BROKER_SLOW_CONSUMER', 'subscriber over its queue bound'))
      }
    } else {
      st.queued++
      deliverQoS(packet, done)
    }
    setImmediate(cb)
  }
}
