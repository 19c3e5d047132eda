// The ingest: createIngest(deps) is the broker's UplinkSink (commit resolves
// after the durable commit) plus presence(); connectExternal() runs the same
// pipeline as a client of an external broker. Only src/store/types.ts and
// firmware-protocol/index.ts are imported from outside (lint enforces it).
import type { NewReject, RecordOutcome } from '../src/store/types.ts'
import { Batcher } from './batcher.ts'
import { IngestError } from './errors.ts'
import { createMetrics, type IngestMetrics } from './metrics.ts'
import { runStages } from './pipeline.ts'
import { RecentKeys } from './stages/dedup.ts'
import { Lookups } from './stages/identify.ts'
import type { IngestDeps, IngestMessage, IngestOptions, IngestPresence, Work } from './types.ts'

export type { IngestDeps, IngestMessage, IngestOptions, IngestPresence, IngestStored } from './types.ts'
export { STAGES, AFTER_PIPELINE } from './pipeline.ts'
export { connectExternal, type ExternalIngestOptions, type ExternalIngest } from './external.ts'
export { IngestError } from './errors.ts'

export interface CommitResult {
  /** Per stored record, in message order; empty for a reject. */
  outcomes: RecordOutcome[]
  /** Set when the payload was stored as a reject (acknowledged all the same). */
  rejected?: string
}

export interface Ingest {
  /** UplinkSink: resolves once the message's rows or its reject row are committed. Throws only when nothing could be stored. */
  commit(msg: IngestMessage): Promise<void>
  /** commit() with a callback: `done(null)` once committed, `done(err)` when nothing could be stored. Never called synchronously. */
  commitCallback(msg: IngestMessage, done: (err: Error | null) => void): void
  /** The same, returning what happened (tests, external mode). */
  ingest(msg: IngestMessage): Promise<CommitResult>
  /**
   * Stores a payload that never reached the pipeline as a reject (e.g. a serial
   * frame that names no device): resolves once the row is committed.
   */
  reject(r: NewReject): Promise<void>
  /** A broker presence event, stored as device status (fire and forget; retried like uplinks). */
  presence(ev: IngestPresence): void
  readonly metrics: IngestMetrics
  close(): Promise<void>
}

