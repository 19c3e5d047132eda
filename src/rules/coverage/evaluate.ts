import type { PatrolPlan } from '../plans/schema.ts'
import type { Instant } from '../tz.ts'
import type { CheckinRow, ClockOffset, CoverageAggregates, DeviceAggregate, FraudSignal, PatrollerAggregate, PeriodAggregate, VisitRef } from './inputs.ts'
import { aggregateCheckins } from './aggregate.ts'
import { coverageQuery } from './query.ts'
import { cmp, patrolPeriods, type PlanWindow } from './windows.ts'

const MINUTE = 60_000

export type CellStatus = 'met' | 'missed' | 'pending'

/** The verdict for one (checkpoint, window), citing the check-ins that satisfy it. */
export interface CellResult {
  readonly checkpointId: string
  readonly windowKey: string
  readonly status: CellStatus
  readonly visits: number
  readonly required: number
  /** Check-in ids of the first `required` visits (fewer when not met). */
  readonly evidence: readonly string[]
}

/**
 * An over-long stretch without a visit of one checkpoint, inside patrolled time.
 * Bounds: a visit, or the start of a patrolled period (`period_start`), or its
 * end (`period_end`), or `now` while the period is still running. The first
 * period of a day that continues the previous day's patrolled time starts from
 * the last visit before the day (the gap then reaches back across midnight and
 * is keyed by that visit in both days' reports, so one case covers it).
 */
export interface GapResult {
  readonly checkpointId: string
  readonly from: Instant
  readonly to: Instant
  readonly minutes: number
  readonly fromKind: 'visit' | 'period_start'
  readonly toKind: 'visit' | 'period_end' | 'now'
  readonly fromCheckinId: string | null
  readonly toCheckinId: string | null
  /** False while late uploads (to + grace not yet passed) could still shorten it. */
  readonly final: boolean
}

export interface DeviceFigures extends DeviceAggregate {
  /** (checkpoint, window) cells this device's visits are cited in. */
  readonly cellsCredited: number
  readonly signals: number
}

export interface PatrollerFigures extends PatrollerAggregate {
  readonly cellsCredited: number
  readonly signals: number
}

/**
 * The coverage of one grid-day. Two scopes share this shape:
 *   - full (`cellsScope` absent): every (checkpoint, window) cell with its
 *     evidence — what `evaluateCoverage` gives, what reports stored before the
 *     exceptions-only change hold, and what `reportDetail` derives on demand;
 *   - exceptions (`cellsScope: 'exceptions'`): what bulk evaluation stores
 *     (`evaluateCompact`, exceptions.ts). `cells` lists only the cells that are
 *     not met (pending, missed, with their partial evidence); every other cell
 *     of a listed window is met, and each window carries its `met` count. Met
 *     cells' evidence is not stored: it is derived from the rows received up to
 *     the report's watermark. Summary, gaps, figures and signals are complete.
 */
export interface CoverageResult {
  readonly gridId: string
  readonly localDate: string
  readonly timeZone: string
  readonly evaluatedAt: Instant
  /** `met`: the window's met cells (exceptions scope only). */
  readonly windows: ReadonlyArray<{ key: string; name: string; start: Instant; end: Instant; closesAt: Instant; met?: number }>
  readonly cellsScope?: 'exceptions'
  /** Every (checkpoint, window) of the day — or, in the exceptions scope, those not met; sorted by window start, window key, checkpoint. */
  readonly cells: readonly CellResult[]
  readonly summary: {
    readonly required: number
    readonly met: number
    readonly missed: number
    readonly pending: number
    /** met / (met + missed) × 100, two decimals; pending excluded; null when nothing is decided yet. */
    readonly coveragePct: number | null
  }
  readonly gaps: readonly GapResult[]
  readonly devices: readonly DeviceFigures[]
  readonly patrollers: readonly PatrollerFigures[]
  readonly signals: readonly FraudSignal[]
}

/**
 * Stage B: verdicts of one grid-day from stage A's aggregates, at `now`.
 * A cell is met as soon as it has its visits (late data only adds visits); else
 * pending until its window end + grace; then missed.
 */
