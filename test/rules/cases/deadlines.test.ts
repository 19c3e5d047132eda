import t from 'tap'
import { calendarSchema } from '../../../src/rules/calendar.ts'
import { categoriesSchema, categoryOf, closureDue, stageTimeline } from '../../../src/rules/cases/categories.ts'
import { caseKey, parseCaseKey } from '../../../src/rules/cases/dedup-key.ts'
import { closureMetrics, factsFromEvents, type CaseFacts } from '../../../src/rules/cases/metrics.ts'
import { at, iso } from '../fixtures.ts'

const cal = calendarSchema.parse({})
const cats = categoriesSchema.parse(undefined)
const L = (s: string) => at(`${s}+08:00`)

t.test('dedup keys are stable and reversible', async (t) => {
  const cases = [
    { rule: 'patrol_miss', gridId: 'G1', subject: 'A', window: '2024-06-01/08:00-10:00' },
    { rule: 'device_offline', gridId: '310101001001001', subject: 'dev|1', window: '2024-06-01T00:00:00.000Z' },
    { rule: 'alarm', gridId: 'G 1', subject: null, window: null },
  ]
  for (const c of cases) t.same(parseCaseKey(caseKey(c)), c)
  t.equal(caseKey(cases[0] ?? cases[2]!), 'patrol_miss|G1|A|2024-06-01%2F08%3A00-10%3A00')
  t.not(caseKey({ rule: 'r', gridId: 'a|b', subject: null, window: null }), caseKey({ rule: 'r', gridId: 'a', subject: 'b', window: null }))
})

t.test('categories: defaults, department, unknown category', async (t) => {
  t.equal(categoryOf(cats, 'patrol_miss').department, 'grid-office')
  t.equal(categoryOf(cats, 'alarm').clock, 'natural')
  t.throws(() => categoryOf(cats, 'graffiti'), { code: 'GP_CASE_UNKNOWN_CATEGORY' })
  const custom = categoriesSchema.parse({ manhole: { department: 'water' } })
  t.same(categoryOf(custom, 'manhole').deadlines, { accept: 1, dispatch: 1, handle: 16, verify: 4, close: 1 })
})

t.test('stage deadlines and overdue flags on the working calendar', async (t) => {
  const cat = categoryOf(cats, 'patrol_miss') // 1 / 1 / 16 / 4 / 1 working hours
  const events = [
    { to: 'reported' as const, at: L('2024-09-20T17:30') }, // Fri
    { to: 'accepted' as const, at: L('2024-09-23T09:10') }, // Mon: accept due Mon 09:30 → on time
    { to: 'dispatched' as const, at: L('2024-09-23T11:00') }, // dispatch due 10:10 → late
    { to: 'handled' as const, at: L('2024-09-24T16:00') }, // handle due Wed 11:00 → on time
  ]
  const now = L('2024-09-25T10:00') // verify due Tue 16:00 + 4 h = Wed 11:30 → not yet
  const got = stageTimeline(events, cat, cal, now).map((s) => `${s.stage} due ${iso(s.dueAt)} ${s.overdue ? 'OVERDUE' : 'ok'}`)
  t.same(got, [
    'accept due 2024-09-23T01:30:00.000Z ok',
    'dispatch due 2024-09-23T02:10:00.000Z OVERDUE',
    'handle due 2024-09-25T04:00:00.000Z ok', // Mon 11:00 + 16 h: Mon 5.5 + Tue 7.5 + Wed 3 → Wed 12:00
    'verify due 2024-09-25T03:00:00.000Z ok', // Tue 16:00 + 4 h: Tue 2 + Wed 2 → Wed 11:00
  ])
  t.equal(stageTimeline(events, cat, cal, L('2024-09-25T11:01')).at(-1)?.overdue, true, 'still waiting past the deadline')
  // 23 working hours from Fri 17:30: Fri 0.5 + Mon 7.5 + Tue 7.5 + Wed 7.5 = 23 → Wed 18:00
  t.equal(iso(closureDue(cat, cal, L('2024-09-20T17:30'))), iso(L('2024-09-25T18:00')))
  const alarm = categoryOf(cats, 'alarm')
  t.equal(iso(closureDue(alarm, cal, L('2024-09-21T22:00'))), iso(L('2024-09-22T03:30')), 'natural hours for alarms')
})

t.test('closure rate and on-time closure rate', async (t) => {
  const base = { streetId: 'S1', department: 'grid-office', dueAt: L('2024-09-10T18:00') }
  const ev = (...xs: Array<[string, string]>) => xs.map(([to, when]) => ({ to: to as CaseFacts['state'], at: L(when) }))
  const factsAsOf = (asOf: number): CaseFacts[] => [
    factsFromEvents({ ...base, key: 'k1', gridId: 'G1' }, ev(['reported', '2024-09-02T09:00'], ['accepted', '2024-09-02T09:30'], ['closed', '2024-09-05T10:00']), asOf),
    factsFromEvents({ ...base, key: 'k2', gridId: 'G1' }, ev(['reported', '2024-09-02T09:00'], ['accepted', '2024-09-02T09:30'], ['closed', '2024-09-12T10:00']), asOf),
    factsFromEvents({ ...base, key: 'k3', gridId: 'G1' }, ev(['reported', '2024-09-02T09:00'], ['accepted', '2024-09-02T09:30'], ['dispatched', '2024-09-02T10:00']), asOf),
    factsFromEvents({ ...base, key: 'k4', gridId: 'G1' }, ev(['reported', '2024-09-02T09:00'], ['accepted', '2024-09-02T09:30'], ['rejected', '2024-09-02T10:00']), asOf),
    factsFromEvents({ ...base, key: 'k5', gridId: 'G1' }, ev(['reported', '2024-09-02T09:00']), asOf),
    factsFromEvents({ ...base, key: 'k6', gridId: 'G2', streetId: 'S1' }, ev(['reported', '2024-09-03T09:00'], ['accepted', '2024-09-03T09:30'], ['closed', '2024-09-04T09:00'], ['reopened', '2024-09-20T09:00']), asOf),
    factsFromEvents({ ...base, key: 'k7', gridId: 'G2', department: 'water' }, ev(['reported', '2024-08-30T09:00'], ['accepted', '2024-08-30T09:30'], ['closed', '2024-08-31T09:00']), asOf),
  ]
  const asOf = L('2024-09-30T00:00')
  const facts = factsAsOf(asOf)
  const period = { from: L('2024-09-01T00:00'), to: L('2024-10-01T00:00'), asOf }
  t.same(closureMetrics(facts, { by: 'grid', ...period }), [
    { group: 'G1', due: 3, closed: 2, closedOnTime: 1, overdueOpen: 1, closureRate: 66.67, onTimeClosureRate: 33.33 },
    { group: 'G2', due: 1, closed: 0, closedOnTime: 0, overdueOpen: 1, closureRate: 0, onTimeClosureRate: 0 },
  ])
  t.same(closureMetrics(facts, { by: 'street', ...period }).map((m) => [m.group, m.due, m.closed]), [['S1', 4, 2]])
  t.same(closureMetrics(facts, { by: 'department', ...period }).map((m) => m.group), ['grid-office'], 'k7 filed before the period')
  const early = closureMetrics(factsAsOf(L('2024-09-06T00:00')), { by: 'grid', ...period, asOf: L('2024-09-06T00:00') })
  t.same(early.map((m) => [m.group, m.closed, m.overdueOpen]), [['G1', 1, 0], ['G2', 1, 0]], 'as of an earlier instant')
})
