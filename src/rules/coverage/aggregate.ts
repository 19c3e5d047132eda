import { offsetLookup } from './clock.ts'
import type {
  CellAggregate,
  CheckinRow,
  ClockOffset,
  CoverageAggregates,
  CoverageQuery,
  DeviceAggregate,
  PatrollerAggregate,
  PeriodAggregate,
  VisitRef,
} from './inputs.ts'
import { byAt, fraudSignals, groupBy } from './signals.ts'
import { cmp } from './windows.ts'

/** A check-in with its resolved checkpoint and corrected time (inputs.ts: time basis). */
export interface Scan {
  readonly row: CheckinRow
  readonly checkpointId: string | null
  readonly at: number
  readonly plausible: boolean
  readonly foreign: boolean
}

/**
 * Stage A, the pure reference of what the store computes in SQL (inputs.ts).
 * `rows` may hold more than the day (the caller need not filter); rows before
 * `previousVisitBefore` are used only to find the previous visits; rows received
 * after `receivedUpTo` (when set) are left out.
 */
export function aggregateCheckins(q: CoverageQuery, rows: readonly CheckinRow[], offsets: readonly ClockOffset[]): CoverageAggregates {
  const upTo = q.receivedUpTo
  const scans = toScans(q, upTo === undefined ? rows : rows.filter((r) => r.receivedAt <= upTo), offsets)
  const spanStart = Math.min(...q.periods.map((p) => p.start))
  const spanEnd = Math.max(...q.periods.map((p) => p.end))
  const inSpan = (t: number) => t >= spanStart && t < spanEnd
  const inScope = scans.filter((s) => inSpan(s.plausible ? s.at : s.row.receivedAt))
  const credited = (s: Scan) => s.plausible && s.checkpointId !== null && (q.creditForeignDevices || !s.foreign)
  const visits = chainVisits(inScope.filter((s) => credited(s) && inSpan(s.at)), q.rescanMs)

  const cells: CellAggregate[] = []
  for (const w of q.windows) {
    for (const [checkpointId, list] of groupBy(visits.filter((v) => v.at >= w.start && v.at < w.end), (v) => v.checkpointId ?? '')) {
      cells.push({ checkpointId, windowKey: w.key, visits: list.length, evidence: list.slice(0, w.evidenceLimit).map(ref) })
    }
  }
  cells.sort((a, b) => cmp(a.windowKey, b.windowKey) || cmp(a.checkpointId, b.checkpointId))

  const periods: PeriodAggregate[] = []
  for (const p of q.periods) {
    for (const [checkpointId, list] of groupBy(visits.filter((v) => v.at >= p.start && v.at < p.end), (v) => v.checkpointId ?? '')) {
      const longGaps: Array<{ from: VisitRef; to: VisitRef }> = []
      for (let i = 1; i < list.length; i++) {
        const a = list[i - 1]
        const b = list[i]
        if (a && b && b.at - a.at > q.maxGapMs) longGaps.push({ from: ref(a), to: ref(b) })
      }
      const first = list[0]
      const last = list[list.length - 1]
      if (first && last) periods.push({ checkpointId, periodStart: p.start, first: ref(first), last: ref(last), longGaps })
    }
  }
  periods.sort((a, b) => a.periodStart - b.periodStart || cmp(a.checkpointId, b.checkpointId))

  const previousVisits: Array<{ checkpointId: string; visit: VisitRef }> = []
  const before = q.previousVisitBefore
  if (before !== undefined) {
    const earlier = scans.filter((s) => credited(s) && s.at < before)
    for (const [checkpointId, list] of groupBy(earlier, (s) => s.checkpointId ?? '')) {
      const last = [...list].sort(byAt).at(-1)
      if (last) previousVisits.push({ checkpointId, visit: ref(last) })
    }
  }

  return {
    cells,
    periods,
    previousVisits,
    devices: deviceFigures(inScope, visits),
    patrollers: patrollerFigures(inScope, visits),
    signals: fraudSignals(q, inScope),
  }
}

function toScans(q: CoverageQuery, rows: readonly CheckinRow[], offsets: readonly ClockOffset[]): Scan[] {
  const byTag = new Map<string, string>()
  for (const c of q.checkpoints) {
    byTag.set(c.id, c.id)
    for (const t of c.tagIds) byTag.set(t, c.id)
  }
  const offsetFor = offsetLookup(offsets)
  return rows.map((row) => {
    const at = row.deviceTime - offsetFor(row.deviceId, row.seq)
    const skew = at - row.receivedAt
    return {
      row,
      checkpointId: byTag.get(row.checkpointId ?? row.tagId) ?? null,
      at,
      plausible: skew <= q.maxAheadMs && -skew <= q.maxDelayMs,
      foreign: row.deviceGridId !== undefined && row.deviceGridId !== null && row.deviceGridId !== q.gridId,
    }
  })
}

/** Rescan chaining: a credited scan closer than rescanMs to the previous one of its checkpoint joins that visit. */
function chainVisits(credited: readonly Scan[], rescanMs: number): Scan[] {
  const out: Scan[] = []
  for (const list of groupBy(credited, (s) => s.checkpointId ?? '').values()) {
    const sorted = [...list].sort(byAt)
    sorted.forEach((s, i) => {
      const prev = sorted[i - 1]
      if (!prev || s.at - prev.at >= rescanMs) out.push(s)
    })
  }
  return out.sort(byAt)
}

function ref(s: Scan): VisitRef {
  return { checkinId: s.row.id, at: s.at, deviceId: s.row.deviceId, badge: s.row.badge ?? null }
}

function figures(scans: readonly Scan[], visits: readonly Scan[]) {
  const times = scans.filter((s) => s.plausible).map((s) => s.at)
  return {
    scans: scans.length,
    visits: visits.length,
    checkpoints: new Set(scans.filter((s) => s.plausible && s.checkpointId !== null).map((s) => s.checkpointId)).size,
    firstAt: times.length ? Math.min(...times) : null,
    lastAt: times.length ? Math.max(...times) : null,
  }
}

function deviceFigures(scans: readonly Scan[], visits: readonly Scan[]): DeviceAggregate[] {
  const visitsBy = groupBy(visits, (v) => v.row.deviceId)
  return [...groupBy(scans, (s) => s.row.deviceId)].map(([deviceId, list]) => ({
    deviceId,
    ...figures(list, visitsBy.get(deviceId) ?? []),
    clockImplausible: list.filter((s) => !s.plausible).length,
    foreignScans: list.filter((s) => s.foreign).length,
    unknownTagScans: list.filter((s) => s.checkpointId === null).length,
  }))
}

function patrollerFigures(scans: readonly Scan[], visits: readonly Scan[]): PatrollerAggregate[] {
  const badged = scans.filter((s) => s.row.badge)
  const visitsBy = groupBy(visits.filter((v) => v.row.badge), (v) => v.row.badge ?? '')
  return [...groupBy(badged, (s) => s.row.badge ?? '')].map(([badge, list]) => ({
    badge,
    ...figures(list, visitsBy.get(badge) ?? []),
    devices: [...new Set(list.map((s) => s.row.deviceId))].sort(cmp),
  }))
}
