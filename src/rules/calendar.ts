import { z } from 'zod'
import { CalendarError } from './errors.ts'
import { hhmm, localDate, timeZone, weekday, weekdayName } from './plans/fields.ts'
import { addDays, instantToLocal, isoWeekday, localToInstant, parseHhmm, type Instant } from './tz.ts'

const HOUR = 3_600_000
/** Search horizon: a calendar with no working time within ten years is broken. */
const MAX_DAYS = 3660

/**
 * A work calendar: working weekdays and daily hours in a time zone, public
 * holidays (off even on a workday) and make-up workdays (调休: on even on a
 * weekend). Case deadlines are counted on it.
 */
export const calendarSchema = z.object({
  timeZone,
  workdays: z.array(weekday).default(['mon', 'tue', 'wed', 'thu', 'fri']).describe('Ordinary working weekdays'),
  hours: z
    .array(z.object({ start: hhmm, end: hhmm }).refine((h) => h.start < h.end, { message: 'start must be before end', path: ['end'] }))
    .min(1)
    .default([
      { start: '09:00', end: '12:00' },
      { start: '13:30', end: '18:00' },
    ])
    .superRefine((hs, ctx) => {
      for (let i = 1; i < hs.length; i++) {
        const a = hs[i - 1]
        const b = hs[i]
        if (a && b && b.start < a.end) ctx.addIssue({ code: 'custom', path: [i, 'start'], message: 'hours must be sorted and not overlap' })
      }
    })
    .describe('Working hours of a working day (same-day intervals)'),
  holidays: z.array(localDate).default([]).describe('Dates off even if they are workdays'),
  makeupWorkdays: z.array(localDate).default([]).describe('Dates worked even if they are not workdays (调休)'),
})

export type WorkCalendar = z.output<typeof calendarSchema>

export function isWorkingDay(cal: WorkCalendar, date: string): boolean {
  if (cal.makeupWorkdays.includes(date)) return true
  if (cal.holidays.includes(date)) return false
  return cal.workdays.includes(weekdayName(isoWeekday(date)))
}

/** Working intervals of a local date as instants (none on days off). */
export function workingIntervals(cal: WorkCalendar, date: string): Array<{ start: Instant; end: Instant }> {
  if (!isWorkingDay(cal, date)) return []
  return cal.hours.map((h) => ({ start: localToInstant(cal.timeZone, date, parseHhmm(h.start)), end: localToInstant(cal.timeZone, date, parseHhmm(h.end)) }))
}

/**
 * The instant `hours` working hours after `from`. Landing exactly on the end of
 * a working interval returns that end (a deadline of 18:00, not 09:00 next day).
 */
export function addWorkingHours(cal: WorkCalendar, from: Instant, hours: number): Instant {
  if (hours < 0) throw new CalendarError('hours', `cannot add negative working hours (${hours})`)
  let remaining = hours * HOUR
  if (remaining === 0) return from
  let date = instantToLocal(cal.timeZone, from).date
  for (let i = 0; i < MAX_DAYS; i++, date = addDays(date, 1)) {
    for (const iv of workingIntervals(cal, date)) {
      const s = Math.max(iv.start, from)
      if (s >= iv.end) continue
      const available = iv.end - s
      if (remaining <= available) return s + remaining
      remaining -= available
    }
  }
  throw new CalendarError('workdays', `no working time within ${MAX_DAYS} days of ${new Date(from).toISOString()}`)
}

/** Working milliseconds in [a, b); 0 when b ≤ a. */
export function workingMsBetween(cal: WorkCalendar, a: Instant, b: Instant): number {
  if (b <= a) return 0
  let total = 0
  const last = instantToLocal(cal.timeZone, b).date
  let date = instantToLocal(cal.timeZone, a).date
  for (let i = 0; i < MAX_DAYS * 10 && date <= last; i++, date = addDays(date, 1)) {
    for (const iv of workingIntervals(cal, date)) {
      const s = Math.max(iv.start, a)
      const e = Math.min(iv.end, b)
      if (e > s) total += e - s
    }
  }
  return total
}

export function workingHoursBetween(cal: WorkCalendar, a: Instant, b: Instant): number {
  return workingMsBetween(cal, a, b) / HOUR
}
