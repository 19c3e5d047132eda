// Clock periods (PROTOCOL.md §6, src/store/queries/clock.ts): a device whose clock
// runs 3 h ahead is synced at 11:00, steps its clock right, and is synced again
// at 16:30 (≈ 0). Its morning scans stay timed by the 11:00 sync (the first sync
// it acknowledged after them, by seq), so the later ≈ 0 does not re-time them
// into implausibility: the day is fully met and no case is ever raised. Before
// (every row timed with the device's latest offset) the 18:00 run found the
// morning missed and opened two cases. Also: the second sync re-evaluates only
// what it can re-time, and the store's look-ups agree with a full re-run.
import t from 'tap'
import { pino } from 'pino'
import { createRunner } from '../../src/rules/runner.ts'
import type { CoverageResult } from '../../src/rules/coverage/evaluate.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { drivers, openRulesStore } from './store/open.ts'
import { twoShiftPlan } from './fixtures.ts'

const log = pino({ level: 'silent' })
const DATE = '2024-06-03' // Monday, Asia/Shanghai; shifts am 08:00–12:00, pm 13:00–17:00, grace 30 min
const local = (hhmm: string) => Date.parse(`${DATE}T${hhmm}:00+08:00`)
const HOUR = 3_600_000

function scan(deviceId: string, grid: string, cp: 'a' | 'b', seq: number, trueAt: number, offsetMs: number): CheckInRecord {
  return { kind: 'checkin', deviceId, seq, deviceTimeMs: trueAt + offsetMs, receivedAtMs: trueAt + 2000, clockFuture: false, clockAncient: false, tagId: `${grid}-t${cp}`, method: 'nfc', checkpointId: null, gridId: null, badgeId: 'P1' }
}

/** One time-sync round trip with zero delay, acknowledged with `seq`, received at `at`. */
async function timeSync(store: Store, deviceId: string, seq: number, offsetMs: number, at: number) {
  const commandId = `${deviceId}-sync-${seq}`
  await store.commands.enqueue({ commandId, deviceId, kind: 'time_sync', body: { timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: null })
  await store.uplinks.write({
    records: [{ kind: 'ack', deviceId, seq, deviceTimeMs: at + offsetMs, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: at + offsetMs }],
  })
}

const verdict = (r: CoverageResult | undefined) => r && { summary: r.summary, missed: r.cells.filter((c) => c.status === 'missed').map((c) => `${c.windowKey} ${c.checkpointId}`) }

for (const driver of drivers()) {
  t.test(`a device that steps its clock right after a sync keeps its earlier rows' timing (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    let now = local('12:45')
    const runner = createRunner({ store, log, now: () => now })
    // K: the device that corrects its clock; L: a device of another grid, never synced after its rows
    for (const g of ['K', 'L']) {
      await store.grids.create({ id: g, level: 'district', name: g })
      await store.plans.put({ gridId: g, effectiveFrom: null, plan: twoShiftPlan(g) })
    }
    const ahead = 3 * HOUR
    await store.uplinks.write({ records: [scan('K-dev', 'K', 'a', 1, local('09:00'), ahead), scan('K-dev', 'K', 'b', 2, local('09:10'), ahead)] })
    await store.uplinks.write({ records: [scan('L-dev', 'L', 'a', 1, local('09:00'), 0), scan('L-dev', 'L', 'b', 2, local('09:10'), 0)] })
    await timeSync(store, 'K-dev', 3, ahead, local('11:00'))
    const items = ['K', 'L'].map((gridId) => ({ gridId, localDate: DATE }))

    const first = await runner.evaluateDays(items)
    t.strictSame(verdict(first[0]?.result)?.summary, { required: 4, met: 2, missed: 0, pending: 2, coveragePct: 100 }, '12:45: the morning is met (timed by the 11:00 sync)')

    // the device stepped its clock right after the 11:00 sync: its afternoon scans carry true times
    await store.uplinks.write({ records: [scan('K-dev', 'K', 'a', 4, local('14:00'), 0), scan('K-dev', 'K', 'b', 5, local('14:10'), 0)] })
    await store.uplinks.write({ records: [scan('L-dev', 'L', 'a', 3, local('14:00'), 0), scan('L-dev', 'L', 'b', 4, local('14:10'), 0)] })
    await timeSync(store, 'K-dev', 6, -1000, local('16:30'))

    now = local('18:00')
    const day = await runner.evaluateDays(items)
    t.strictSame(verdict(day[0]?.result), { summary: { required: 4, met: 4, missed: 0, pending: 0, coveragePct: 100 }, missed: [] }, '18:00: every cell met, the morning still timed by the 11:00 sync')
    t.strictSame(day.map((o) => o.casesOpened), [0, 0], 'no case raised')
    const latest = (await store.reports.latest('K', DATE))?.result as CoverageResult
    t.notOk(latest.signals.some((s) => s.kind === 'clock_implausible'), 'no scan judged untimeable')
    const devs = latest.devices.find((d) => d.deviceId === 'K-dev')
    t.equal(devs?.firstAt, local('09:00'), "the device's first scan at its true time")
    t.equal(devs?.lastAt, local('14:10') + 1000, 'its last timed by the 16:30 sync (−1 s)')

    // nothing new: settled; a full re-run agrees and changes nothing
    const again = await runner.evaluateDays(items)
    t.strictSame(again.map((o) => o.skipped === true), [true, true], 'settled')
    const full = await runner.evaluateDays(items, { full: true })
    t.strictSame(full.map((o) => [o.status, o.casesOpened + o.casesUpdated + o.casesResolved]), [['unchanged', 0], ['unchanged', 0]], 'a full re-run finds nothing to change')
    const cases = [...(await store.cases.list({ gridId: 'K' })), ...(await store.cases.list({ gridId: 'L' }))]
    t.strictSame(cases.map((c) => c.dedupKey), [], 'no case ever')

    // a third sync that measures what the second did: only rows after the 16:30 sync (none) re-timed, so K is not re-read
    now = local('19:00')
    await timeSync(store, 'K-dev', 7, -1000, local('18:50'))
    const third = await runner.evaluateDays(items)
    t.strictSame(third.map((o) => o.skipped === true), [true, true], 'a sync with nothing recorded since the previous one re-times no row')
  })
}
