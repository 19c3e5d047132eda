import { z } from 'zod'
import { isValidTimeZone, dateToUtcMs } from '../tz.ts'

/** Shared zod field builders for plans, calendars and rule configs. */

export const hhmm = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time HH:MM (00:00–23:59)')

export const localDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine((d) => {
    try {
      return new Date(dateToUtcMs(d)).toISOString().slice(0, 10) === d
    } catch {
      return false
    }
  }, 'is not a calendar date')

export const timeZone = z
  .string()
  .default('Asia/Shanghai')
  .refine(isValidTimeZone, { error: (iss) => `unknown IANA time zone "${String(iss.input)}"` })
  .describe('IANA time zone the local times and dates are read in')

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const
export type Weekday = (typeof WEEKDAYS)[number]
export const weekday = z.enum(WEEKDAYS)

/** ISO weekday number (1 = Monday) → 'mon'. */
export function weekdayName(iso: number): Weekday {
  const name = WEEKDAYS[iso - 1]
  if (!name) throw new RangeError(`ISO weekday out of range: ${iso}`)
  return name
}