export function evaluateCoverage(
  plan: PatrolPlan,
  localDate: string,
  windows: readonly PlanWindow[],
  agg: CoverageAggregates,
  now: Instant,
): CoverageResult {
  const grace = plan.graceMinutes * MINUTE
  const cellAgg = new Map(agg.cells.map((c) => [`${c.windowKey}\u0000${c.checkpointId}`, c]))
  const cells: CellResult[] = []
  for (const w of windows) {
    for (const cp of [...plan.checkpoints].sort((a, b) => cmp(a.id, b.id))) {
      const a = cellAgg.get(`${w.key}\u0000${cp.id}`)
      const visits = a?.visits ?? 0
      const status: CellStatus = visits >= w.visitsRequired ? 'met' : now < w.end + grace ? 'pending' : 'missed'
      cells.push({
        checkpointId: cp.id,
        windowKey: w.key,
        status,
        visits,
        required: w.visitsRequired,
        evidence: (a?.evidence ?? []).slice(0, w.visitsRequired).map((v) => v.checkinId),
      })
    }
  }
  const count = (s: CellStatus) => cells.filter((c) => c.status === s).length
  const met = count('met')
  const missed = count('missed')
  const decided = met + missed
  const gaps = findGaps(plan, windows, fullPeriodLookup(agg), agg.previousVisits, now)

  const citedBy = (pick: (v: VisitRef) => string | null) => {
    const m = new Map<string, number>()
    for (const c of agg.cells) {
      const w = windows.find((x) => x.key === c.windowKey)
      const who = new Set(c.evidence.slice(0, w?.visitsRequired ?? 0).map(pick))
      for (const k of who) if (k !== null) m.set(k, (m.get(k) ?? 0) + 1)
    }
    return m
  }
  const byDevice = citedBy((v) => v.deviceId)
  const byBadge = citedBy((v) => v.badge)
  const signalsOf = (pred: (s: FraudSignal) => boolean) => agg.signals.filter(pred).length

  return {
    gridId: plan.gridId,
    localDate,
    timeZone: plan.timeZone,
    evaluatedAt: now,
    windows: windows.map((w) => ({ key: w.key, name: w.name, start: w.start, end: w.end, closesAt: w.end + grace })),
    cells,
    summary: {
      required: cells.length,
      met,
      missed,
      pending: count('pending'),
      coveragePct: decided === 0 ? null : Math.round((met / decided) * 10_000) / 100,
    },
    gaps,
    devices: [...agg.devices]
      .sort((a, b) => cmp(a.deviceId, b.deviceId))
      .map((d) => ({ ...d, cellsCredited: byDevice.get(d.deviceId) ?? 0, signals: signalsOf((s) => s.deviceId === d.deviceId) })),
    patrollers: [...agg.patrollers]
      .sort((a, b) => cmp(a.badge, b.badge))
      .map((p) => ({ ...p, cellsCredited: byBadge.get(p.badge) ?? 0, signals: signalsOf((s) => s.badge === p.badge) })),
    signals: agg.signals,
  }
}

/**
 * What findGaps knows of one (checkpoint, period): its visits, `'none'` (no
 * visit in the period: one gap over all of it), or `'skip'` (known to hold no
 * over-long gap — the compact form leaves such pairs out, compact.ts).
 */
export type PeriodVisits = Pick<PeriodAggregate, 'first' | 'last' | 'longGaps'> | 'none' | 'skip'

/** The full form: every (checkpoint, period) with a visit is listed; the rest had none. */
export function fullPeriodLookup(agg: Pick<CoverageAggregates, 'periods'>): (periodStart: Instant, checkpointId: string) => PeriodVisits {
  const perPeriod = new Map(agg.periods.map((p) => [`${p.periodStart}\u0000${p.checkpointId}`, p]))
  return (periodStart, checkpointId) => perPeriod.get(`${periodStart}\u0000${checkpointId}`) ?? 'none'
}

/**
 * Over-long gaps of a grid-day (GapResult), the same rules for the full and the
 * compact stage A: `lookup` tells a (checkpoint, period)'s visits, `previousVisits`
 * the last visit before the day per checkpoint (used for the day's first period).
 */
export function findGaps(
  plan: PatrolPlan,
  windows: readonly PlanWindow[],
  lookup: (periodStart: Instant, checkpointId: string) => PeriodVisits,
  previousVisits: CoverageAggregates['previousVisits'],
  now: Instant,
): GapResult[] {
  const grace = plan.graceMinutes * MINUTE
  const maxGap = plan.maxGapMinutes * MINUTE
  const periods = patrolPeriods(windows)
  const firstStart = periods[0]?.start
  const prev = new Map(previousVisits.map((p) => [p.checkpointId, p.visit]))
  const out: GapResult[] = []
  const push = (checkpointId: string, from: VisitRef | Instant, to: VisitRef | Instant, toKind: GapResult['toKind']) => {
    const fromAt = typeof from === 'number' ? from : from.at
    const toAt = typeof to === 'number' ? to : to.at
    if (toAt - fromAt <= maxGap) return
    out.push({
      checkpointId,
      from: fromAt,
      to: toAt,
      minutes: Math.floor((toAt - fromAt) / MINUTE),
      fromKind: typeof from === 'number' ? 'period_start' : 'visit',
      toKind,
      fromCheckinId: typeof from === 'number' ? null : from.checkinId,
      toCheckinId: typeof to === 'number' ? null : to.checkinId,
      final: toKind === 'visit' || now >= toAt + grace,
    })
  }
  for (const p of periods) {
    if (now <= p.start) continue
    const end = Math.min(p.end, now)
    const endKind = now < p.end ? 'now' : 'period_end'
    for (const cp of plan.checkpoints) {
      const agg1 = lookup(p.start, cp.id)
      if (agg1 === 'skip') continue
      const lead: VisitRef | Instant = (p.start === firstStart ? prev.get(cp.id) : undefined) ?? p.start
      if (agg1 === 'none') {
        push(cp.id, lead, end, endKind)
        continue
      }
      push(cp.id, lead, agg1.first, 'visit')
      for (const g of agg1.longGaps) push(cp.id, g.from, g.to, 'visit')
      if (agg1.last.at < end) push(cp.id, agg1.last, end, endKind)
    }
  }
  return out.sort((a, b) => a.from - b.from || cmp(a.checkpointId, b.checkpointId) || a.to - b.to)
}

/** Convenience for small grids and tests: stage A in Node, then stage B. */
export function evaluateGridDay(input: {
  plan: PatrolPlan
  localDate: string
  checkins: readonly CheckinRow[]
  offsets?: readonly ClockOffset[]
  now: Instant
}): CoverageResult {
  const { query, windows } = coverageQuery(input.plan, input.localDate)
  const agg: CoverageAggregates =
    windows.length === 0
      ? { cells: [], periods: [], previousVisits: [], devices: [], patrollers: [], signals: [] }
      : aggregateCheckins(query, input.checkins, input.offsets ?? [])
  return evaluateCoverage(input.plan, input.localDate, windows, agg, input.now)
}
