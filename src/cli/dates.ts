import { localDate } from '../rules/plans/fields.ts'

/** A `--flag YYYY-MM-DD` value that is a real calendar date, or an error naming the flag and the value. */
export function requireLocalDate(flag: string, value: string): string {
  if (!localDate.safeParse(value).success) throw new Error(`${flag} must be a calendar date YYYY-MM-DD, got "${value}"`)
  return value
}
