import { z } from 'zod'
import type { CoverageReportRow, NewCoverageReport, Store } from '../store/types.ts'
import { alarmConfigSchema, evaluateAlarms, ALARM_RULE } from './alarm.ts'
import { batteryConfigSchema, evaluateBattery, BATTERY_RULE } from './battery.ts'
import { calendarSchema } from './calendar.ts'
import { asProposal, effective, raiseCases, resolveCase, transitionCase, type CaseContext } from './cases/apply.ts'
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
import { diffProposals, diffResults, materialDigest, nextRevision, type CoverageChange, type CoverageReport } from './revisions.ts'
import { evaluateThreshold, thresholdConfigSchema, THRESHOLD_RULE } from './threshold.ts'
import type { Instant } from './tz.ts'

const HOUR = 3_600_000

export const runnerConfigSchema = z
  .object({
    offline: offlineConfigSchema,
    battery: batteryConfigSchema,
    alarm: alarmConfigSchema,
    thresholds: z.array(thresholdConfigSchema).default([]).describe('Sensor threshold rules, one per metric'),
    deviceLookbackHours: z.number().positive().default(48).describe('How far back the battery, alarm and threshold rules read'),
    passesInFlight: z.number().int().min(1).max(8).optional().describe('Stage A passes running at once (default: 2 on the server driver, 1 embedded)'),
    batchGrids: z.number().int().min(1).default(500).describe('Grid-days aggregated per SQL pass (the next pass runs while the previous one is stored)'),
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
  /** no_plan: no plan version in force on the date. */
  readonly status: 'no_plan' | 'unchanged' | 'revised'
  readonly revision: number | null
  readonly casesOpened: number
  readonly casesUpdated: number
  readonly casesResolved: number
  /** The evaluated result, in the exceptions scope (what is stored; evaluate.ts). */
  readonly result?: CoverageResult
}

/** A stored report's full per-cell detail, derived on demand (Runner.reportDetail). */
export interface ReportDetail {
  /** Every (checkpoint, window) with its evidence, as of the report's watermark and evaluation instant. */
  readonly result: CoverageResult
  /** 'stored': a full result stored before the exceptions-only reports; 'derived': re-evaluated now. */
  readonly source: 'stored' | 'derived'
  /**
   * Where the derived detail's exceptions disagree with the stored report (empty
   * when they agree). Non-empty means the rows visible now, received up to the
   * watermark, are not those the report saw: rows committed with a received_at
   * older than the watermark after it was taken (or data removed since).
   */
  readonly disagreements: readonly CoverageChange[]
}

export interface Runner {
  evaluateDay(gridId: string, localDate: string): Promise<DayOutcome>
  /** Many grid-days, aggregated in SQL in batches (config.batchGrids). */
  evaluateDays(items: ReadonlyArray<{ gridId: string; localDate: string }>): Promise<DayOutcome[]>
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
 */
export function asOfWatermark(q: CoverageQuery, watermark: Instant | null): CoverageQuery {
  return watermark === null ? q : { ...q, receivedUpTo: watermark }
}

/**
 * The only I/O of the rules layer (STYLE: pure core, thin runner): loads plans,
 * aggregates and the previous report through the Store, evaluates with the pure
 * core, stores a new revision only when the result changed, and raises, updates
 * or resolves cases idempotently. Re-runs and concurrent runners are safe: the
 * report revision is unique per grid-day and cases are upserted by dedup key.
 */
export function createRunner(deps: { store: Store; log: Logger; now?: () => Instant; config?: z.input<typeof runnerConfigSchema> }): Runner {
  const { store, log } = deps
  const now = deps.now ?? Date.now
  const config = runnerConfigSchema.parse(deps.config ?? {})
  const baseConfig = config

  const context = async (): Promise<CaseContext> => ({
    store,
    categories: categoriesSchema.parse((await store.rulesConfig.get('categories')) ?? undefined),
    calendar: calendarSchema.parse((await store.rulesConfig.get('calendar')) ?? {}),
  })

  // Plan versions are immutable: each is parsed once (the scheduler asks every tick).
  const parsed = new Map<string, PatrolPlan & { version: number }>()
  async function plans(): Promise<Map<string, Array<PatrolPlan & { version: number }>>> {
    const out = new Map<string, Array<PatrolPlan & { version: number }>>()
    for (const row of await store.plans.listAll()) {
      const key = `${row.gridId}\u0000${row.version}`
      const plan = parsed.get(key) ?? { ...parsePlan(row.plan), version: row.version, ...(row.effectiveFrom ? { effectiveFrom: row.effectiveFrom } : {}) }
      parsed.set(key, plan)
      out.set(row.gridId, [...(out.get(row.gridId) ?? []), plan])
    }
    return out
  }

  async function evaluateDays(items: ReadonlyArray<{ gridId: string; localDate: string }>): Promise<DayOutcome[]> {
    const all = await plans()
    const ctx = await context()
    const out: DayOutcome[] = []
    // Stage A of the next batch runs in the database while this one is
    // evaluated and stored in Node (pipelined: the two overlap on 2 cores).
    const prepare = (batch: ReadonlyArray<{ gridId: string; localDate: string }>) => {
      const jobs = batch.map((it) => {
        const plan = planInForce(all.get(it.gridId) ?? [], it.localDate)
        return { ...it, plan, built: plan ? coverageQuery(plan, it.localDate) : undefined }
      })
      const live = jobs.filter((j) => j.built && j.built.windows.length > 0)
      const ready = (async () => {
        // Taken before the aggregate: every row received up to it was visible,
        // and only those count (a report and its on-demand detail see the same rows).
        const watermark = await store.watermark.current()
        const at = now()
        const aggs = await compactStageA(store, live.map((j) => asOfWatermark(j.built!.query, watermark)), config.stageA)
        return { jobs, live, aggs, watermark, at }
      })()
      ready.catch(() => undefined) // awaited below; not an unhandled rejection while the previous batch settles
      return ready
    }
    const batches: Array<ReadonlyArray<{ gridId: string; localDate: string }>> = []
    for (let i = 0; i < items.length; i += config.batchGrids) batches.push(items.slice(i, i + config.batchGrids))
    // Server: two passes in flight on two connections (both database cores work);
    // embedded PGlite runs one statement at a time, so one pass ahead is enough.
    const ahead = config.passesInFlight ?? (store.capabilities.driver === 'pg' ? 2 : 1)
    const queue = batches.slice(0, ahead).map(prepare)
    for (let b = 0; b < batches.length; b++) {
      const { jobs, live, aggs, watermark, at } = await queue.shift()!
      const more = batches[b + ahead]
      if (more) queue.push(prepare(more))
      const aggOf = new Map(live.map((j, k) => [j, aggs[k] as CompactAggregates]))
      const days = jobs.flatMap((j) => {
        if (!j.plan || !j.built) return []
        const agg = aggOf.get(j) ?? NO_VISITS
        return [{ plan: j.plan, result: evaluateCompact(j.plan, j.localDate, j.built.windows, agg, at) }]
      })
      const settled = await settleDays(ctx, days, watermark, at)
      for (const j of jobs) {
        const done = settled.get(dayKey(j))
        out.push(done ?? { gridId: j.gridId, localDate: j.localDate, status: 'no_plan', revision: null, casesOpened: 0, casesUpdated: 0, casesResolved: 0 })
      }
    }
    return out
  }

  /**
   * Stores the revisions that changed (one statement for the batch; a grid-day a
   * concurrent runner stored first is re-compared with theirs) and brings each
   * day's cases in line with its result.
   */
  async function settleDays(
    ctx: CaseContext,
    days: ReadonlyArray<{ plan: PatrolPlan & { version: number }; result: CoverageResult }>,
    watermark: number | null,
    at: Instant,
  ): Promise<Map<string, DayOutcome>> {
    const keys = days.map((d) => ({ gridId: d.result.gridId, localDate: d.result.localDate }))
    const status = new Map<string, { status: DayOutcome['status']; revision: number }>()
    // Unchanged days are recognised by digest, without reading their results back.
    const digests = new Map((await store.reports.latestDigests(keys)).map((r) => [dayKey(r), r]))
    const digestOf = new Map(days.map((d) => [dayKey(d.result), materialDigest(d.result)]))
    let pending = days.filter((d) => {
      const stored = digests.get(dayKey(d.result))
      if (!stored || stored.digest === null || stored.digest !== digestOf.get(dayKey(d.result))) return true
      status.set(dayKey(d.result), { status: 'unchanged', revision: stored.revision })
      return false
    })
    const prev = new Map((await store.reports.latestMany(pending.map((d) => d.result))).map((r) => [dayKey(r), toReport(r)]))
    for (let attempt = 0; attempt < 5 && pending.length > 0; attempt++) {
      const toSave: Array<{ day: (typeof days)[number]; row: NewCoverageReport }> = []
      for (const d of pending) {
        const next = nextRevision(prev.get(dayKey(d.result)), d.result, watermark ?? 0)
        status.set(dayKey(d.result), { status: 'unchanged', revision: next.report.revision })
        if (next.changed) toSave.push({ day: d, row: reportRow(d.plan.version, d.result, next.report.revision, next.changes, watermark, at, digestOf.get(dayKey(d.result)) ?? null) })
      }
      const saved = await store.reports.saveMany(toSave.map((x) => x.row))
      toSave.forEach((x, k) => saved[k] && status.set(dayKey(x.day.result), { status: 'revised', revision: x.row.revision }))
      // A concurrent runner stored that revision first: compare with theirs.
      pending = toSave.filter((_, k) => !saved[k]).map((x) => x.day)
      for (const r of await store.reports.latestMany(pending.map((d) => d.result))) prev.set(dayKey(r), toReport(r))
    }

    const stored = new Map<string, CaseProposal[]>()
    for (const c of await store.cases.forReports(keys, [PATROL_MISS, PATROL_GAP])) {
      const k = dayKey({ gridId: c.gridId, localDate: c.reportDate ?? '' })
      stored.set(k, [...(stored.get(k) ?? []), asProposal(c)])
    }
    const raise: Array<{ p: CaseProposal; reportDate: string }> = []
    const resolve: CaseProposal[] = []
    for (const d of days) {
      const diff = diffProposals((stored.get(dayKey(d.result)) ?? []).map(canonical), coverageCaseProposals(d.result).map((p) => canonical(effective(ctx, p))))
      for (const p of [...diff.opened, ...diff.updated]) raise.push({ p, reportDate: d.result.localDate })
      resolve.push(...diff.resolved)
    }
    const raised = await raiseCases(ctx, raise, at)
    const out = new Map<string, DayOutcome>()
    for (const d of days) {
      const k = dayKey(d.result)
      const st = status.get(k) ?? { status: 'unchanged' as const, revision: null }
      out.set(k, { gridId: d.result.gridId, localDate: d.result.localDate, ...st, casesOpened: 0, casesUpdated: 0, casesResolved: 0, result: d.result })
    }
    const bump = (gridId: string, date: string | null, f: 'casesOpened' | 'casesUpdated' | 'casesResolved') => {
      const o = out.get(dayKey({ gridId, localDate: date ?? '' }))
      if (o) out.set(dayKey(o), { ...o, [f]: o[f] + 1 })
    }
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
    return out
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
    const agg = windows.length === 0 ? NO_AGGREGATES : await store.coverage.aggregates(asOfWatermark(query, row.watermarkMs))
    const result = evaluateCoverage(plan, row.localDate, windows, agg, row.evaluatedAtMs)
    return { result, source: 'derived', disagreements: diffResults(stored, exceptionsOf(result)) }
  }

  return {
    evaluateDay: async (gridId, localDate) => (await evaluateDays([{ gridId, localDate }]))[0] as DayOutcome,
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
