// PUBLISH: ACL, per-device rate, then the sink commit — and only then the ack.
//
// DESIGN: ack after commit. aedes 1.2.0 writes the QoS 1 PUBACK right after this
// hook calls back and before `published` runs (lib/handlers/publish.js), so the
// commit is awaited here. Packets of one socket read are dispatched concurrently by
// aedes; their commits run concurrently and `st.acks` keeps the acks in arrival order, and
// aedes reads no more from the socket until the batch is done: per-device backpressure.
import type { Client, PublishPacket } from 'aedes'
import { parseTopic } from '../../firmware-protocol/index.ts'
import { authorizePublishTopic } from '../acl.ts'
import { abortableSleep, principalLabel, sleep, type AckSlot, type BrokerContext, type ClientState } from '../context.ts'
import { secondsSince } from '../metrics.ts'
import { TokenBucket } from '../limits.ts'
import { internalsOf } from '../internals.ts'
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
    ctx.metrics.messagesIn.inc(uplink?.kind ?? (decision.presence ? 'presence' : 'other'))
    const rated = st.principal.kind === 'device'
    if (!uplink && !rated && !routingBacklogged(ctx)) return callback(null)

    const msg: UplinkMessage | undefined = uplink && {
      deviceId: uplink.deviceId,
      kind: uplink.kind,
      topic: packet.topic,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      qos: packet.qos,
      receivedAt: Date.now(),
      clientId: client.id,
    }
    // The commit starts at once, so a device's publishes of one socket read share the
    // ingest's group commits; its ack waits behind the earlier publishes' acks
    // (arrival order, MQTT-4.6.0-2). Callback style: no promise chain per message.
    const slot: AckSlot = { committed: undefined, callback }
    if (st.acks === undefined) st.acks = [slot]
    else st.acks.push(slot)
    ctx.inflight.begin()
    processPublish(ctx, client, st, msg, slot)
  }
}

/** Records a publish's outcome and sends every ack now due, in arrival order. */
function settle(ctx: BrokerContext, st: ClientState, slot: AckSlot, committed: boolean): void {
  if (slot.committed !== undefined) return // given up at close (abandonAcks): a late commit sends no ack
  slot.committed = committed
  const q = st.acks
  if (q === undefined || q[0] !== slot) return // an earlier publish is still committing
  let n = 1
  while (n < q.length && (q[n] as AckSlot).committed !== undefined) n++
  // Detached before the callbacks run: a publish they let in queues afresh.
  const due = n === q.length ? q : q.splice(0, n)
  if (due === q) st.acks = undefined
  for (const s of due) {
    ctx.inflight.end()
    // Not committed (client gone or broker closing): no ack; the device redelivers.
    if (!s.committed && ctx.closing) ctx.shutdown.unacknowledged++
    s.callback(s.committed ? null : new Error('uplink not committed'))
  }
}

/**
 * At close, once the grace period is over: every publish of this client still
 * waiting for its commit (and those queued behind it) gets no ack. A commit that
 * completes later acks nothing; the device redelivers and the dedup keeps one row.
 */
export function abandonAcks(ctx: BrokerContext, st: ClientState): void {
  const q = st.acks
  if (q === undefined) return
  st.acks = undefined
  for (const s of q) {
    // The head is never committed here (settle acks committed heads at once), so
    // nothing behind it may be acked either: acks keep arrival order [MQTT-4.6.0-2].
    s.committed = false
    ctx.inflight.end()
    ctx.shutdown.unacknowledged++
    s.callback(new Error('uplink not committed: broker closing'))
  }
}

/**
 * One publish, in its turn: routing backlog and rate limit (held before the ack),
 * then the commit. Never rejects: false means "do not ack".
 */
