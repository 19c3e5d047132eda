import { z } from 'zod'
import type { CoverageReportRow, NewCoverageReport, ReportHead, Store } from '../store/types.ts'
import { alarmConfigSchema, evaluateAlarms, ALARM_RULE } from './alarm.ts'
import { batteryConfigSchema, evaluateBattery, BATTERY_RULE } from './battery.ts'
import { calendarSchema } from './calendar.ts'
import { asProposal, effective, raiseCases, raiseCasesCounted, resolveCase, transitionCase, type CaseContext } from './cases/apply.ts'
import { categoriesSchema } from './cases/categories.ts'
import type { CaseProposal } from './cases/proposal.ts'
import type { Actor, CaseState } from './cases/workflow.ts'
import { coverageCaseProposals, PATROL_GAP, PATROL_MISS } from './coverage/cases.ts'
import { compactAggregates, type CompactAggregates } from './coverage/compact.ts'
import { evaluateCoverage, type CoverageResult } from './coverage/evaluate.ts'
import { evaluateCompact, exceptionsOf } from './coverage/exceptions.ts'
import type { CoverageQuery } from './coverage/inputs.ts'
import { coverageQuery } from './coverage/query.ts'
import { evaluateOffline, offlineConfigSchema, OFFLINE_RULE } from './offline.ts'
import { parsePlan, planInForce, type PatrolPlan } from './plans/schema.ts'
import { diffProposals, diffResults, isCurrentDigest, nextRevision, reportDigest, type CoverageChange, type CoverageReport } from './revisions.ts'
import { evaluateThreshold, thresholdConfigSchema, THRESHOLD_RULE } from './threshold.ts'
import type { Instant } from './tz.ts'

const HOUR = 3_600_000
const MINUTE = 60_000

export const runnerConfigSchema = z
  .object({
    offline: offlineConfigSchema,
    battery: batteryConfigSchema,
    alarm: alarmConfigSchema,
    thresholds: z.array(thresholdConfigSchema).default([]).describe('Sensor threshold rules, one per metric'),
    deviceLookbackHours: z.number().positive().default(48).describe('How far back the battery, alarm and threshold rules read'),
    passesInFlight: z.number().int().min(1).max(8).optional().describe('Stage A passes running at once (default: 2 on the server driver, 1 embedded)'),
    batchGrids: z.number().int().min(1).default(2500).describe('Grid-days aggregated per SQL pass (the next pass runs while the previous one is stored); a pass reads its grids\' rows wherever they lie in the day\'s pages, so fewer, larger passes read each page fewer times'),
    incremental: z
      .boolean()
      .default(true)
      .describe('Re-evaluate only grid-days whose verdict or cases may have changed since their stored report (late rows, clock offsets, plan, case context, engine, unsettled windows); false: every grid-day asked for'),
    lateOverlapSeconds: z
      .number()
      .min(0)
      .default(120)
      .describe('Incremental evaluation: rows received up to this long before a report\'s watermark may not have been visible to it (a transaction may commit after a later receipt time)'),
    incrementalLookbackHours: z
      .number()
      .positive()
      .default(48)
      .describe('Incremental evaluation: a report whose watermark is older than this (before the current one) is re-evaluated instead of looking for every receipt since it'),
    keepProvisionalRevisions: z
      .boolean()
      .default(false)
      .describe(
        "Keep every provisional report revision (one with pending cells, stored while the day's windows are open or in their grace: about one per window end). Default: a new revision replaces the grid-day's provisional ones, so a day keeps its latest provisional revision and every revision stored once it was complete",
      ),
    stageA: z
      .enum(['sql', 'node'])
      .default('sql')
      .describe('Where bulk evaluation compacts stage A: sql (coverage.compactMany) or node (full aggregates compacted in Node: the reference path, for comparisons)'),
  })
  .prefault({})
export type RunnerConfig = z.output<typeof runnerConfigSchema>

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export interface DayOutcome {
  readonly gridId: string
  readonly localDate: string
  /**
   * no_plan: no plan version in force on the date. expired: the day's check-ins are past the
   * storage retention (some may have been dropped), so it is not evaluated: its stored report stands.
   */
  readonly status: 'no_plan' | 'unchanged' | 'revised' | 'expired'
  readonly revision: number | null
  readonly casesOpened: number
  readonly casesUpdated: number
  readonly casesResolved: number
  /** The evaluated result, in the exceptions scope (what is stored; evaluate.ts). Absent when skipped. */
  readonly result?: CoverageResult
  /** Not re-evaluated (incremental): nothing that can change its report or cases changed since it was stored. */
  readonly skipped?: boolean
}

export interface EvaluateOptions {
  /** Re-evaluate every grid-day asked for, even those incremental evaluation would skip (default: !config.incremental). */
  readonly full?: boolean
}

