// What really happened, judged the way the plan defines coverage: a
// (checkpoint, window) is met when it has ≥ N visits by TRUE time; coverage % =
// met pairs / required pairs. Gaps are measured inside patrolled periods (the
// day's windows merged), bounded by visits or the period's start/end — the same
// definitions as src/rules/coverage, computed independently from ground truth.
import { addDays, formatHhmm, isoWeekday, localDateOf, localToInstant, parseDuration, parseHhmm } from './local-time.ts'
import type { ScenarioPlan } from './scenario.ts'

const MINUTE = 60_000
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const

export type VisitDelivery = 'live' | 'batch' | 'undelivered'

export interface TrueVisit {
  deviceId: string
  gridId: string
  checkpointId: string
  tagId: string
  trueTimeMs: number
  deviceTimeMs: number
  seq: number
  delivery: VisitDelivery
  /** True time the device got the PUBACK, when delivered. */
  deliveredAtMs?: number
}

export interface TrueWindow {
  key: string
  localDate: string
  name: string
  start: number
  end: number
  visitsRequired: number
}

export interface TrueMiss {
  gridId: string
  checkpointId: string
  windowKey: string
  windowStartMs: number
  windowEndMs: number
  required: number
  /** Visits by true time (counted after rescan merging). */
  visits: number
  /** Of those, delivered to the server by the end of the run. */
  deliveredVisits: number
}

export interface TrueGap {
  gridId: string
  checkpointId: string
  localDate: string
  fromMs: number
  toMs: number
  minutes: number
  fromKind: 'visit' | 'period_start'
  toKind: 'visit' | 'period_end'
}

export interface TrueCoverage {
  gridId: string
  localDate: string
  requiredPairs: number
  metPairs: number
  /** met / required × 100, two decimals; null when nothing was required. */
  coveragePct: number | null
  /** The same counting only visits that reached the server (what the system can know). */
  deliveredMetPairs: number
  deliveredCoveragePct: number | null
}

/** The windows of `plan` that start on local `date`. */
export function windowsOn(plan: ScenarioPlan, date: string): TrueWindow[] {
  const a = plan.activeDays
  if (a.exceptDates.includes(date)) return []
  if (!a.dates.includes(date) && !a.weekdays.includes(WEEKDAYS[isoWeekday(date) - 1]!)) return []
  const at = (m: number) => localToInstant(plan.timeZone, date, m)
  const w = plan.windows
  const out: TrueWindow[] = []
  if (w.kind === 'every') {
    const every = parseDuration(w.every)!
    const s = parseHhmm(w.start)
    const e = w.end === undefined ? s + 1440 : parseHhmm(w.end) > s ? parseHhmm(w.end) : parseHhmm(w.end) + 1440
    for (let m = s; m < e; m += every) {
      const name = `${formatHhmm(m)}-${formatHhmm(m + every)}`
      out.push({ key: `${date}/${name}`, localDate: date, name, start: at(m), end: at(m + every), visitsRequired: plan.visitsPerWindow })
    }
  } else {
    for (const sh of w.shifts) {
      const s = parseHhmm(sh.start)
      const e = parseHhmm(sh.end) > s ? parseHhmm(sh.end) : parseHhmm(sh.end) + 1440
      out.push({ key: `${date}/${sh.name}`, localDate: date, name: sh.name, start: at(s), end: at(e), visitsRequired: sh.visits ?? plan.visitsPerWindow })
    }
  }
  return out.filter((x) => x.end > x.start).sort((x, y) => x.start - y.start)
}

function periods(ws: TrueWindow[]): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = []
  for (const w of [...ws].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1]
    if (last && w.start <= last.end) last.end = Math.max(last.end, w.end)
    else out.push({ start: w.start, end: w.end })
  }
  return out
}

