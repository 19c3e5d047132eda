// Grid-days past the check-in retention (GRIDPATROL_RETENTION_DAYS) are not
// evaluated again: their check-ins may have been dropped, and a re-evaluation
// would count every dropped visit as missed and raise cases for it. Their stored
// report stands (outcome 'expired'); its detail is the stored exceptions only.
// Late rows for such a day change nothing; with retention off it is re-evaluated.
import t from 'tap'
import { pino } from 'pino'
import { createRunner } from '../../src/rules/runner.ts'
import type { CheckInRecord } from '../../src/store/types.ts'
import { twoShiftPlan } from './fixtures.ts'
import { drivers, openRulesStore } from './store/open.ts'

const log = pino({ level: 'silent' })
const OLD = '2024-06-03'
const RECENT = '2024-06-07'
const local = (date: string, hhmm: string) => Date.parse(`${date}T${hhmm}:00+08:00`)
let seq = 0
const scan = (tag: string, at: number, receivedAt = at + 2000): CheckInRecord => ({
  kind: 'checkin', deviceId: 'RT-dev', seq: ++seq, deviceTimeMs: at, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId: tag, method: 'nfc', checkpointId: null, gridId: null, badgeId: 'P1',
})

for (const driver of drivers()) {
  t.test(`past the retention: not evaluated, stored report stands (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    await store.grids.create({ id: 'RT', level: 'district', name: 'RT' })
    await store.plans.put({ gridId: 'RT', effectiveFrom: null, plan: twoShiftPlan('RT') })
    // Both days: A scanned in both shifts, B in none → 2 misses each.
    for (const d of [OLD, RECENT]) await store.uplinks.write({ records: [scan('RT-ta', local(d, '09:00')), scan('RT-ta', local(d, '14:00'))] })

    const first = await createRunner({ store, log, now: () => local(OLD, '23:00'), retentionDays: 3 }).evaluateDay('RT', OLD)
    t.strictSame([first.status, first.revision, first.casesOpened], ['revised', 1, 2])
    const stored = await store.reports.latest('RT', OLD)
    const casesBefore = await store.cases.list({ gridId: 'RT' })

    // 2024-06-08 10:00: 2024-06-03 is 5 days old; 3 days are kept (from 2024-06-05 10:00).
    const LATER = local('2024-06-08', '10:00')
    const later = createRunner({ store, log, now: () => LATER, retentionDays: 3 })
    // B's two visits arrive late (store-and-forward, within the plan's 7-day upload delay): the old day must not be re-read.
    await store.uplinks.write({ records: [scan('RT-tb', local(OLD, '09:30'), LATER - 3_600_000), scan('RT-tb', local(OLD, '14:30'), LATER - 3_600_000)] })
    const [old, recent] = await later.evaluateDays([{ gridId: 'RT', localDate: OLD }, { gridId: 'RT', localDate: RECENT }])
    t.strictSame([old?.status, old?.revision, old?.casesOpened, old?.casesResolved, old?.result], ['expired', 1, 0, 0, undefined], 'the old day: expired, revision 1 stands')
    t.strictSame([recent?.status, recent?.revision, recent?.casesOpened], ['revised', 1, 2], 'a day inside the retention is evaluated')
    t.equal((await later.evaluateDay('RT', OLD, { full: true })).status, 'expired', 'also on request (report coverage --evaluate)')
    t.strictSame((await store.reports.revisions('RT', OLD)).map((r) => r.revision), [1], 'no new revision')
    t.strictSame(
      (await store.cases.list({ gridId: 'RT' })).filter((c) => c.reportDate === OLD).map((c) => [c.id, c.state, c.updatedAtMs]),
      casesBefore.map((c) => [c.id, c.state, c.updatedAtMs]),
      "the old day's cases untouched",
    )

    const detail = await later.reportDetail(stored!)
    t.equal(detail.source, 'past_retention')
    t.strictSame(detail.result, stored!.result, 'the detail is the stored report (exceptions only)')
    t.equal((await createRunner({ store, log, now: () => local(OLD, '23:30'), retentionDays: 3 }).reportDetail(stored!)).source, 'derived', 'derived while inside the retention')

    // Retention off (0 = keep all): the late visits are read, B met, its cases resolved.
    const keepAll = await createRunner({ store, log, now: () => LATER, retentionDays: 0 }).evaluateDay('RT', OLD)
    t.strictSame([keepAll.status, keepAll.revision, keepAll.casesResolved], ['revised', 2, 2])
  })
}

t.test('an expired grid-day is said once at info, then at debug', async (t) => {
  const store = await openRulesStore(t, 'embedded')
  if (!store) return
  await store.grids.create({ id: 'RL', level: 'district', name: 'RL' })
  await store.plans.put({ gridId: 'RL', effectiveFrom: null, plan: twoShiftPlan('RL') })
  const lines: Array<{ level: number; msg: string; new?: number }> = []
  const captured = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) })
  const runner = createRunner({ store, log: captured, now: () => local('2024-06-08', '10:00'), retentionDays: 3 })
  for (let i = 0; i < 3; i++) await runner.evaluateDays([{ gridId: 'RL', localDate: OLD }])
  const said = lines.filter((l) => l.msg.startsWith('grid-days past the check-in retention'))
  t.strictSame(said.map((l) => [l.level, l.new]), [[30, 1], [20, undefined], [20, undefined]], 'info the first time (1 new), debug after')
})