export function createIngest(deps: IngestDeps): Ingest {
  const now = deps.now ?? Date.now
  const log = deps.log.child({ component: 'ingest' })
  const opts: IngestOptions = {
    maxBatchRows: 5000,
    maxQueuedRows: 50_000,
    writers: deps.store.capabilities.driver === 'pglite' ? 1 : 4,
    retry: { initialMs: 100, maxMs: 5000 },
    lookupTtlMs: 30_000,
    unknownTtlMs: 5_000,
    lookupMaxEntries: 100_000,
    retentionDays: deps.store.uplinks.retentionDays,
    pruneEveryMs: 3_600_000,
    ...deps.options,
  }
  const metrics = createMetrics(deps.registry)
  const stageDeps = { lookups: new Lookups(deps.store, { ttlMs: opts.lookupTtlMs, missingTtlMs: opts.unknownTtlMs, maxEntries: opts.lookupMaxEntries }, now), recent: new RecentKeys() }
  // Committed keys are remembered by the batcher before it resolves the message: no extra .then per message.
  const batcher = new Batcher(deps.store, opts, metrics, log, (records, outcomes) => stageDeps.recent.remember(records, outcomes))
  const pendingPresence = new Set<Promise<unknown>>()

  // Dedup keys older than the retention are pruned (the time-series rows go with
  // TimescaleDB's retention; uplink_seen is a plain table and would grow forever).
  let pruning: Promise<unknown> = Promise.resolve()
  const prune = () => {
    pruning = pruning.then(async () => {
      try {
        const before = now() - opts.retentionDays * 86_400_000
        const n = await deps.store.uplinks.pruneSeen(before)
        if (n > 0) log.info({ pruned: n, retentionDays: opts.retentionDays }, 'expired dedup keys pruned')
        // clock estimates too (each device's latest stays): none can time a check-in still kept
        const c = await deps.store.clock.prune(before)
        if (c > 0) log.info({ pruned: c, retentionDays: opts.retentionDays }, 'expired clock estimates pruned')
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'dedup keys not pruned (retried at the next interval)')
      }
    })
  }
  let pruneTimer: NodeJS.Timeout | undefined
  if (opts.retentionDays > 0) {
    prune()
    pruneTimer = setInterval(prune, opts.pruneEveryMs)
    pruneTimer.unref()
  }

  const NONE: never[] = []

  /** deps.onStored with what a stored message was (PROTOCOL.md §6: its device time against its receipt). */
  const onStored = deps.onStored
  function stored(w: Work): void {
    const u = w.uplink
    if (!onStored || !u) return
    try {
      onStored({ deviceId: w.msg.deviceId, receivedAtMs: w.receivedAtMs, kind: u.kind, seq: u.seq, deviceTimeMs: u.deviceTimeMs, acks: w.envelopes.some((e) => e.kind === 'ack') })
    } catch (err) {
      log.warn({ err, deviceId: w.msg.deviceId }, 'onStored failed')
    }
  }

  // Promise-chained, not async: on the hot path (stages synchronous, room in the
  // batcher) a message makes the batcher's promise and one .then — no more.
  function ingest(msg: IngestMessage): Promise<CommitResult> {
    return run(msg, true) as Promise<CommitResult>
  }

  // The stages replace envelopes and records (never push onto them): no arrays made here.
  function work(msg: IngestMessage): Work {
    const at = msg.receivedAt
    return { msg, receivedAtMs: typeof at === 'number' ? at : at.getTime(), envelopes: NONE, records: NONE, knownDuplicates: 0 }
  }

  /** commit() asks for no result: one promise per message on the hot path, no result object. */
  function run(msg: IngestMessage, result: boolean): Promise<CommitResult | void> {
    const w = work(msg)
    try {
      const pending = runStages(w, stageDeps)
      return pending ? pending.then(() => submitWork(w, result)) : submitWork(w, result)
    } catch (err) {
      // As before (async): a stage's throw is a rejection, never a synchronous throw.
      return Promise.reject(err as Error)
    }
  }

  function submitWork(w: Work, result: boolean): Promise<CommitResult | void> {
    if (w.reject) {
      const code = w.reject.code
      return batcher.submit({ records: NONE, rejects: [w.reject], presence: NONE }).then(() => (result ? { outcomes: [], rejected: code } : undefined))
    }
    if (w.knownDuplicates > 0) metrics.dedupHits.inc(w.knownDuplicates)
    if (w.records.length === 0) {
      stored(w)
      return Promise.resolve(result ? { outcomes: [] } : undefined) // every record known committed: ack again
    }
    const submitted = batcher.submit({ records: w.records, rejects: NONE, presence: NONE })
    const committed = onStored
      ? submitted.then((outcomes) => {
          stored(w)
          return outcomes
        })
      : submitted
    // commit(): the batcher's own promise (its outcomes are not looked at).
    return result ? committed.then((outcomes) => ({ outcomes })) : (committed as Promise<unknown> as Promise<void>)
  }

  /**
   * commit() with a callback (the broker's hot path): stages synchronous, records to
   * write — the batcher calls `done` after the commit, no promise made. Anything else
   * (a reject, known duplicates only, a lookup to wait for) takes the promise path.
   * `done` is called once, never synchronously.
   */
  function commitCallback(msg: IngestMessage, done: (err: Error | null) => void): void {
    const w = work(msg)
    let pending: Promise<void> | undefined
    try {
      pending = runStages(w, stageDeps)
    } catch (err) {
      process.nextTick(done, err as Error)
      return
    }
    if (pending === undefined && w.reject === undefined && w.records.length > 0) {
      if (w.knownDuplicates > 0) metrics.dedupHits.inc(w.knownDuplicates)
      const committed = (err: Error | null) => {
        if (!err) stored(w)
        done(err)
      }
      batcher.submitCallback({ records: w.records, rejects: NONE, presence: NONE }, onStored ? committed : done)
      return
    }
    ;(pending ? pending.then(() => submitWork(w, false)) : submitWork(w, false)).then(
      () => done(null),
      (err: unknown) => done(err as Error),
    )
  }

  return {
    metrics,
    ingest,
    commit(msg) {
      return run(msg, false) as Promise<void>
    },
    commitCallback,
    async reject(r) {
      await batcher.submit({ records: NONE, rejects: [r], presence: NONE })
    },
    presence(ev) {
      const p = batcher
        .submit({ records: [], rejects: [], presence: [{ deviceId: ev.deviceId, receivedAtMs: ev.at.getTime(), online: ev.online, reason: ev.reason }] })
        .catch((err: unknown) =>
          // At close, counted in the batcher's one line instead of a line per device.
          err instanceof IngestError && err.code === 'GP_INGEST_CLOSED'
            ? log.debug({ err: err.message, deviceId: ev.deviceId }, 'presence event not stored')
            : log.warn({ err: (err as Error).message, deviceId: ev.deviceId }, 'presence event not stored'),
        )
        .finally(() => pendingPresence.delete(p))
      pendingPresence.add(p)
    },
    async close() {
      clearInterval(pruneTimer)
      // The batcher stops retrying first: the presence events awaited below (the
      // broker's shutdown events among them) must not wait for a database that is down.
      const closed = batcher.close()
      await pruning
      await Promise.allSettled([...pendingPresence])
      await closed
    },
  }
}