/** Visits of one checkpoint with re-scans closer than `rescanMinutes` merged into one. */
function countable(visits: TrueVisit[], rescanMinutes: number): TrueVisit[] {
  const out: TrueVisit[] = []
  for (const v of [...visits].sort((a, b) => a.trueTimeMs - b.trueTimeMs)) {
    const prev = out[out.length - 1]
    if (prev && v.trueTimeMs - prev.trueTimeMs < rescanMinutes * MINUTE) continue
    out.push(v)
  }
  return out
}

export interface PlanTruth {
  windows: TrueWindow[]
  misses: TrueMiss[]
  gaps: TrueGap[]
  coverage: TrueCoverage[]
}

/** Judges one plan over the local dates [firstDate, firstDate + days). */
export function judgePlan(plan: ScenarioPlan, checkpointIds: string[], visits: TrueVisit[], firstDate: string, days: number): PlanTruth {
  const byCp = new Map<string, TrueVisit[]>(checkpointIds.map((c) => [c, []]))
  for (const v of visits) byCp.get(v.checkpointId)?.push(v)
  const counted = new Map([...byCp].map(([c, vs]) => [c, countable(vs, plan.rescanMinutes)]))
  const truth: PlanTruth = { windows: [], misses: [], gaps: [], coverage: [] }
  for (let d = 0; d < days; d++) {
    const date = addDays(firstDate, d)
    const ws = windowsOn(plan, date)
    truth.windows.push(...ws)
    let met = 0
    let dmet = 0
    for (const w of ws) {
      for (const cp of checkpointIds) {
        const inside = counted.get(cp)!.filter((v) => v.trueTimeMs >= w.start && v.trueTimeMs < w.end)
        const delivered = inside.filter((v) => v.delivery !== 'undelivered').length
        if (inside.length >= w.visitsRequired) met++
        if (delivered >= w.visitsRequired) dmet++
        if (inside.length < w.visitsRequired)
          truth.misses.push({ gridId: plan.gridId, checkpointId: cp, windowKey: w.key, windowStartMs: w.start, windowEndMs: w.end, required: w.visitsRequired, visits: inside.length, deliveredVisits: delivered })
      }
    }
    const required = ws.length * checkpointIds.length
    const pct = (n: number) => (required === 0 ? null : Math.round((n / required) * 10_000) / 100)
    truth.coverage.push({ gridId: plan.gridId, localDate: date, requiredPairs: required, metPairs: met, coveragePct: pct(met), deliveredMetPairs: dmet, deliveredCoveragePct: pct(dmet) })
    const prevPeriods = periods(windowsOn(plan, addDays(date, -1)))
    const ps = periods(ws)
    for (const [pi, p] of ps.entries()) {
      const continues = pi === 0 && prevPeriods.some((q) => q.start < p.start && q.end >= p.start)
      for (const cp of checkpointIds) {
        const all = counted.get(cp)!
        const before = continues ? all.filter((v) => v.trueTimeMs < p.start).pop() : undefined
        let from: { at: number; kind: TrueGap['fromKind'] } = before ? { at: before.trueTimeMs, kind: 'visit' } : { at: p.start, kind: 'period_start' }
        const push = (to: number, toKind: TrueGap['toKind']) => {
          if (to - from.at > plan.maxGapMinutes * MINUTE)
            truth.gaps.push({ gridId: plan.gridId, checkpointId: cp, localDate: date, fromMs: from.at, toMs: to, minutes: Math.floor((to - from.at) / MINUTE), fromKind: from.kind, toKind })
        }
        for (const v of all) {
          if (v.trueTimeMs < p.start || v.trueTimeMs >= p.end) continue
          push(v.trueTimeMs, 'visit')
          from = { at: v.trueTimeMs, kind: 'visit' }
        }
        push(p.end, 'period_end')
      }
    }
  }
  return truth
}

/** The local date a visit counts on for `tz` (helper for reports). */
export function visitDate(tz: string, v: TrueVisit): string {
  return localDateOf(tz, v.trueTimeMs)
}
