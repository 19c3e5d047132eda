import t from 'tap'
import { addDays, formatHhmm, instantToLocal, isoWeekday, isValidTimeZone, localToInstant, offsetMinutes, parseDurationMinutes } from '../../src/rules/tz.ts'

const iso = (ms: number) => new Date(ms).toISOString()

t.test('localToInstant: ordinary, gap and overlap times', async (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['Asia/Shanghai', '2024-06-01', 0, '2024-05-31T16:00:00.000Z'],
    ['Asia/Shanghai', '2024-06-01', 1440, '2024-06-01T16:00:00.000Z'],
    ['UTC', '2024-02-29', 90, '2024-02-29T01:30:00.000Z'],
    // Berlin spring forward 2024-03-31 02:00 CET → 03:00 CEST: 02:30 does not exist → 03:30 CEST
    ['Europe/Berlin', '2024-03-31', 150, '2024-03-31T01:30:00.000Z'],
    ['Europe/Berlin', '2024-03-31', 120, '2024-03-31T01:00:00.000Z'],
    ['Europe/Berlin', '2024-03-31', 180, '2024-03-31T01:00:00.000Z'],
    // Berlin fall back 2024-10-27 03:00 CEST → 02:00 CET: 02:30 twice → the earlier (CEST)
    ['Europe/Berlin', '2024-10-27', 150, '2024-10-27T00:30:00.000Z'],
    ['Europe/Berlin', '2024-10-27', 180, '2024-10-27T02:00:00.000Z'],
    // New York spring forward 2024-03-10 02:00 EST → 03:00 EDT; fall back 2024-11-03 02:00 EDT → 01:00 EST
    ['America/New_York', '2024-03-10', 150, '2024-03-10T07:30:00.000Z'],
    ['America/New_York', '2024-11-03', 90, '2024-11-03T05:30:00.000Z'],
    ['America/New_York', '2024-11-03', 150, '2024-11-03T07:30:00.000Z'],
    // Lord Howe: 30-minute DST shift
    ['Australia/Lord_Howe', '2024-10-06', 135, '2024-10-05T15:45:00.000Z'],
  ]
  for (const [tz, date, minute, want] of cases) {
    t.equal(iso(localToInstant(tz, date, minute)), want, `${tz} ${date} +${minute}m`)
  }
})

t.test('instantToLocal and offsets', async (t) => {
  t.same(instantToLocal('Asia/Shanghai', Date.parse('2024-05-31T16:00:00Z')), { date: '2024-06-01', minuteOfDay: 0, weekday: 6 })
  t.same(instantToLocal('America/New_York', Date.parse('2024-11-03T06:30:00Z')), { date: '2024-11-03', minuteOfDay: 90, weekday: 7 })
  t.equal(offsetMinutes('Asia/Shanghai', 0), 480)
  t.equal(offsetMinutes('Europe/Berlin', Date.parse('2024-07-01T00:00:00Z')), 120)
  t.equal(offsetMinutes('Asia/Kolkata', Date.parse('2024-07-01T00:00:00Z')), 330)
})

t.test('date helpers', async (t) => {
  t.equal(addDays('2024-02-28', 1), '2024-02-29')
  t.equal(addDays('2024-03-01', -1), '2024-02-29')
  t.equal(addDays('2024-12-31', 1), '2025-01-01')
  t.equal(isoWeekday('2024-06-03'), 1)
  t.equal(isoWeekday('2024-06-09'), 7)
  t.equal(formatHhmm(1500), '01:00')
  t.equal(parseDurationMinutes('2h'), 120)
  t.equal(parseDurationMinutes('1h30m'), 90)
  t.equal(parseDurationMinutes('45m'), 45)
  t.equal(parseDurationMinutes('2x'), undefined)
  t.equal(parseDurationMinutes(''), undefined)
  t.ok(isValidTimeZone('Asia/Shanghai'))
  t.notOk(isValidTimeZone('Mars/Olympus_Mons'))
})
