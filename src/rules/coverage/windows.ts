import type { PatrolPlan } from '../plans/schema.ts'
import { spanMinutes } from '../plans/schema.ts'
import { weekdayName } from '../plans/fields.ts'
import { addDays, formatHhmm, isoWeekday, localToInstant, parseDurationMinutes, parseHhmm, type Instant } from '../tz.ts'

/**
 * Concrete windows of one local day. Windows are defined in local wall-clock
 * time and belong to the local date on which they start; a window may end on
 * the next date (crossing midnight). On DST days a window spanning the change
 * is an hour shorter or longer in real time, and consecutive windows still
 * share their boundary instant — the day is tiled without holes or overlaps.
 */
export interface PlanWindow {
  /** Stable within a plan and date: '2024-03-31/08:00-10:00' or '2024-03-31/morning'. */
  readonly key: string
  readonly localDate: string
  /** Shift name, or 'HH:MM-HH:MM' for interval windows. */
  readonly name: string
  readonly start: Instant
  readonly end: Instant
  readonly visitsRequired: number
}

/** Whether the plan has windows starting on this local date. */
export function isActiveDay(plan: PatrolPlan, date: string): boolean {
  if (plan.effectiveFrom !== undefined && date < plan.effectiveFrom) return false
  const days = plan.activeDays
  if (days.exceptDates.includes(date)) return false
  return days.dates.includes(date) || days.weekdays.includes(weekdayName(isoWeekday(date)))
}

/** The windows starting on `date` (local) and ending after the plan's effectiveAt, sorted by start then key; [] on inactive days. */
export function windowsForDay(plan: PatrolPlan, date: string): PlanWindow[] {
  if (!isActiveDay(plan, date)) return []
  const tz = plan.timeZone
  const at = (minute: number) => localToInstant(tz, date, minute)
  const out: PlanWindow[] = []
  const w = plan.windows
  if (w.kind === 'every') {
    const every = parseDurationMinutes(w.every) ?? 0
    const first = parseHhmm(w.start)
    const span = spanMinutes(w.start, w.end)
    for (let m = first; m < first + span; m += every) {
      const name = `${formatHhmm(m)}-${formatHhmm(m + every)}`
      out.push({ key: `${date}/${name}`, localDate: date, name, start: at(m), end: at(m + every), visitsRequired: plan.visitsPerWindow })
    }
  } else {
    for (const s of w.shifts) {
      const start = parseHhmm(s.start)
      const end = start + spanMinutes(s.start, s.end)
      out.push({
        key: `${date}/${s.name}`,
        localDate: date,
        name: s.name,
        start: at(start),
        end: at(end),
        visitsRequired: s.visits ?? plan.visitsPerWindow,
      })
    }
  }
  // Windows that ended before the plan was put in force (a grid's first plan, set during the day) are not judged.
  const from = plan.effectiveAt === undefined ? -Infinity : Date.parse(plan.effectiveAt)
  return out.filter((x) => x.end > x.start && x.end > from).sort((a, b) => a.start - b.start || cmp(a.key, b.key))
}

/**
 * Patrolled periods: the day's windows merged where they touch or overlap.
 * Gaps between visits are measured only inside these (a plan with shifts
 * 08–12 and 14–18 does not count the lunch break as a gap).
 */
export function patrolPeriods(windows: readonly PlanWindow[]): Array<{ start: Instant; end: Instant }> {
  const sorted = [...windows].sort((a, b) => a.start - b.start || a.end - b.end)
  const out: Array<{ start: Instant; end: Instant }> = []
  for (const w of sorted) {
    const last = out[out.length - 1]
    if (last && w.start <= last.end) last.end = Math.max(last.end, w.end)
    else out.push({ start: w.start, end: w.end })
  }
  return out
}

/**
 * Whether the previous local day's patrolled time runs up to `at` without a
 * break — then the first gap of the day is measured from the last visit
 * before the day, not from the day's first window start.
 */
export function continuesPreviousDay(plan: PatrolPlan, date: string, at: Instant): boolean {
  return patrolPeriods(windowsForDay(plan, addDays(date, -1))).some((p) => p.start < at && p.end >= at)
}

/** [earliest window start, latest window end) of a day, or undefined on inactive days. */
export function daySpan(windows: readonly PlanWindow[]): { start: Instant; end: Instant } | undefined {
  if (windows.length === 0) return undefined
  return { start: Math.min(...windows.map((w) => w.start)), end: Math.max(...windows.map((w) => w.end)) }
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
