// Closure metrics through the store on both drivers: cases with known workflow
// histories (closure-seed.ts), figures per grid, street and department, the
// filing-date range and the as-of instant.
import t from 'tap'
import { caseStats } from '../../src/rules/cases/stats.ts'
import { overdueFlags } from '../../src/rules/cases/metrics.ts'
import { APRIL, seedClosureCases, sh } from './cases/closure-seed.ts'
import { drivers, openRulesStore } from './store/open.ts'

const brief = (rows: Awaited<ReturnType<typeof caseStats>>) => rows.map((r) => [r.group, r.due, r.closed, r.closedOnTime, r.overdueOpen, r.closureRate, r.onTimeClosureRate])

for (const driver of drivers()) {
  t.test(`closure and on-time closure rates from stored cases (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    await seedClosureCases(store)
    const all = { from: 0, to: APRIL, asOf: APRIL }
    t.strictSame(brief(await caseStats(store, { ...all, by: 'grid' })), [
      ['G91', 2, 2, 1, 0, 100, 50],
      ['G92', 2, 0, 0, 2, 0, 0],
    ], 'per grid: the voided and the never-filed case are not due; the late alarm is closed but not on time')
    t.strictSame(brief(await caseStats(store, { ...all, by: 'department' })), [
      ['device-maintenance', 2, 0, 0, 2, 0, 0],
      ['emergency', 1, 1, 0, 0, 100, 0],
      ['grid-office', 1, 1, 1, 0, 100, 100],
    ])
    t.strictSame(brief(await caseStats(store, { ...all, from: sh(11, '00:00'), by: 'street' })), [['S92', 2, 0, 0, 2, 0, 0]], 'filed from Tuesday: street S92 only')
    t.strictSame(brief(await caseStats(store, { ...all, asOf: sh(10, '20:00'), by: 'street' })), [['S91', 2, 2, 1, 0, 100, 50]], 'as of Monday evening: Tuesday filings not yet due')
    t.strictSame(brief(await caseStats(store, { ...all, asOf: sh(10, '18:00'), by: 'grid' })), [['G91', 2, 1, 1, 1, 50, 50]], 'as of Monday 18:00 the alarm is open and overdue')

    const c = (await store.cases.list({ gridId: 'G92', states: ['accepted'] }))[0]!
    t.strictSame(overdueFlags(c, sh(11, '09:31')), [], 'C just filed')
    t.strictSame(overdueFlags(c, APRIL), ['stage', 'closure'], 'C in April')
    const closed = (await store.cases.list({ gridId: 'G91', states: ['closed'] }))[0]!
    t.strictSame(overdueFlags(closed, APRIL), [], 'a closed case is never overdue')
  })
}
