import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { NewReject, PresenceEvent, RecordOutcome, Store, UplinkRecord, WriteBatch } from '../src/store/types.ts'
import { IngestError } from './errors.ts'
import type { IngestMetrics } from './metrics.ts'

export interface BatchItem {
  records: UplinkRecord[]
  rejects: NewReject[]
  presence: PresenceEvent[]
}

export interface BatcherOptions {
  maxBatchRows: number
  maxQueuedRows: number
  writers: number
  retry: { initialMs: number; maxMs: number }
  /** How long close() waits for commits that neither succeed nor fail (a hung connection). Default 5000 ms. */
  closeTimeoutMs?: number
}

/** Called once: (null, outcomes) after the commit, or (err) when the item cannot be stored. */
export type Done = (err: Error | null, outcomes?: RecordOutcome[]) => void

interface Pending extends BatchItem {
  rows: number
  done: Done
  /** done was called (an item given up at close may still commit later: not answered twice). */
  answered?: true
}

const size = (i: BatchItem) => Math.max(1, i.records.length + i.rejects.length + i.presence.length)

/**
 * Group commit: whatever arrives while a transaction is in flight goes into the
 * next one, so many devices' QoS 1 publishes share a commit. Bounded: past
 * maxQueuedRows, submit() waits for room — the broker awaits it before the
 * PUBACK, which slows the sockets instead of buffering without limit.
 * While the database is unreachable a group is retried with backoff and nothing
 * resolves (nothing is acknowledged). A data error is isolated: the group is
 * split, and a message the database refuses alone becomes a reject row.
 * close() ends the retrying: see there.
 */
export class Batcher {
  private queue: Pending[] = []
  /** Rows submitted and not yet committed (queued or in flight): the backpressure bound. */
  private queuedRows = 0
  /** Rows queued and not yet in a group. */
  private waitingRows = 0
  private inflight = 0
  /** Items submitted and not answered yet (queued or in flight). */
  private unanswered = 0
  /** Groups being written (or retried). */
  private writing = new Set<Pending[]>()
  private roomWaiters: Array<() => void> = []
  private idleWaiters: Array<() => void> = []
  private closing = false
  /** Set at close when a write fails (or the close deadline passes): nothing is tried again. */
  private gaveUp: Error | undefined
  /** Aborted at close: a retry's backoff ends at once. */
  private stopping = new AbortController()
  /** What close() gave up on, logged once. */
  private notCommitted = { messages: 0, rows: 0, presence: 0 }

  constructor(
    private store: Store,
    private opts: BatcherOptions,
    private metrics: IngestMetrics,
    private log: Logger,
    /** Called with each message's records and outcomes once committed, before its promise resolves. */
    private onCommitted?: (records: UplinkRecord[], outcomes: RecordOutcome[]) => void,
  ) {}

  submit(item: BatchItem): Promise<RecordOutcome[]> {
    return new Promise<RecordOutcome[]>((resolve, reject) => this.submitCallback(item, (err, outcomes) => (err ? reject(err) : resolve(outcomes ?? []))))
  }

  /**
   * The same with a callback (the broker's hot path: no promise per message). `done` is
   * never called synchronously. Past maxQueuedRows the item waits for room first.
   */
  submitCallback(item: BatchItem, done: Done): void {
    if (this.queuedRows >= this.opts.maxQueuedRows && !this.closing) {
      this.roomWaiters.push(() => this.submitCallback(item, done))
      return
    }
    if (this.closing) {
      this.count(item)
      process.nextTick(done, new IngestError('GP_INGEST_CLOSED', 'not committed: the ingest is closing'))
      return
    }
    const p: Pending = { records: item.records, rejects: item.rejects, presence: item.presence, rows: size(item), done }
    this.queue.push(p)
    this.queuedRows += p.rows
    this.waitingRows += p.rows
    this.unanswered++
    this.schedulePump()
  }

