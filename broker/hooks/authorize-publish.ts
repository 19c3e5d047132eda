// PUBLISH: ACL, per-device rate, then the sink commit — and only then the ack.
//
// DESIGN: ack after commit. aedes 1.2.0 writes the QoS 1 PUBACK right after this
// hook calls back and before `published` runs (lib/handlers/publish.js), so the
// commit is awaited here. Packets of one socket read are dispatched concurrently by
// aedes; `st.chain` serialises them so commits and acks keep arrival order, and
// aedes reads no more from the socket until the batch is done: per-device backpressure.
import type { Client, PublishPacket } from 'aedes'
import { parseTopic } from '../../firmware-protocol/index.ts'
import { authorizePublishTopic } from '../acl.ts'
import { principalLabel, sleep, type BrokerContext, type ClientState } from '../context.ts'
import { aedesInternals, internalsOf } from '../internals.ts'
import type { UplinkMessage } from '../types.ts'

type Callback = (err?: Error | null) => void

export function makeAuthorizePublish(ctx: BrokerContext) {
  const refuse = (client: Client | null, st: ClientState | undefined, packet: PublishPacket, reason: string, callback: Callback) => {
    ctx.metrics.refusals.inc({ stage: 'publish', reason: reason.replace(/\W+/g, '_').slice(0, 48) })
    // Device id and topic only: never the payload, never credentials.
    ctx.log.warn({ clientId: client?.id, ...principalLabel(st?.principal), topic: packet.topic, reason }, 'publish refused')
    // [MQTT-3.3.5-2] MQTT 3.1.1 has no negative PUBACK: an unauthorised publish is
    // never acked; the connection is closed instead (aedes does so on an error).
    callback(new Error(`publish refused: ${reason}`))
  }

  return function authorizePublish(client: Client | null, packet: PublishPacket, callback: Callback): void {
    if (client === null) {
      // The will of a client whose broker node died (aedes' will sweeper): allowed
      // only onto that client's own presence topic.
      const owner = (packet as PublishPacket & { clientId?: string }).clientId
      const parsed = parseTopic(packet.topic)
      return parsed.ok && parsed.direction === 'presence' && parsed.deviceId === owner ? callback(null) : refuse(null, undefined, packet, 'orphan will outside presence', callback)
    }
    const st = ctx.clients.get(client)
    if (!st?.principal) return refuse(client, st, packet, 'not authenticated', callback)
    const isWill = internalsOf(client).will === packet || client.closed
    if (isWill && st.reason === 'takeover') return callback(new Error('will suppressed on session takeover'))

    const decision = authorizePublishTopic(st.principal, packet.topic)
    if (!decision.allow) return refuse(client, st, packet, decision.reason, callback)
    if (isWill) {
      // A device's last will belongs on its presence topic (PROTOCOL.md §2); an uplink
      // will would bypass the commit, so it is not published.
      return decision.uplink ? refuse(client, st, packet, 'device will must be on its presence topic', callback) : callback(null)
    }

    const uplink = decision.uplink
    ctx.metrics.messagesIn.inc({ kind: uplink?.kind ?? (decision.presence ? 'presence' : 'other') })
    if (!uplink && !st.bucket && !routingBacklogged(ctx)) return callback(null)

    const receivedAt = new Date()
    const work = st.chain.then(async () => {
      await waitForRouting(ctx)
      if (st.bucket) {
        const wait = st.bucket.take(Date.now())
        if (wait > 0) {
          // Over the rate: slowed, never dropped after an ack (MQTT 3.1.1 has no reason code).
          ctx.metrics.throttled.inc()
          await sleep(wait)
        }
      }
      if (!uplink) return true
      const msg: UplinkMessage = {
        deviceId: uplink.deviceId,
        kind: uplink.kind,
        topic: packet.topic,
        payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
        qos: packet.qos,
        receivedAt,
        clientId: client.id,
      }
      return commitWithRetry(ctx, client, msg)
    })
    st.chain = work.then(
      () => undefined,
      () => undefined,
    )
    ctx.inflight.add(work)
    work.then(
      (committed) => {
        ctx.inflight.delete(work)
        // Not committed (client gone or broker closing): no ack; the device redelivers.
        callback(committed ? null : new Error('uplink not committed'))
      },
      (err: unknown) => {
        ctx.inflight.delete(work)
        callback(err instanceof Error ? err : new Error(String(err)))
      },
    )
  }
}

function routingBacklogged(ctx: BrokerContext): boolean {
  return (aedesInternals(ctx.aedes).mq.length ?? 0) > ctx.limits.routingHighWater
}

/** Holds a publisher (before its ack) while the broker-wide routing queue is over its bound. */
async function waitForRouting(ctx: BrokerContext): Promise<void> {
  while (routingBacklogged(ctx) && !ctx.closing) await sleep(5)
}

/**
 * Commits one uplink. A throwing sink (database down) is retried with backoff while
 * the device waits without an ack — its further packets wait behind it. Gives up
 * (returns false, no ack) when the client disconnects or the broker closes; the
 * device then redelivers and the ingest's (device, seq) dedup absorbs any repeat.
 */
async function commitWithRetry(ctx: BrokerContext, client: Client, msg: UplinkMessage): Promise<boolean> {
  let delay = ctx.commitRetry.initialMs
  for (;;) {
    const started = process.hrtime.bigint()
    try {
      await ctx.sink.commit(msg)
      ctx.metrics.hookSeconds.observe({ hook: 'commit' }, Number(process.hrtime.bigint() - started) / 1e9)
      return true
    } catch (err) {
      ctx.metrics.sinkFailures.inc()
      ctx.log.warn({ deviceId: msg.deviceId, topic: msg.topic, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'uplink commit failed; not acked, retrying')
    }
    if (client.closed || ctx.closing) return false
    await sleep(delay)
    if (client.closed || ctx.closing) return false
    delay = Math.min(delay * 2, ctx.commitRetry.maxMs)
  }
}