/** A stored report's full per-cell detail, derived on demand (Runner.reportDetail). */
export interface ReportDetail {
  /** Every (checkpoint, window) with its evidence, as of the report's watermark and evaluation instant. */
  readonly result: CoverageResult
  /**
   * 'stored': a full result stored before the exceptions-only reports; 'derived': re-evaluated now;
   * 'past_retention': the stored exceptions only (met cells unlisted), as the day's check-ins are past
   * the storage retention and its met cells' evidence can no longer be derived.
   */
  readonly source: 'stored' | 'derived' | 'past_retention'
  /**
   * Where the derived detail's exceptions disagree with the stored report (empty
   * when they agree). Non-empty means the rows visible now, received up to the
   * watermark, are not those the report saw: rows committed with a received_at
   * older than the watermark after it was taken (or data removed since).
   */
  readonly disagreements: readonly CoverageChange[]
}

/**
 * The steps of a coverage run, timed for metrics and benches (createRunner's
 * `observe`): the incremental check, stage A in the database, the evaluation in
 * Node, case reconciliation, and reading / storing reports. Passes are pipelined,
 * so the steps of one run overlap (their sum can exceed the run's wall time).
 */
export type RulesStep = 'skip_check' | 'stage_a' | 'evaluate' | 'cases' | 'reports'

export interface Runner {
  /**
   * One grid-day, on request (`report coverage --evaluate`): evaluated in full —
   * rows committed late with an old receipt time are read too — unless
   * `opts.full` is false.
   */
  evaluateDay(gridId: string, localDate: string, opts?: EvaluateOptions): Promise<DayOutcome>
  /**
   * Many grid-days, aggregated in SQL in batches (config.batchGrids). Incremental
   * by default: a grid-day nothing changed for since its stored report is not
   * re-read (outcome `skipped`); the reports and cases are those a full
   * re-evaluation gives.
   */
  evaluateDays(items: ReadonlyArray<{ gridId: string; localDate: string }>, opts?: EvaluateOptions): Promise<DayOutcome[]>
  /** Offline, battery, alarm and threshold rules over the store's current data. */
  runDeviceRules(): Promise<{ opened: number; updated: number; resolved: number }>
  /** A person's case transition, checked against the workflow table (throws the rule's error). */
  transitionCase(caseId: number, to: CaseState, actor: Actor, note: string | null): ReturnType<typeof transitionCase>
  /** Plan versions of every grid with a plan (parsed), for the scheduler. */
  plans(): Promise<Map<string, Array<PatrolPlan & { version: number }>>>
  /**
   * The full detail of a stored report: stage A in full for its grid-day, as of
   * its watermark (rows received up to it), evaluated at its evaluatedAt with its
   * plan version — every cell with the check-ins that prove it — checked against
   * the stored exceptions. Reports stored before exceptions-only storage are
   * full already and returned as they are.
   */
  reportDetail(row: CoverageReportRow): Promise<ReportDetail>
}

/**
 * Stage A for bulk evaluation, exceptions only (compact.ts), computed in SQL
 * (`coverage.compactMany`: nothing per check-in or per met cell reaches Node).
 * `via: 'node'` fetches the full aggregates and compacts them in Node — the
 * reference path, kept for the benchmark's comparison.
 */
export async function compactStageA(store: Store, qs: readonly CoverageQuery[], via: 'sql' | 'node' = 'sql'): Promise<CompactAggregates[]> {
  if (via === 'sql') return store.coverage.compactMany(qs)
  return (await store.coverage.aggregatesMany(qs)).map((a, i) => compactAggregates(qs[i] as CoverageQuery, a))
}

/**
 * Stage A's query as of an ingest watermark: only rows received up to it count
 * (CoverageQuery.receivedUpTo), so a report and its on-demand detail see the
 * same rows. Rows received later are the next evaluation's (scheduler: touched).
 * No watermark: nothing had been received, so nothing counts (not: everything).
 */
export function asOfWatermark(q: CoverageQuery, watermark: Instant | null): CoverageQuery {
  return { ...q, receivedUpTo: watermark ?? 0 }
}

/**
 * The only I/O of the rules layer (STYLE: pure core, thin runner): loads plans,
 * aggregates and the previous report through the Store, evaluates with the pure
 * core, stores a new revision only when the result changed, and raises, updates
 * or resolves cases idempotently. Re-runs and concurrent runners are safe: the
 * report revision is unique per grid-day and cases are upserted by dedup key.
 */
