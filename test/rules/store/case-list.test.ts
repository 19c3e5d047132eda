// cases.list / cases.count filters on both drivers: grid, state, rule, report
// date, department, overdue; list's limit keeps the oldest; count ignores it.
import t from 'tap'
import type { NewCase, NewCaseEvent } from '../../../src/store/rules-types.ts'
import { drivers, openRulesStore } from './open.ts'

const AT = Date.parse('2024-06-01T13:00:00+08:00')
const kase = (k: string, grid: string, reportDate: string | null, department: string | null, rule = 'patrol_miss'): { c: NewCase; event: NewCaseEvent } => ({
  c: {
    dedupKey: k, rule, gridId: grid, subject: `cp-${k}`, windowKey: `w-${k}`, reportDate, category: rule, department,
    priority: 'normal', title: `case ${k}`, detectedAtMs: AT, openedAtMs: AT, stageDueAtMs: AT + 3_600_000, closureDueAtMs: AT + 86_400_000, evidence: [], detail: {},
  },
  event: { rule: 'raise', actor: 'rules', role: 'system', note: null, atMs: AT, detail: {} },
})

for (const driver of drivers()) {
  t.test(`cases.list / count filters (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    for (const g of ['L1', 'L2']) await store.grids.create({ id: g, level: 'district', name: g })
    await store.cases.upsertMany([
      kase('a', 'L1', '2024-06-01', 'grid-office'),
      kase('b', 'L1', '2024-06-02', 'grid-office'),
      kase('c', 'L2', '2024-06-01', 'roads'),
      kase('d', 'L2', null, 'maintenance', 'device_offline'),
    ])
    const keys = async (f: Parameters<typeof store.cases.list>[0]) => (await store.cases.list(f)).map((c) => c.dedupKey)
    t.strictSame(await keys({ reportDate: '2024-06-01' }), ['a', 'c'])
    t.strictSame(await keys({ department: 'grid-office' }), ['a', 'b'])
    t.strictSame(await keys({ gridId: 'L1', reportDate: '2024-06-02' }), ['b'])
    t.strictSame(await keys({ rule: 'device_offline' }), ['d'])
    t.strictSame(await keys({ overdueAtMs: AT + 7_200_000, department: 'roads' }), ['c'])
    t.strictSame(await keys({ limit: 2 }), ['a', 'b'], 'the oldest first')
    t.equal(await store.cases.count({}), 4)
    t.equal(await store.cases.count({ reportDate: '2024-06-01', states: ['reported'] }), 2)
    t.equal(await store.cases.count({ department: 'nobody' }), 0)
  })
}
