// A day not settled yet is re-evaluated at every scheduler tick (the instant moves
// pending cells). Stage A depends on the rows only: a long-lived runner evaluates
// its kept stage A result at the new instant when no row it would read arrived,
// and reads again when one did. The results equal a fresh full evaluation.
import t from 'tap'
import { pino } from 'pino'
import { createRunner } from '../../src/rules/runner.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { twoShiftPlan } from './fixtures.ts'
import { drivers, openRulesStore, plain } from './store/open.ts'

const log = pino({ level: 'silent' })
const DATE = '2024-06-03'
const local = (hhmm: string) => Date.parse(`${DATE}T${hhmm}:00+08:00`)
let seqs = 0
const scan = (tagId: string, at: number, receivedAt = at + 2000): CheckInRecord => ({
  kind: 'checkin', deviceId: 'SR-dev', seq: ++seqs, deviceTimeMs: at, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId, method: 'nfc', checkpointId: null, gridId: null, badgeId: 'P1',
})

for (const driver of drivers()) {
  t.test(`stage A kept for unsettled days (${driver})`, async (t) => {
    const real = await openRulesStore(t, driver)
    if (!real) return
    const reads: number[] = []
    const store: Store = { ...real, coverage: { ...real.coverage, compactMany: (qs) => (reads.push(qs.length), real.coverage.compactMany(qs)) } }
    await store.grids.create({ id: 'SR', level: 'district', name: 'SR' })
    await store.plans.put({
      gridId: 'SR',
      effectiveFrom: null,
      plan: twoShiftPlan('SR'),
    })
    await store.uplinks.write({ records: [scan('SR-ta', local('09:00')), scan('SR-tb', local('09:10'))] })
    let now = local('12:45')
    const runner = createRunner({ store, log, now: () => now })
    const fresh = async () => (await createRunner({ store: real, log, now: () => now }).evaluateDays([{ gridId: 'SR', localDate: DATE }], { full: true }))[0]!

    const [noon] = await runner.evaluateDays([{ gridId: 'SR', localDate: DATE }])
    t.same(reads, [1], 'first tick: stage A read')
    t.strictSame(noon?.result?.summary, { required: 4, met: 2, missed: 0, pending: 2, coveragePct: 100 }) // of the decided cells

    now = local('17:45')
    const [evening] = await runner.evaluateDays([{ gridId: 'SR', localDate: DATE }])
    t.same(reads, [1], 'no row since: the kept stage A result is evaluated at 17:45, nothing read')
    t.strictSame(evening?.result?.summary, { required: 4, met: 2, missed: 2, pending: 0, coveragePct: 50 })
    t.equal(evening?.casesOpened, 2, 'both pm misses raised')
    t.strictSame(plain(evening?.result), plain((await fresh()).result), 'equal to a fresh full evaluation at the same instant')

    await store.uplinks.write({ records: [scan('SR-ta', local('14:00'), local('17:50'))] })
    now = local('17:55')
    const [late] = await runner.evaluateDays([{ gridId: 'SR', localDate: DATE }])
    t.same(reads, [1, 1], 'a late row for the grid: read again')
    t.strictSame(late?.result?.summary, { required: 4, met: 3, missed: 1, pending: 0, coveragePct: 75 })
    t.equal(late?.casesResolved, 1, 'the pm miss of A resolved')
    t.strictSame(plain(late?.result), plain((await fresh()).result))
  })
}
