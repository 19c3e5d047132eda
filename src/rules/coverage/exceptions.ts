import type { PatrolPlan } from '../plans/schema.ts'
import type { Instant } from '../tz.ts'
import type { CompactAggregates, CompactPeriod } from './compact.ts'
import { findGaps, type CellResult, type CellStatus, type CoverageResult, type PeriodVisits } from './evaluate.ts'
import type { FraudSignal } from './inputs.ts'
import { cmp, type PlanWindow } from './windows.ts'

const MINUTE = 60_000

/**
 * Stage B on the compact stage A (compact.ts): the stored result of one
 * grid-day in the exceptions scope (evaluate.ts, CoverageResult). It equals
 * `exceptionsOf(evaluateCoverage(plan, localDate, windows, full, now))` when
 * `compact = compactAggregates(query, full)` — the table test
 * (test/rules/coverage/exceptions.test.ts) holds the two together:
 *   - cells: only those not met — pending until window end + grace, then
 *     missed — with the visits they have as evidence; every other cell is met,
 *     counted per window (`windows[].met`);
 *   - summary over every cell of the day (met from the compact counts);
 *   - gaps by evaluate.ts's findGaps: a (checkpoint, period) not listed in
 *     `compact.periods` holds no gap, one listed with `first: null` had no visit;
 *   - per-device / per-patroller figures with the compact form's cellsCredited,
 *     signals unchanged.
 * Throws when the compact aggregates do not tile the plan's cells (a stage A
 * that broke its contract), rather than store a wrong summary.
 */
export function evaluateCompact(plan: PatrolPlan, localDate: string, windows: readonly PlanWindow[], compact: CompactAggregates, now: Instant): CoverageResult {
  const grace = plan.graceMinutes * MINUTE
  const checkpoints = plan.checkpoints.map((c) => c.id).sort(cmp)
  const short = new Map(compact.shortCells.map((c) => [`${c.windowKey}\u0000${c.checkpointId}`, c]))
  const cells: CellResult[] = []
  const metOf = new Map<string, number>()
  let met = 0
  for (const w of windows) {
    let wmet = 0
    for (const checkpointId of checkpoints) {
      const k = `${w.key}\u0000${checkpointId}`
      const a = short.get(k)
      short.delete(k)
      const visits = a?.visits ?? w.visitsRequired
      if (visits >= w.visitsRequired) {
        wmet++
        continue
      }
      const status: CellStatus = now < w.end + grace ? 'pending' : 'missed'
      cells.push({ checkpointId, windowKey: w.key, status, visits, required: w.visitsRequired, evidence: (a?.evidence ?? []).slice(0, w.visitsRequired).map((v) => v.checkinId) })
    }
    metOf.set(w.key, wmet)
    met += wmet
  }
  if (short.size > 0 || met !== compact.metCells) {
    throw new Error(
      `compact coverage aggregates of ${plan.gridId} ${localDate} do not tile the plan's cells: ` +
        `${met} met by the short cells, ${compact.metCells} by the count; ${short.size} short cells outside the plan`,
    )
  }
  const missed = cells.filter((c) => c.status === 'missed').length
  const decided = met + missed

  const listed = new Map(compact.periods.map((p) => [`${p.periodStart}\u0000${p.checkpointId}`, p]))
  const lookup = (periodStart: Instant, checkpointId: string): PeriodVisits => {
    const p: CompactPeriod | undefined = listed.get(`${periodStart}\u0000${checkpointId}`)
    if (!p) return 'skip'
    if (p.first === null || p.last === null) return 'none'
    return { first: p.first, last: p.last, longGaps: p.longGaps }
  }
  const signalsOf = (pred: (s: FraudSignal) => boolean) => compact.signals.filter(pred).length

  return {
    gridId: plan.gridId,
    localDate,
    timeZone: plan.timeZone,
    evaluatedAt: now,
    windows: windows.map((w) => ({ key: w.key, name: w.name, start: w.start, end: w.end, closesAt: w.end + grace, met: metOf.get(w.key) ?? 0 })),
    cells,
    summary: {
      required: windows.length * checkpoints.length,
      met,
      missed,
      pending: cells.length - missed,
      coveragePct: decided === 0 ? null : Math.round((met / decided) * 10_000) / 100,
    },
    gaps: findGaps(plan, windows, lookup, compact.previousVisits, now),
    devices: [...compact.devices]
      .sort((a, b) => cmp(a.deviceId, b.deviceId))
      .map(({ cellsCredited, ...d }) => ({ ...d, cellsCredited, signals: signalsOf((s) => s.deviceId === d.deviceId) })),
    patrollers: [...compact.patrollers]
      .sort((a, b) => cmp(a.badge, b.badge))
      .map(({ cellsCredited, ...p }) => ({ ...p, cellsCredited, signals: signalsOf((s) => s.badge === p.badge) })),
    signals: compact.signals,
    cellsScope: 'exceptions',
  }
}

/**
 * A result restricted to its exceptions: the met cells dropped, each window's
 * met count kept, `cellsScope: 'exceptions'`; everything else as it is. An
 * exceptions-scope result is returned unchanged. The stored form of a full
 * result (revisions.ts treats the two as equal: met cells' evidence is not material).
 */
export function exceptionsOf(r: CoverageResult): CoverageResult {
  if (r.cellsScope === 'exceptions') return r
  const met = new Map<string, number>()
  for (const c of r.cells) if (c.status === 'met') met.set(c.windowKey, (met.get(c.windowKey) ?? 0) + 1)
  return {
    ...r,
    windows: r.windows.map((w) => ({ ...w, met: met.get(w.key) ?? 0 })),
    cells: r.cells.filter((c) => c.status !== 'met'),
    cellsScope: 'exceptions',
  }
}