  /**
   * Refuses new work and lets what was submitted commit. Bounded: the first write
   * that fails after close() (a group waiting in its backoff gets one last attempt
   * at once) ends all retrying, and after closeTimeoutMs nothing is waited for.
   * What is left fails with GP_INGEST_CLOSED — never acknowledged, so its devices
   * re-send it — and is counted in one log line.
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true
      for (const w of this.roomWaiters.splice(0)) w()
      this.stopping.abort()
    }
    if (this.unanswered > 0) {
      const ms = this.opts.closeTimeoutMs ?? 5_000
      const timer = setTimeout(() => this.giveUp(new Error(`no commit within ${ms} ms of close`), true), ms)
      await new Promise<void>((r) => this.idleWaiters.push(r))
      clearTimeout(timer)
    }
    const n = this.notCommitted
    if (n.messages + n.presence > 0) {
      this.log.info(
        { messages: n.messages, rows: n.rows, presenceEvents: n.presence, err: this.gaveUp?.message },
        `closed with ${n.messages} message(s) and ${n.presence} presence event(s) not committed (database unavailable), none acknowledged`,
      )
      this.notCommitted = { messages: 0, rows: 0, presence: 0 }
    }
  }

  get depth(): { queuedRows: number; inflight: number } {
    return { queuedRows: this.queuedRows, inflight: this.inflight }
  }

  private pumpScheduled = false
  /**
   * Groups form after the current I/O poll: every publish read from the sockets
   * in this turn of the event loop joins the same group. (The embedded driver
   * runs on this thread and nothing is read while it commits: starting a commit
   * at the first message would send groups of one.)
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    setImmediate(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  /**
   * A transaction starts when none is in flight, or — up to `writers` at once —
   * when a full group is waiting: under a stream of single publishes the next
   * group grows while one commits (one statement per group is what the database
   * pays for, so bigger groups cost less per row: 10.0 vs 15.5 µs/row of
   * database CPU with one writer vs four, BENCHMARKS.md Ingest), while batch
   * uploads that fill groups still use every writer.
   */
  private pump(): void {
    while (this.queue.length > 0 && (this.inflight === 0 || (this.inflight < this.opts.writers && this.waitingRows >= this.opts.maxBatchRows))) {
      // One splice per group (shift() per message moves the whole queue each time).
      let n = 0
      let rows = 0
      while (n < this.queue.length && (n === 0 || rows + (this.queue[n] as Pending).rows <= this.opts.maxBatchRows)) rows += (this.queue[n++] as Pending).rows
      const group = this.queue.splice(0, n)
      this.waitingRows -= rows
      this.inflight++
      this.writing.add(group)
      void this.commit(group).finally(() => {
        this.inflight--
        this.writing.delete(group)
        this.queuedRows -= rows
        while (this.roomWaiters.length > 0 && this.queuedRows < this.opts.maxQueuedRows) this.roomWaiters.shift()?.()
        if (this.queue.length > 0) this.schedulePump()
      })
    }
  }

  private async commit(group: Pending[]): Promise<void> {
    let backoff = this.opts.retry.initialMs
    for (;;) {
      if (this.gaveUp) return this.abandon(group)
      try {
        await this.writeGroup(group)
        return
      } catch (err) {
        // Only transient errors reach here (data errors are isolated in writeGroup).
        if (this.closing) {
          this.giveUp(err as Error, false)
          return this.abandon(group)
        }
        this.metrics.retries.inc()
        this.log.warn({ err: (err as Error).message, retryInMs: backoff, messages: group.length }, 'database unavailable: commit retried, nothing acknowledged meanwhile')
        await this.backoff(backoff)
        backoff = Math.min(this.opts.retry.maxMs, backoff * 2)
      }
    }
  }

  /** A retry's wait; close() ends it early (one last attempt, then no more). */
  private backoff(ms: number): Promise<void> {
    return delay(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined)
  }

  /**
   * Closing and the database failed (or the deadline passed): nothing more is
   * tried. What is queued fails now; with `all`, what is being written too (a
   * write that completes later is not answered again).
   */
  private giveUp(err: Error, all: boolean): void {
    this.gaveUp ??= err
    const queued = this.queue.splice(0)
    for (const p of queued) {
      this.queuedRows -= p.rows
      this.waitingRows -= p.rows
    }
    this.abandon(queued)
    if (all) for (const group of this.writing) this.abandon(group)
  }

  private abandon(items: Pending[]): void {
    const why = this.gaveUp?.message ?? 'closing'
    for (const p of items) {
      if (p.answered) continue
      this.count(p)
      this.answer(p, new IngestError('GP_INGEST_CLOSED', `not committed: the ingest closed while the database was unavailable (${why})`))
    }
  }