function processPublish(ctx: BrokerContext, client: Client, st: ClientState, msg: UplinkMessage | undefined, slot: AckSlot): void {
  // Devices are rate limited; their bucket is made at the first publish, not per connection.
  if (st.principal?.kind === 'device') st.bucket ??= new TokenBucket(ctx.limits.publishRate, ctx.limits.publishBurst, Date.now())
  const wait = routingBacklogged(ctx) ? -1 : st.bucket ? st.bucket.take(Date.now()) : 0
  if (wait === 0) {
    if (msg) commitWithRetry(ctx, client, st, msg, slot)
    else settle(ctx, st, slot, true)
    return
  }
  void (async () => {
    if (wait < 0) await waitForRouting(ctx)
    else {
      // Over the rate: slowed, never dropped after an ack (MQTT 3.1.1 has no reason code).
      ctx.metrics.throttled.inc()
      await sleep(wait)
    }
    // A token was reserved above only when the rate applied; after a routing wait, take it now.
    if (wait < 0 && st.bucket) {
      const more = st.bucket.take(Date.now())
      if (more > 0) {
        ctx.metrics.throttled.inc()
        await sleep(more)
      }
    }
    if (msg) commitWithRetry(ctx, client, st, msg, slot)
    else settle(ctx, st, slot, true)
  })()
}

const routingBacklogged = (ctx: BrokerContext) => !ctx.routing.open

/** Holds a publisher (before its ack) while the broker-wide routing queue is over its bound. */
function waitForRouting(ctx: BrokerContext): Promise<void> {
  ctx.metrics.routingHolds.inc()
  return ctx.routing.wait()
}

/**
 * Commits one uplink. A throwing sink (database down) is retried with backoff while
 * the device waits without an ack — its further packets wait behind it. Gives up
 * (settles false, no ack) when the client disconnects or the broker closes; the
 * device then redelivers and the ingest's (device, seq) dedup absorbs any repeat.
 */
function commitWithRetry(ctx: BrokerContext, client: Client, st: ClientState, msg: UplinkMessage, slot: AckSlot): void {
  const started = performance.now()
  const sink = ctx.sink
  if (sink.commitCallback !== undefined) {
    // One closure per message, no promise (the ingest's hot path). Anonymous on purpose:
    // tsx (esbuild keepNames) wraps a named closure in __name(), a defineProperty per message.
    try {
      sink.commitCallback(msg, (err) => committed(ctx, client, st, msg, slot, started, err))
    } catch (err) {
      process.nextTick(committed, ctx, client, st, msg, slot, started, err instanceof Error ? err : new Error(String(err)))
    }
    return
  }
  let first: Promise<void>
  try {
    first = ctx.sink.commit(msg)
  } catch (err) {
    first = Promise.reject(err)
  }
  first.then(
    () => {
      ctx.metrics.commitSeconds.observe(secondsSince(started))
      settle(ctx, st, slot, true)
    },
    (err: unknown) => void retryCommit(ctx, client, msg, err).then((committed) => settle(ctx, st, slot, committed)),
  )
}

/** commitCallback's outcome: ack now (in its turn), or retry as commit() failures are. */
function committed(ctx: BrokerContext, client: Client, st: ClientState, msg: UplinkMessage, slot: AckSlot, started: number, err: Error | null): void {
  if (err === null) {
    ctx.metrics.commitSeconds.observe(secondsSince(started))
    settle(ctx, st, slot, true)
  } else void retryCommit(ctx, client, msg, err).then((ok) => settle(ctx, st, slot, ok))
}

async function retryCommit(ctx: BrokerContext, client: Client, msg: UplinkMessage, firstErr: unknown): Promise<boolean> {
  let delay = ctx.commitRetry.initialMs
  let err = firstErr
  for (;;) {
    ctx.metrics.sinkFailures.inc()
    // Giving up (the broker's close counts and logs what it leaves unacked, once).
    if (client.closed || ctx.closing) return false
    ctx.log.warn({ deviceId: msg.deviceId, topic: msg.topic, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'uplink commit failed; not acked, retrying')
    // close() cuts the backoff short: no retry outlives the broker.
    await abortableSleep(delay, ctx.retryStop.signal)
    if (client.closed || ctx.closing) return false
    delay = Math.min(delay * 2, ctx.commitRetry.maxMs)
    const started = performance.now()
    try {
      await ctx.sink.commit(msg)
      ctx.metrics.commitSeconds.observe(secondsSince(started))
      return true
    } catch (e) {
      err = e
    }
  }
}