export function createRunner(deps: {
  store: Store
  log: Logger
  now?: () => Instant
  config?: z.input<typeof runnerConfigSchema>
  /** Called with each step's seconds (RulesStep), as it ends. */
  observe?: (step: RulesStep, seconds: number) => void
  /** Days of check-ins the store keeps (0 = all; default: the store's retention setting, GRIDPATROL_RETENTION_DAYS). */
  retentionDays?: number
}): Runner {
  const { store, log } = deps
  const observe = deps.observe
  const since = (step: RulesStep, t0: number) => observe?.(step, (performance.now() - t0) / 1000)
  const timed = async <T>(step: RulesStep, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try {
      return await f()
    } finally {
      since(step, t0)
    }
  }
  const timedSync = <T>(step: RulesStep, f: () => T): T => {
    const t0 = performance.now()
    try {
      return f()
    } finally {
      since(step, t0)
    }
  }
  const now = deps.now ?? Date.now
  const config = runnerConfigSchema.parse(deps.config ?? {})
  const baseConfig = config
  const retentionDays = deps.retentionDays ?? store.uplinks.retentionDays ?? 0
  /**
   * Whether a grid-day reads check-ins the retention may have dropped (its span, and the longest
   * gap before it where the previous visit is looked up, from before now − retentionDays):
   * evaluated again it would count its dropped visits as missed and raise cases for them.
   */
  const pastRetention = (q: CoverageQuery, at: Instant): boolean =>
    retentionDays > 0 && q.periods.length > 0 && Math.min(...q.periods.map((p) => p.start)) - Math.max(0, q.maxGapMs) < at - retentionDays * 24 * HOUR

  const context = async (): Promise<CaseContext> => ({
    store,
    categories: categoriesSchema.parse((await store.rulesConfig.get('categories')) ?? undefined),
    calendar: calendarSchema.parse((await store.rulesConfig.get('calendar')) ?? {}),
  })

  /**
   * Grid-days this runner evaluated and found as their latest report says (or
   * stored): as of which watermark, instant, plan version and case context. A
   * re-evaluation that changes nothing stores nothing, so without this the
   * report's own watermark and instant would keep dating it back (in memory:
   * the scheduler's runner lives as long as the process; bounded).
   */
  const confirmed = new Map<string, Confirmation>()
  const confirm = (k: string, c: Confirmation) => {
    confirmed.delete(k)
    confirmed.set(k, c)
    if (confirmed.size > MAX_CONFIRMED) confirmed.delete(confirmed.keys().next().value as string)
  }

  // A plan version's stage A query and windows for a date (immutable: the scheduler asks again every tick; bounded).
  const queries = new Map<string, ReturnType<typeof coverageQuery>>()
  const built = (plan: PatrolPlan & { version: number }, date: string) => {
    const k = `${plan.gridId}\u0000${plan.version}\u0000${date}`
    let q = queries.get(k)
    if (!q) {
      q = coverageQuery(plan, date)
      queries.set(k, q)
      if (queries.size > MAX_CONFIRMED) queries.delete(queries.keys().next().value as string)
    }
    return q
  }

  /** Each grid-day's last stage A result, as of which watermark and instant (reusedStageA; bounded, in memory). */
  const stageAKept = new Map<string, { planVersion: number; query: CoverageQuery; agg: CompactAggregates; watermarkMs: number | null; evaluatedAtMs: number }>()
  const keepStageA = (k: string, e: typeof stageAKept extends Map<string, infer V> ? V : never) => {
    stageAKept.delete(k)
    stageAKept.set(k, e)
    if (stageAKept.size > MAX_KEPT_STAGE_A) stageAKept.delete(stageAKept.keys().next().value as string)
  }

  // Plan versions are immutable: each is parsed once (the scheduler asks every tick).
  const parsed = new Map<string, PatrolPlan & { version: number }>()
  async function plans(): Promise<Map<string, Array<PatrolPlan & { version: number }>>> {
    const key = (v: { gridId: string; version: number }) => `${v.gridId}\u0000${v.version}`
    const versions = await store.plans.versions()
    // Only versions not parsed before are read with their documents.
    const unseen = versions.filter((v) => !parsed.has(key(v)))
    for (const row of await store.plans.getVersions(unseen)) {
      parsed.set(key(row), { ...parsePlan(row.plan), version: row.version, ...(row.effectiveFrom ? { effectiveFrom: row.effectiveFrom } : {}) })
    }
    const out = new Map<string, Array<PatrolPlan & { version: number }>>()
    for (const v of versions) {
      const plan = parsed.get(key(v))
      if (plan) out.set(v.gridId, [...(out.get(v.gridId) ?? []), plan])
    }
    return out
  }

  /** Grid-days already reported (at info) as past the check-in retention. */
  const toldExpired = new Set<string>()

  async function evaluateDays(items: ReadonlyArray<{ gridId: string; localDate: string }>, opts: EvaluateOptions = {}): Promise<DayOutcome[]> {
    const all = await plans()
    // Read before the context: a change committed after this stamp is seen by the next run (reports' createdAt).
    const stamp = await store.cases.contextChangedAtMs()
    const ctx = await context()
    const done = new Map<string, DayOutcome>()
    const evaluated: CoverageResult[] = []
    const asked = items.map((it) => {
      const plan = planInForce(all.get(it.gridId) ?? [], it.localDate)
      return { ...it, plan, built: plan ? built(plan, it.localDate) : undefined }
    })
    const at0 = now()
    const expired = asked.filter((j) => j.built && pastRetention(j.built.query, at0))
    if (expired.length > 0) {
      const heads = new Map((await store.reports.latestDigests(expired)).map((h) => [dayKey(h), h.revision]))
      for (const j of expired) done.set(dayKey(j), { gridId: j.gridId, localDate: j.localDate, status: 'expired', revision: heads.get(dayKey(j)) ?? null, casesOpened: 0, casesUpdated: 0, casesResolved: 0 })
      // said once per grid-day at info (a device uploading rows that old would repeat it every tick), then at debug
      const fresh = expired.filter((j) => !toldExpired.has(dayKey(j)))
      if (toldExpired.size + fresh.length > 100_000) toldExpired.clear()
      for (const j of fresh) toldExpired.add(dayKey(j))
      const msg = 'grid-days past the check-in retention not evaluated (their stored reports stand)'
      const fields = { gridDays: expired.length, retentionDays, first: expired[0] && dayKey(expired[0]) }
      if (fresh.length > 0) log.info({ ...fields, new: fresh.length }, msg)
      else log.debug(fields, msg)
    }
    const planned = expired.length === 0 ? asked : asked.filter((j) => !done.has(dayKey(j)))
    const skip = (opts.full ?? !config.incremental) ? new Map<string, ReportHead>() : await timed('skip_check', () => unchangedSince(planned, stamp))
    for (const [k, h] of skip) done.set(k, { gridId: h.gridId, localDate: h.localDate, status: 'unchanged', revision: h.revision, casesOpened: 0, casesUpdated: 0, casesResolved: 0, skipped: true })
    let todo = planned.filter((j) => !skip.has(dayKey(j)))
    const incremental = !(opts.full ?? !config.incremental)
    const reused = incremental ? await reusedStageA(todo) : undefined
    if (reused && reused.hits.length > 0) {
      const days = timedSync('evaluate', () => reused.hits.map(({ j, e }) => ({ plan: j.plan!, result: evaluateCompact(j.plan!, j.localDate, j.built!.windows, e.agg, reused.at) })))
      for (const [k, o] of await settleDays(ctx, days, reused.watermark, reused.at, stamp)) done.set(k, o)
      for (const d of days) evaluated.push(d.result)
      const hit = new Set(reused.hits.map((h) => dayKey(h.j)))
      todo = todo.filter((j) => !hit.has(dayKey(j)))
    }
    // Stage A of the next batch runs in the database while this one is
    // evaluated and stored in Node (pipelined: the two overlap on 2 cores).
    const prepare = (jobs: typeof todo) => {
      const live = jobs.filter((j) => j.built && j.built.windows.length > 0)
      const ready = (async () => {
        // Taken before the aggregate: every row received up to it was visible,
        // and only those count (a report and its on-demand detail see the same rows).
        const watermark = await store.watermark.current()
        const at = now()
        const aggs = await timed('stage_a', () => compactStageA(store, live.map((j) => asOfWatermark(j.built!.query, watermark)), config.stageA))
        if (incremental) live.forEach((j, k) => keepStageA(dayKey(j), { planVersion: j.plan!.version, query: j.built!.query, agg: aggs[k] as CompactAggregates, watermarkMs: watermark, evaluatedAtMs: at }))
        return { jobs, live, aggs, watermark, at }
      })()
      ready.catch(() => undefined) // awaited below; not an unhandled rejection while the previous batch settles
      return ready
    }
    const batches: Array<typeof todo> = []
    for (let i = 0; i < todo.length; i += config.batchGrids) batches.push(todo.slice(i, i + config.batchGrids))
    // Server: two passes in flight on two connections (both database cores work);
    // embedded PGlite runs one statement at a time, so one pass ahead is enough.
    const ahead = config.passesInFlight ?? (store.capabilities.driver === 'pg' ? 2 : 1)
    const queue = batches.slice(0, ahead).map(prepare)
    for (let b = 0; b < batches.length; b++) {
      const { jobs, live, aggs, watermark, at } = await queue.shift()!
      const more = batches[b + ahead]
      if (more) queue.push(prepare(more))
      const aggOf = new Map(live.map((j, k) => [j, aggs[k] as CompactAggregates]))
      const days = timedSync('evaluate', () =>
        jobs.flatMap((j) => {
          if (!j.plan || !j.built) return []
          const agg = aggOf.get(j) ?? NO_VISITS
          return [{ plan: j.plan, result: evaluateCompact(j.plan, j.localDate, j.built.windows, agg, at) }]
        }),
      )
      for (const [k, o] of await settleDays(ctx, days, watermark, at, stamp)) done.set(k, o)
      for (const d of days) evaluated.push(d.result)
    }
    // The case context changed while this run raised cases with the old one: the
    // reports it stored are newer than the change, so bring their cases in line now.
    const after = await store.cases.contextChangedAtMs()
    if (after !== stamp && evaluated.length > 0) {
      const counts = await reconcileCases(await context(), evaluated, now())
      for (const [k, c] of counts) {
        const o = done.get(k)
        if (o) done.set(k, { ...o, casesOpened: o.casesOpened + c.casesOpened, casesUpdated: o.casesUpdated + c.casesUpdated, casesResolved: o.casesResolved + c.casesResolved })
      }
    }
    return items.map(
      (it) => done.get(dayKey(it)) ?? { gridId: it.gridId, localDate: it.localDate, status: 'no_plan', revision: null, casesOpened: 0, casesUpdated: 0, casesResolved: 0 },
    )
  }

  /**
   * Incremental evaluation: the grid-days whose stored report a re-evaluation now
   * would leave as it is, with their report. Conservative — a grid-day is
   * re-evaluated unless every input of its verdict and of its cases is known
   * unchanged since its report:
   *  - its report was computed by this engine (digest tag, revisions.ts) with the
   *    plan version in force now;
   *  - the day was settled then and is now (every window closed: end + grace; every
   *    patrol period ended + grace), so the evaluation instant no longer matters;
   *  - the case context (categories, calendar) did not change after it was stored;
   *  - no check-in that stage A would read for it (by tag or checkpoint of its plan,
   *    or by a device of its grid, with a device time inside its scan bounds) was
   *    received since its watermark (less lateOverlapSeconds: a transaction may
   *    commit after a later receipt time), no clock offset measured since re-times such
   *    a row (its device's sync after it, by seq), and its scan slack stayed put.
   */
  async function unchangedSince(
    jobs: ReadonlyArray<{ gridId: string; localDate: string; plan: (PatrolPlan & { version: number }) | undefined; built: ReturnType<typeof coverageQuery> | undefined }>,
    stamp: number | null,
  ): Promise<Map<string, ReportHead>> {
    const out = new Map<string, ReportHead>()
    const withPlan = jobs.filter((j) => j.plan && j.built && j.built.windows.length > 0)
    if (withPlan.length === 0) return out
    const heads = new Map((await store.reports.latestDigests(withPlan)).map((h) => [dayKey(h), h]))
    const at = now()
    const cands = withPlan.flatMap((j) => {
      const stored = heads.get(dayKey(j))
      if (!stored) return []
      // A later evaluation by this runner that found the same report vouches for it as of then.
      const c = confirmed.get(dayKey(j))
      const conf = c && c.revision === stored.revision && c.digest === stored.digest ? c : undefined
      const h = conf ? { ...stored, ...conf } : stored
      const plan = j.plan!
      const { query, windows } = j.built!
      // Computed (or, confirmed, re-checked) by this engine with the plan version in force.
      if (!(conf || isCurrentDigest(h.digest)) || h.planVersion !== plan.version) return []
      // Its cases were brought in line with the case context in force now.
      if (stamp !== null && !(conf ? conf.stamp === stamp : stored.createdAtMs > stamp)) return []
      const settled = Math.max(...windows.map((w) => w.end), ...query.periods.map((p) => p.end)) + plan.graceMinutes * MINUTE
      if (h.evaluatedAtMs < settled || at < settled) return []
      return [{ j, h: stored, seen: h, query }]
    })
    if (cands.length === 0) return out
    const watermark = await store.watermark.current()
    const same = await unreadSince(
      cands.map((c) => ({ query: c.query, watermarkMs: c.seen.watermarkMs, evaluatedAtMs: c.seen.evaluatedAtMs })),
      watermark,
    )
    cands.forEach((c, k) => same[k] && out.set(dayKey(c.j), c.h))
    return out
  }

  /**
   * For each grid-day read by stage A as of `watermarkMs` (the read started after
   * `evaluatedAtMs`): true when nothing stage A would read for it arrived since, up
   * to `watermark` (coverage.changedSince), false when something may have.
   */
  async function unreadSince(
    items: ReadonlyArray<{ query: CoverageQuery; watermarkMs: number | null; evaluatedAtMs: number }>,
    watermark: number | null,
  ): Promise<boolean[]> {
    const overlap = config.lateOverlapSeconds * 1000
    // Rows it may not have seen: received after its watermark, or committed after it ran
    // (stage A runs after evaluatedAt; a row commits at most lateOverlapSeconds after its receipt).
    const since = (c: (typeof items)[number]) => Math.min(c.watermarkMs ?? 0, c.evaluatedAtMs - overlap)
    // Receipts older than the retention are pruned (uplink_seen) with their rows: not trusted. A
    // read older than the lookback is done again rather than every receipt since searched (one query for all).
    const retention = store.uplinks.retentionDays > 0 ? store.uplinks.retentionDays * 86_400_000 - overlap : Infinity
    const oldest = (watermark ?? 0) - Math.min(retention, config.incrementalLookbackHours * HOUR)
    const out = items.map(() => false)
    const asked = items.flatMap((c, i) => (since(c) >= oldest ? [i] : []))
    if (asked.length === 0) return out
    const changed = await store.coverage.changedSince(
      asked.map((i) => ({ query: (items[i] as (typeof items)[number]).query, sinceMs: since(items[i] as (typeof items)[number]) })),
      watermark ?? 0,
    )
    asked.forEach((i, k) => (out[i] = changed[k] === false))
    return out
  }

  /**
   * Days not settled yet (a window still open or in its grace) are re-evaluated at
   * every scheduler tick: the instant moves pending cells and open gaps. Stage A
   * does not depend on the instant, only on the rows, so this runner keeps each
   * day's last stage A result and evaluates it again at the new instant when no
   * row it would read arrived since (the same check as above).
   */
  async function reusedStageA(jobs: ReadonlyArray<{ gridId: string; localDate: string; plan: (PatrolPlan & { version: number }) | undefined; built: ReturnType<typeof coverageQuery> | undefined }>) {
    const cands = jobs.flatMap((j) => {
      const e = stageAKept.get(dayKey(j))
      return j.plan && j.built && e && e.planVersion === j.plan.version && e.query === j.built.query ? [{ j, e }] : []
    })
    if (cands.length === 0) return undefined
    const watermark = await store.watermark.current()
    const at = now()
    const same = await unreadSince(cands.map((c) => c.e), watermark)
    const hits = cands.filter((_, k) => same[k])
    for (const h of hits) keepStageA(dayKey(h.j), { ...h.e, watermarkMs: watermark, evaluatedAtMs: at })
    return { hits, watermark, at }
  }

  /**
   * Brings each changed day's cases in line with its result, then stores the
   * revisions that changed (one statement for the batch; a grid-day a concurrent
   * runner stored first is re-compared with theirs). Cases first: a run that
   * stops between the two leaves the report unstored, so the next run sees the
   * digest differ and raises the cases again (idempotently); a day whose digest
   * is the stored one has its cases in line already and is not reconciled
   * (unless the case context changed after its report was stored).
   */
  async function settleDays(
    ctx: CaseContext,
    days: ReadonlyArray<{ plan: PatrolPlan & { version: number }; result: CoverageResult }>,
    watermark: number | null,
    at: Instant,
    stamp: number | null,
  ): Promise<Map<string, DayOutcome>> {
    const keys = days.map((d) => ({ gridId: d.result.gridId, localDate: d.result.localDate }))
    const status = new Map<string, { status: DayOutcome['status']; revision: number }>()
    // Unchanged days are recognised by digest, without reading their results back.
    const heads = new Map((await timed('reports', () => store.reports.latestDigests(keys))).map((r) => [dayKey(r), r]))
    const digestOf = new Map(days.map((d) => [dayKey(d.result), reportDigest(d.result)]))
    const same = (d: (typeof days)[number]) => {
      const h = heads.get(dayKey(d.result))
      return h !== undefined && h.digest !== null && h.digest === digestOf.get(dayKey(d.result))
    }
    let pending = days.filter((d) => {
      if (!same(d)) return true
      status.set(dayKey(d.result), { status: 'unchanged', revision: heads.get(dayKey(d.result))!.revision })
      return false
    })
    // Cases in line already: the same digest, stored after the case context last changed (or confirmed since).
    const stale = (d: (typeof days)[number]) => {
      if (!same(d)) return true
      const h = heads.get(dayKey(d.result))!
      const c = confirmed.get(dayKey(d.result))
      return stamp !== null && h.createdAtMs <= stamp && !(c && c.revision === h.revision && c.digest === h.digest && c.stamp === stamp)
    }
    const counts = await timed('cases', () => reconcileCases(ctx, days.filter(stale).map((d) => d.result), at))

    const r0 = performance.now()
    const prev = new Map((await store.reports.latestMany(pending.map((d) => d.result))).map((r) => [dayKey(r), toReport(r)]))
    for (let attempt = 0; attempt < 5 && pending.length > 0; attempt++) {
      const toSave: Array<{ day: (typeof days)[number]; row: NewCoverageReport }> = []
      for (const d of pending) {
        const next = nextRevision(prev.get(dayKey(d.result)), d.result, watermark ?? 0)
        status.set(dayKey(d.result), { status: 'unchanged', revision: next.report.revision })
        if (next.changed) toSave.push({ day: d, row: reportRow(d.plan.version, d.result, next.report.revision, next.changes, watermark, at, digestOf.get(dayKey(d.result)) ?? null) })
      }
      const saved = await store.reports.saveMany(toSave.map((x) => x.row), { replaceProvisional: !config.keepProvisionalRevisions })
      toSave.forEach((x, k) => saved[k] && status.set(dayKey(x.day.result), { status: 'revised', revision: x.row.revision }))
      // A concurrent runner stored that revision first: compare with theirs.
      pending = toSave.filter((_, k) => !saved[k]).map((x) => x.day)
      for (const r of await store.reports.latestMany(pending.map((d) => d.result))) prev.set(dayKey(r), toReport(r))
    }
    since('reports', r0)

    const unsaved = new Set(pending.map((d) => dayKey(d.result)))
    const out = new Map<string, DayOutcome>()
    for (const d of days) {
      const k = dayKey(d.result)
      const st = status.get(k) ?? { status: 'unchanged' as const, revision: null }
      // Confirmed where the latest report is known to be this result: the same digest, stored now,
      // or found materially equal to the head read above (a concurrent runner's row: not confirmed).
      const h = heads.get(k)
      const digest = same(d) ? h!.digest : st.status === 'revised' ? digestOf.get(k)! : h && h.revision === st.revision && !unsaved.has(k) ? h.digest : undefined
      if (digest !== undefined && st.revision !== null) confirm(k, { revision: st.revision, digest, planVersion: d.plan.version, watermarkMs: watermark, evaluatedAtMs: at, stamp })
      const c = counts.get(k) ?? { casesOpened: 0, casesUpdated: 0, casesResolved: 0 }
      out.set(k, { gridId: d.result.gridId, localDate: d.result.localDate, ...st, ...c, result: d.result })
    }
    return out
  }

  /** Raises, updates and resolves the patrol cases of these days' results (diffed against their uncleared cases). */
  async function reconcileCases(ctx: CaseContext, results: readonly CoverageResult[], at: Instant) {
    type Counts = { casesOpened: number; casesUpdated: number; casesResolved: number }
    const counts = new Map<string, Counts>()
    if (results.length === 0) return counts
    const bump = (gridId: string, date: string | null, f: keyof Counts) => {
      const k = dayKey({ gridId, localDate: date ?? '' })
      const c = counts.get(k) ?? { casesOpened: 0, casesUpdated: 0, casesResolved: 0 }
      counts.set(k, { ...c, [f]: c[f] + 1 })
    }
    const stored = new Map<string, CaseProposal[]>()
    for (const c of await store.cases.forReports(results, [PATROL_MISS, PATROL_GAP])) {
      const k = dayKey({ gridId: c.gridId, localDate: c.reportDate ?? '' })
      stored.set(k, [...(stored.get(k) ?? []), asProposal(c)])
    }
    const raise: Array<{ p: CaseProposal; reportDate: string }> = []
    const resolve: CaseProposal[] = []
    for (const r of results) {
      // jsonb hands details back with its own key order: compare canonical forms (only where there is a stored one to compare).
      const before = (stored.get(dayKey(r)) ?? []).map(canonical)
      const keys = new Set(before.map((p) => p.key))
      const diff = diffProposals(before, coverageCaseProposals(r).map((p) => (keys.has(p.key) ? canonical(effective(ctx, p)) : effective(ctx, p))))
      for (const p of [...diff.opened, ...diff.updated]) raise.push({ p, reportDate: r.localDate })
      resolve.push(...diff.resolved)
    }
    const raised = await raiseCasesCounted(ctx, raise, at)
    raised.forEach((r, k) => {
      const x = raise[k] as (typeof raise)[number]
      if (r.created) bump(x.p.gridId, x.reportDate, 'casesOpened')
      else if (r.updated) bump(x.p.gridId, x.reportDate, 'casesUpdated')
    })
    for (const p of resolve) {
      const c = await store.cases.byKey(p.key)
      if (!c) continue
      const r = await resolveCase(ctx, c.id, 'late data: the condition no longer holds', at)
      if (r?.event) bump(c.gridId, c.reportDate, 'casesResolved')
    }
    return counts
  }

  async function applyProposals(
    ctx: CaseContext,
    prev: readonly CaseProposal[],
    next: readonly CaseProposal[],
    at: Instant,
    reportDate: string | null,
    resolve: boolean,
    why: string,
  ) {
    // jsonb hands details back with its own key order: compare canonical forms.
    const d = diffProposals(prev.map(canonical), next.map(canonical))
    let casesOpened = 0
    let casesUpdated = 0
    let casesResolved = 0
    for (const r of await raiseCases(ctx, [...d.opened, ...d.updated].map((p) => ({ p, reportDate })), at)) {
      if (r.created) casesOpened++
      else if (r.updated) casesUpdated++
    }
    if (resolve) {
      for (const p of d.resolved) {
        const c = await store.cases.byKey(p.key)
        if (!c) continue
        const r = await resolveCase(ctx, c.id, why, at)
        if (r?.event) casesResolved++
      }
    }
    return { casesOpened, casesUpdated, casesResolved }
  }

  async function runDeviceRules() {
    const ctx = await context()
    // Stored settings (`gridpatrol rules config set device-rules`) replace the given ones section by section.
    const stored = await store.rulesConfig.get('device-rules')
    const config = stored ? runnerConfigSchema.parse({ ...deps.config, ...(stored as object) }) : baseConfig
    const at = now()
    const from = at - config.deviceLookbackHours * HOUR
    const total = { opened: 0, updated: 0, resolved: 0 }
    const add = (c: { casesOpened: number; casesUpdated: number; casesResolved: number }) => {
      total.opened += c.casesOpened
      total.updated += c.casesUpdated
      total.resolved += c.casesResolved
    }
    const open = async (rule: string) => (await store.cases.openOfRule(rule)).map(asProposal)
    const eff = (ps: CaseProposal[]) => ps.map((p) => effective(ctx, p))

    const presence = (await store.rulesInputs.presence()).filter((d) => !d.disabled)
    const offline = evaluateOffline(
      config.offline,
      presence.map((d) => ({ deviceId: d.deviceId, gridId: d.gridId, lastSeenAt: d.lastSeenAtMs, registeredAt: d.registeredAtMs })),
      at,
    )
    add(await applyProposals(ctx, await open(OFFLINE_RULE), eff(offline), at, null, true, 'device seen again'))

    const readings = await store.rulesInputs.battery(from, at + 1)
    const battery = evaluateBattery(config.battery, readings.map((r) => ({ ...r, at: r.atMs })), at)
    // Only devices with readings in the lookback can be judged recovered.
    const judged = new Set(readings.map((r) => r.deviceId))
    const prevBattery = (await open(BATTERY_RULE)).filter((p) => p.subject !== null && judged.has(p.subject))
    add(await applyProposals(ctx, prevBattery, eff(battery), at, null, true, 'battery recovered'))

    // Alarms and threshold runs are facts once seen: never resolved by the rule.
    const alarms = await store.rulesInputs.alarms(from, at + 1)
    add(await applyProposals(ctx, await open(ALARM_RULE), eff(evaluateAlarms(config.alarm, alarms.map((a) => ({ ...a, at: a.atMs })), at)), at, null, false, ''))
    for (const th of config.thresholds) {
      const rows = await store.rulesInputs.telemetry(th.metric, from, at + 1)
      const ps = evaluateThreshold(th, rows.map((r) => ({ ...r, at: r.atMs })), at)
      add(await applyProposals(ctx, await open(THRESHOLD_RULE), eff(ps), at, null, false, ''))
    }
    log.debug({ ...total }, 'device rules evaluated')
    return total
  }

  async function reportDetail(row: CoverageReportRow): Promise<ReportDetail> {
    const stored = row.result as CoverageResult
    if (stored.cellsScope !== 'exceptions') return { result: stored, source: 'stored', disagreements: [] }
    const version = (await store.plans.list(row.gridId)).find((v) => v.version === row.planVersion)
    if (!version) throw new Error(`plan version ${row.planVersion} of grid "${row.gridId}" is gone: the report's detail cannot be derived`)
    const plan = { ...parsePlan(version.plan), ...(version.effectiveFrom ? { effectiveFrom: version.effectiveFrom } : {}) }
    const { query, windows } = coverageQuery(plan, row.localDate)
    if (pastRetention(query, now())) return { result: stored, source: 'past_retention', disagreements: [] }
    const agg = windows.length === 0 ? NO_AGGREGATES : await store.coverage.aggregates(asOfWatermark(query, row.watermarkMs))
    const result = evaluateCoverage(plan, row.localDate, windows, agg, row.evaluatedAtMs)
    return { result, source: 'derived', disagreements: diffResults(stored, exceptionsOf(result)) }
  }

  return {
    evaluateDay: async (gridId, localDate, opts = { full: true }) => (await evaluateDays([{ gridId, localDate }], opts))[0] as DayOutcome,
    reportDetail,
    evaluateDays,
    runDeviceRules,
    transitionCase: async (caseId, to, actor, note) => transitionCase(await context(), caseId, to, actor, note, now()),
    plans,
  }
}

