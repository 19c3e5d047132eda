/**
 * Wall-clock ↔ instant conversion on the platform's IANA database (Intl), so no
 * time-zone data is bundled or goes stale with a dependency. Instants are epoch
 * milliseconds; local dates are 'YYYY-MM-DD'; local times are minutes of day.
 *
 * Non-existent and ambiguous local times follow Temporal's 'compatible'
 * disambiguation: a time in a spring-forward gap moves forward by the gap
 * (Berlin 02:30 on the last Sunday of March → 03:30 CEST); a time repeated by a
 * fall-back overlap takes the earlier instant (the first 02:30).
 */

export type Instant = number
const MINUTE = 60_000
const DAY = 86_400_000

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    formatters.set(timeZone, f)
  }
  return f
}

/** True when the runtime knows this IANA zone (aliases such as 'UTC' included). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone)
    return true
  } catch {
    return false
  }
}

/** The wall clock of `timeZone` at `at`, as if it were UTC (ms). */
function wallAsUtc(timeZone: string, at: Instant): number {
  const p: Record<string, number> = {}
  for (const part of formatter(timeZone).formatToParts(new Date(at))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value)
  }
  const ms = ((at % 1000) + 1000) % 1000
  return Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0) + ms
}

/** UTC offset of `timeZone` at `at`, in minutes (Asia/Shanghai → 480). */
export function offsetMinutes(timeZone: string, at: Instant): number {
  return Math.round((wallAsUtc(timeZone, at) - at) / MINUTE)
}

/** Parses 'YYYY-MM-DD' to the UTC midnight of that calendar date (ms). */
export function dateToUtcMs(date: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date)
  if (!m) throw new RangeError(`not a YYYY-MM-DD date: ${date}`)
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
}

function utcMsToDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/** Calendar arithmetic on local dates. */
export function addDays(date: string, days: number): string {
  return utcMsToDate(dateToUtcMs(date) + days * DAY)
}

/** ISO weekday of a local date: 1 = Monday … 7 = Sunday. */
export function isoWeekday(date: string): number {
  const d = new Date(dateToUtcMs(date)).getUTCDay()
  return d === 0 ? 7 : d
}

/**
 * The instant at which the wall clock of `timeZone` shows `date` plus
 * `minuteOfDay` minutes (may exceed 1440: '24:00' is the next midnight).
 */
export function localToInstant(timeZone: string, date: string, minuteOfDay: number): Instant {
  // Memoised: calendars and plan windows ask for the same few wall times over
  // and over (10,000 grids share a plan shape; every case deadline walks the
  // same working days), and Intl formatting dominates a batch evaluation otherwise.
  const key = `${timeZone}|${date}|${minuteOfDay}`
  const hit = localCache.get(key)
  if (hit !== undefined) return hit
  if (localCache.size >= 100_000) localCache.clear()
  const at = computeLocalToInstant(timeZone, date, minuteOfDay)
  localCache.set(key, at)
  return at
}

const localCache = new Map<string, Instant>()

function computeLocalToInstant(timeZone: string, date: string, minuteOfDay: number): Instant {
  const wall = dateToUtcMs(date) + minuteOfDay * MINUTE
  // Offsets a day either side bracket any single transition (real zones never
  // change offset twice within 48 h).
  const before = offsetMinutes(timeZone, wall - DAY)
  const after = offsetMinutes(timeZone, wall + DAY)
  const candidates = [...new Set([before, after])]
    .map((off) => wall - off * MINUTE)
    .filter((at) => wallAsUtc(timeZone, at) === wall)
    .sort((a, b) => a - b)
  const first = candidates[0]
  if (first !== undefined) return first // overlap → earlier
  return wall - before * MINUTE // gap → shifted forward by the gap
}

/** The local date, minute of day and ISO weekday of an instant. */
export function instantToLocal(timeZone: string, at: Instant): { date: string; minuteOfDay: number; weekday: number } {
  const wall = wallAsUtc(timeZone, at)
  const date = utcMsToDate(Math.floor(wall / DAY) * DAY)
  return { date, minuteOfDay: Math.floor((wall - dateToUtcMs(date)) / MINUTE), weekday: isoWeekday(date) }
}

/** 'HH:MM' → minutes of day ('24:00' → 1440). */
export function parseHhmm(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm)
  if (!m) throw new RangeError(`not an HH:MM time: ${hhmm}`)
  return Number(m[1]) * 60 + Number(m[2])
}

/** minutes of day → 'HH:MM' (wraps past midnight: 1500 → '01:00'). */
export function formatHhmm(minutes: number): string {
  const m = ((minutes % 1440) + 1440) % 1440
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
}

/** '2h' | '90m' | '1h30m' → minutes; undefined when malformed. */
export function parseDurationMinutes(text: string): number | undefined {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?$/.exec(text)
  if (!m || (m[1] === undefined && m[2] === undefined)) return undefined
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)
}
