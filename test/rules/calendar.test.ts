import t from 'tap'
import { addWorkingHours, calendarSchema, isWorkingDay, workingHoursBetween } from '../../src/rules/calendar.ts'
import { at, iso } from './fixtures.ts'

// Shanghai, Mon–Fri 09:00–12:00 + 13:30–18:00 (7.5 h a day). 2024-10-01..07 National Day
// holiday; Sun 2024-09-29 and Sat 2024-10-12 make-up workdays.
const cal = calendarSchema.parse({
  holidays: ['2024-10-01', '2024-10-02', '2024-10-03', '2024-10-04', '2024-10-07'],
  makeupWorkdays: ['2024-09-29', '2024-10-12'],
})
const L = (s: string) => at(`${s}+08:00`)

t.test('working days', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['2024-09-27', true], // Fri
    ['2024-09-28', false], // Sat
    ['2024-09-29', true], // Sun, make-up
    ['2024-10-01', false], // Tue, holiday
    ['2024-10-05', false], // Sat
    ['2024-10-08', true], // Tue
    ['2024-10-12', true], // Sat, make-up
  ]
  for (const [d, want] of cases) t.equal(isWorkingDay(cal, d), want, d)
})

t.test('addWorkingHours', async (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['inside the morning', '2024-09-23T09:30', 1, '2024-09-23T10:30'],
    ['across lunch', '2024-09-23T11:30', 1, '2024-09-23T14:00'],
    ['lands on the day end', '2024-09-23T13:30', 4.5, '2024-09-23T18:00'],
    ['into next morning', '2024-09-23T17:00', 2, '2024-09-24T10:00'],
    ['reported at night', '2024-09-23T22:00', 1, '2024-09-24T10:00'],
    ['reported at lunch', '2024-09-23T12:30', 0.5, '2024-09-23T14:00'],
    ['Friday evening over the weekend', '2024-09-20T17:00', 2, '2024-09-23T10:00'],
    ['Friday to make-up Sunday', '2024-09-27T17:00', 2, '2024-09-29T10:00'],
    ['over the National Day holiday', '2024-09-30T17:00', 2, '2024-10-08T10:00'],
    ['a full week of hours', '2024-09-23T09:00', 37.5, '2024-09-27T18:00'],
    ['zero hours', '2024-09-23T22:00', 0, '2024-09-23T22:00'],
  ]
  for (const [name, from, h, want] of cases) t.equal(iso(addWorkingHours(cal, L(from), h)), iso(L(want)), name)
  t.throws(() => addWorkingHours(calendarSchema.parse({ workdays: [] }), L('2024-09-23T09:00'), 1), { code: 'GP_RULES_CALENDAR' })
})

t.test('working hours between two instants', async (t) => {
  const cases: Array<[string, string, string, number]> = [
    ['same morning', '2024-09-23T09:00', '2024-09-23T11:00', 2],
    ['over lunch', '2024-09-23T11:00', '2024-09-23T14:30', 2],
    ['whole day', '2024-09-23T00:00', '2024-09-24T00:00', 7.5],
    ['weekend only', '2024-09-21T00:00', '2024-09-23T00:00', 0],
    ['holiday week', '2024-09-30T00:00', '2024-10-08T00:00', 7.5],
    ['reversed', '2024-09-24T00:00', '2024-09-23T00:00', 0],
  ]
  for (const [name, a, b, want] of cases) t.equal(workingHoursBetween(cal, L(a), L(b)), want, name)
})

t.test('DST calendar: hours are wall-clock hours', async (t) => {
  const berlin = calendarSchema.parse({ timeZone: 'Europe/Berlin', hours: [{ start: '09:00', end: '17:00' }] })
  // Fri 2024-10-25 16:00 CEST + 2 h → Mon 2024-10-28 10:00 CET (fall back on Sunday)
  t.equal(iso(addWorkingHours(berlin, at('2024-10-25T14:00:00Z'), 2)), '2024-10-28T09:00:00.000Z')
  t.equal(workingHoursBetween(berlin, at('2024-10-25T00:00:00Z'), at('2024-10-29T00:00:00Z')), 16)
})

t.test('calendar validation names the field', async (t) => {
  const r = calendarSchema.safeParse({ hours: [{ start: '13:00', end: '12:00' }], holidays: ['2024-13-01'] })
  t.notOk(r.success)
  if (!r.success) t.same(r.error.issues.map((i) => i.path.join('.')).sort(), ['holidays.0', 'hours.0.end'])
})
