import type { CellAggregate, CoverageAggregates, CoverageQuery, DeviceAggregate, PatrollerAggregate, PeriodAggregate, VisitRef } from './inputs.ts'
import { cmp } from './windows.ts'

/**
 * Stage A, exceptions only — what bulk evaluation needs from the store.
 *
 * The full `CoverageAggregates` return one row per visited cell (as many as
 * check-ins: 2.4 M for 10,000 grids), all shipped to Node. Almost every cell is
 * met, and a met cell raises nothing: the compact form keeps only what can
 * become a verdict other than "met", a gap or a signal, plus counts:
 *
 *   - `shortCells`: every (checkpoint, window) with fewer visits than the
 *     window requires (`evidenceLimit`), including cells with no visit at all,
 *     with the visits it has as evidence; sorted by windowKey, checkpointId.
 *     Every other cell of the day is met.
 *   - `metCells`: how many cells are met.
 *   - `periods`: only the (checkpoint, period) pairs that can hold an over-long
 *     gap — no visit in the period (`first` and `last` null), or a long gap
 *     inside, or first visit − lead > maxGapMs (lead: the previous visit for the
 *     day's first period when there is one, else the period start), or
 *     period end − last visit > maxGapMs. A pair not listed has no gap.
 *     Sorted by periodStart, checkpointId.
 *   - `previousVisits`: only for checkpoints listed in the day's first period.
 *   - `devices` / `patrollers`: as in the full form, plus `cellsCredited`
 *     (cells whose first `evidenceLimit` visits include one of theirs; short
 *     cells count too — the same rule as evaluate.ts).
 *   - `signals`: unchanged.
 *
 * `compactAggregates(query, full)` is the reference: the store's SQL
 * (`coverage.compactMany`) must equal it on the same rows (contract test).
 */
export interface CompactPeriod {
  readonly checkpointId: string
  readonly periodStart: number
  readonly first: VisitRef | null
  readonly last: VisitRef | null
  readonly longGaps: PeriodAggregate['longGaps']
}

export interface CompactAggregates {
  readonly shortCells: readonly CellAggregate[]
  readonly metCells: number
  readonly periods: readonly CompactPeriod[]
  readonly previousVisits: CoverageAggregates['previousVisits']
  readonly devices: ReadonlyArray<DeviceAggregate & { readonly cellsCredited: number }>
  readonly patrollers: ReadonlyArray<PatrollerAggregate & { readonly cellsCredited: number }>
  readonly signals: CoverageAggregates['signals']
}

export function compactAggregates(q: CoverageQuery, full: CoverageAggregates): CompactAggregates {
  const cellOf = new Map(full.cells.map((c) => [`${c.windowKey}\u0000${c.checkpointId}`, c]))
  const limitOf = new Map(q.windows.map((w) => [w.key, w.evidenceLimit]))
  const checkpoints = q.checkpoints.map((c) => c.id).sort(cmp)
  const shortCells: CellAggregate[] = []
  let metCells = 0
  for (const w of [...q.windows].sort((a, b) => cmp(a.key, b.key))) {
    for (const checkpointId of checkpoints) {
      const c = cellOf.get(`${w.key}\u0000${checkpointId}`)
      const visits = c?.visits ?? 0
      if (visits >= w.evidenceLimit) metCells++
      else shortCells.push({ checkpointId, windowKey: w.key, visits, evidence: c?.evidence ?? [] })
    }
  }

  const firstStart = q.periods.length === 0 ? undefined : Math.min(...q.periods.map((p) => p.start))
  const prev = new Map(full.previousVisits.map((p) => [p.checkpointId, p.visit]))
  const perPeriod = new Map(full.periods.map((p) => [`${p.periodStart}\u0000${p.checkpointId}`, p]))
  const periods: CompactPeriod[] = []
  for (const p of [...q.periods].sort((a, b) => a.start - b.start)) {
    for (const checkpointId of checkpoints) {
      const a = perPeriod.get(`${p.start}\u0000${checkpointId}`)
      if (!a) {
        periods.push({ checkpointId, periodStart: p.start, first: null, last: null, longGaps: [] })
        continue
      }
      const lead = (p.start === firstStart ? prev.get(checkpointId)?.at : undefined) ?? p.start
      if (a.longGaps.length > 0 || a.first.at - lead > q.maxGapMs || p.end - a.last.at > q.maxGapMs) {
        periods.push({ checkpointId, periodStart: p.start, first: a.first, last: a.last, longGaps: a.longGaps })
      }
    }
  }
  const listedFirst = new Set(periods.filter((p) => p.periodStart === firstStart).map((p) => p.checkpointId))

  const citedBy = (pick: (v: VisitRef) => string | null) => {
    const m = new Map<string, number>()
    for (const c of full.cells) {
      for (const who of new Set(c.evidence.slice(0, limitOf.get(c.windowKey) ?? 0).map(pick))) {
        if (who !== null) m.set(who, (m.get(who) ?? 0) + 1)
      }
    }
    return m
  }
  const byDevice = citedBy((v) => v.deviceId)
  const byBadge = citedBy((v) => v.badge)
  return {
    shortCells,
    metCells,
    periods,
    previousVisits: full.previousVisits.filter((p) => listedFirst.has(p.checkpointId)),
    devices: full.devices.map((d) => ({ ...d, cellsCredited: byDevice.get(d.deviceId) ?? 0 })),
    patrollers: full.patrollers.map((p) => ({ ...p, cellsCredited: byBadge.get(p.badge) ?? 0 })),
    signals: full.signals,
  }
}