const NO_AGGREGATES = { cells: [], periods: [], previousVisits: [], devices: [], patrollers: [], signals: [] }
/** A grid-day with no windows: nothing to aggregate. */
const NO_VISITS: CompactAggregates = { shortCells: [], metCells: 0, periods: [], previousVisits: [], devices: [], patrollers: [], signals: [] }

const dayKey = (d: { gridId: string; localDate: string }) => `${d.gridId}\u0000${d.localDate}`

/** A grid-day's latest report, re-evaluated and found the same (runner: confirmed). */
interface Confirmation {
  readonly revision: number
  /** The stored report's digest (what the confirmation is of). */
  readonly digest: string | null
  readonly planVersion: number
  readonly watermarkMs: number | null
  readonly evaluatedAtMs: number
  /** cases.contextChangedAtMs() when its cases were last brought in line. */
  readonly stamp: number | null
}
const MAX_CONFIRMED = 200_000
/** Grid-days whose last stage A result a runner keeps (two local days of 10,000 grids). */
const MAX_KEPT_STAGE_A = 20_000

function reportRow(
  planVersion: number,
  result: CoverageResult,
  revision: number,
  changes: unknown[],
  watermark: number | null,
  at: Instant,
  digest: string | null,
): NewCoverageReport {
  const s = result.summary
  return { gridId: result.gridId, localDate: result.localDate, revision, planVersion, watermarkMs: watermark, evaluatedAtMs: at, coveragePct: s.coveragePct, met: s.met, missed: s.missed, pending: s.pending, result, changes, digest }
}

function toReport(r: CoverageReportRow): CoverageReport {
  return { gridId: r.gridId, localDate: r.localDate, revision: r.revision, watermark: r.watermarkMs ?? 0, result: r.result as CoverageResult }
}

function canonical(p: CaseProposal): CaseProposal {
  const detail = Object.fromEntries(Object.entries(p.detail).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return { ...p, detail }
}