  private count(item: BatchItem): void {
    if (item.records.length + item.rejects.length > 0) {
      this.notCommitted.messages++
      this.notCommitted.rows += item.records.length + item.rejects.length
    }
    this.notCommitted.presence += item.presence.length
  }

  private answer(p: Pending, err: Error | null, outcomes?: RecordOutcome[]): void {
    if (p.answered) return
    p.answered = true
    this.unanswered--
    p.done(err, outcomes)
    if (this.unanswered === 0 && this.closing) for (const w of this.idleWaiters.splice(0)) w()
  }

  private async writeGroup(group: Pending[], depth = 0): Promise<void> {
    const batch: WriteBatch = { records: [], rejects: [], presence: [] }
    for (const p of group) {
      batch.records.push(...p.records)
      batch.rejects?.push(...p.rejects)
      batch.presence?.push(...p.presence)
    }
    const started = process.hrtime.bigint()
    let result
    try {
      result = await this.store.uplinks.write(batch)
    } catch (err) {
      if (!isDataError(err)) throw err
      if (group.length > 1) {
        // Isolate the message the database refuses; the others commit.
        for (const p of group) await this.writeGroup([p], depth)
        return
      }
      const p = group[0] as Pending
      if (depth >= 2) {
        // Even the sanitised reject row was refused: nothing more to try.
        this.log.error({ err: (err as Error).message, topic: p.rejects[0]?.topic }, 'database refused a reject row: message dropped')
        this.answer(p, null, [])
        return
      }
      this.log.error({ err: (err as Error).message }, 'database refused a message: stored as a reject')
      await this.writeGroup([{ ...p, ...asStoreReject(p, err as Error, depth > 0) }], depth + 1)
      return
    }
    this.metrics.commitSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9)
    this.metrics.batchRows.observe(batch.records.length)
    let at = 0
    const counts = new Map<string, number>()
    let dups = 0
    let conflicts = 0
    for (const p of group) {
      const outcomes = result.outcomes.slice(at, at + p.records.length)
      at += p.records.length
      for (let i = 0; i < outcomes.length; i++) {
        const o = outcomes[i]
        if (o === 'new') {
          const kind = (p.records[i] as UplinkRecord).kind
          counts.set(kind, (counts.get(kind) ?? 0) + 1)
        } else if (o === 'duplicate') dups++
        else conflicts++
      }
      for (const j of p.rejects) this.metrics.rejects.inc({ code: j.code })
      if (p.records.length > 0) this.onCommitted?.(p.records, outcomes)
      this.answer(p, null, outcomes)
    }
    // Counters once per group, not per row.
    for (const [kind, n] of counts) this.metrics.rows.inc({ kind }, n)
    if (dups > 0) this.metrics.dedupHits.inc(dups)
    if (conflicts > 0) this.metrics.conflicts.inc(conflicts)
    if (result.conflicts > 0) this.metrics.rejects.inc({ code: 'GP_INGEST_SEQ_CONFLICT' }, result.conflicts)
  }
}

/** SQLSTATE classes 22 (data), 23 (constraint), 42 (statement): retrying cannot help. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && /^(22|23|42)/.test(code)
}

function asStoreReject(p: Pending, err: Error, sanitise: boolean): BatchItem {
  // PostgreSQL text cannot hold U+0000: the second attempt strips it from the text columns.
  const clean = (s: string) => (sanitise ? s.replaceAll('\u0000', '\\0') : s)
  const rejects = p.rejects.map((j) => ({ ...j, topic: clean(j.topic), message: clean(j.message), deviceId: j.deviceId && clean(j.deviceId), ...(j.field ? { field: clean(j.field) } : {}) }))
  const sources = new Map<Uint8Array, NewReject>()
  for (const r of p.records) {
    if (!r.source || sources.has(r.source.payload)) continue
    sources.set(r.source.payload, {
      receivedAtMs: r.receivedAtMs,
      topic: clean(r.source.topic),
      deviceId: clean(r.deviceId),
      payload: r.source.payload,
      code: 'GP_INGEST_STORE',
      message: `the database refused the rows: ${err.message}`.slice(0, 1000),
    })
  }
  return { records: [], rejects: [...rejects, ...sources.values()], presence: sanitise ? [] : p.presence }
}
