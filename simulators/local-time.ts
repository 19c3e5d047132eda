// Local wall-clock time ↔ instants on the platform's IANA database (Intl). A
// local time in a DST gap moves forward; an ambiguous one takes the earlier
// instant (the same 'compatible' rule the coverage rules use).
const DAY = 86_400_000
const fmts = new Map<string, Intl.DateTimeFormat>()

function fmt(tz: string): Intl.DateTimeFormat {
  let f = fmts.get(tz)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    fmts.set(tz, f)
  }
  return f
}

export function isTimeZone(tz: string): boolean {
  try {
    fmt(tz)
    return true
  } catch {
    return false
  }
}

function offsetMs(tz: string, at: number): number {
  const p: Record<string, number> = {}
  for (const x of fmt(tz).formatToParts(new Date(at))) if (x.type !== 'literal') p[x.type] = Number(x.value)
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!)
  return wall - (at - (((at % 1000) + 1000) % 1000))
}

/** Instant of local `date` (YYYY-MM-DD) + `minute` minutes (may exceed 1440) in `tz`. */
export function localToInstant(tz: string, date: string, minute: number): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  const wall = Date.UTC(y, m - 1, d) + minute * 60_000
  const o1 = offsetMs(tz, wall - offsetMs(tz, wall))
  const guess = wall - o1
  const o2 = offsetMs(tz, guess)
  if (o2 === o1) {
    const earlier = wall - offsetMs(tz, guess - 3 * 3_600_000)
    return earlier !== guess && offsetMs(tz, earlier) === offsetMs(tz, guess - 3 * 3_600_000) && earlier < guess ? earlier : guess
  }
  return wall - Math.max(o1, o2) + Math.abs(o1 - o2) // in a gap: forward by the gap
}

/** The local date (YYYY-MM-DD) of instant `at` in `tz`. */
export function localDateOf(tz: string, at: number): string {
  return new Date(at + offsetMs(tz, at)).toISOString().slice(0, 10)
}

export function addDays(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1, d) + n * DAY).toISOString().slice(0, 10)
}

/** ISO weekday, 1 = Monday … 7 = Sunday. */
export function isoWeekday(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  return ((new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7) + 1
}

export function parseHhmm(s: string): number {
  const [h, m] = s.split(':').map(Number) as [number, number]
  return h * 60 + m
}

export function formatHhmm(minute: number): string {
  const m = ((minute % 1440) + 1440) % 1440
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
}

/** "2h", "90m", "1h30m" → minutes; undefined when malformed. */
export function parseDuration(s: string): number | undefined {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?$/.exec(s)
  if (!m || (!m[1] && !m[2])) return undefined
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)
}
