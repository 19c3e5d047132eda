// Incremental evaluation (runner.ts unchangedSince): a re-run re-evaluates only
// the grid-days whose report or cases may have changed since they were stored,
// and ends where a full re-evaluation ends (checked by running one after each
// step: it must find nothing to change). Cases are raised before the report is
// stored: a run that fails between the two leaves nothing a re-run misses.
import t from 'tap'
import { pino } from 'pino'
import { createRunner, type DayOutcome } from '../../src/rules/runner.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { drivers, openRulesStore } from './store/open.ts'
import { twoShiftPlan } from './fixtures.ts'

const log = pino({ level: 'silent' })
const DATE = '2024-06-03' // Monday, Asia/Shanghai
const local = (hhmm: string, date = DATE) => Date.parse(`${date}T${hhmm}:00+08:00`)

let seqs = 0
function scan(grid: string, cp: 'a' | 'b', at: number, receivedAt = at + 2000): CheckInRecord {
  return { kind: 'checkin', deviceId: `${grid}-dev`, seq: ++seqs, deviceTimeMs: at, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId: `${grid}-t${cp}`, method: 'nfc', checkpointId: null, gridId: null, badgeId: 'P1' }
}

const plan = twoShiftPlan

/** A grid whose device scans A and B in the morning and A in the afternoon (B missed in pm). */
async function grid(store: Store, id: string, date = DATE) {
  await store.grids.create({ id, level: 'district', name: id })
  await store.plans.put({ gridId: id, effectiveFrom: null, plan: plan(id) })
  await store.uplinks.write({ records: [scan(id, 'a', local('09:00', date)), scan(id, 'b', local('09:10', date)), scan(id, 'a', local('14:00', date))] })
}

/** One time-sync round trip with zero delay for the device, measured (received) at `at`. */
let syncs = 0
async function timeSync(store: Store, deviceId: string, offsetMs: number, at: number) {
  const commandId = `inc-ts${++syncs}`
  await store.commands.enqueue({ commandId, deviceId, kind: 'time_sync', body: { timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: null })
  await store.uplinks.write({
    records: [{ kind: 'ack', deviceId, seq: 2_000_000 + syncs, deviceTimeMs: at + offsetMs, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: at + offsetMs }],
  })
}

const brief = (os: DayOutcome[]) => os.map((o) => [o.gridId, o.status, o.revision, o.skipped === true])

for (const driver of drivers()) {
  t.test(`incremental evaluation (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    let now = local('18:00')
    const runner = createRunner({ store, log, now: () => now })
    const grids = ['I1', 'I2', 'I3']
    const items = grids.map((gridId) => ({ gridId, localDate: DATE }))
    for (const g of grids) await grid(store, g)

    /** Every case event of the grids, as (key, rule) pairs: nothing doubled, nothing lost. */
    const trail = async () => {
      const out: string[] = []
      for (const g of grids) for (const c of await store.cases.list({ gridId: g })) for (const e of await store.cases.events(c.id)) out.push(`${c.dedupKey} ${e.rule}`)
      return out.sort()
    }
    /** A full re-evaluation changes nothing: the incremental state is the full one. */
    const fullAgrees = async (t: Tap.Test, what: string) => {
      const before = await trail()
      const full = await runner.evaluateDays(items, { full: true })
      t.strictSame(
        full.map((o) => [o.status, o.skipped === true, o.casesOpened + o.casesUpdated + o.casesResolved]),
        grids.map(() => ['unchanged', false, 0]),
        `${what}: a full re-evaluation finds nothing to change`,
      )
      t.strictSame(await trail(), before, `${what}: no case event added by it`)
    }

    await t.test('first evaluation, then a re-run skips every settled grid-day', async (t) => {
      const first = await runner.evaluateDays(items)
      t.strictSame(brief(first), grids.map((g) => [g, 'revised', 1, false]))
      t.strictSame(first.map((o) => o.casesOpened), [1, 1, 1])
      now += 3_600_000
      const again = await runner.evaluateDays(items)
      t.strictSame(brief(again), grids.map((g) => [g, 'unchanged', 1, true]), 'nothing received since: not re-read')
      t.equal(again[0]?.result, undefined)
      await fullAgrees(t, 'idempotent re-run')
    })

    await t.test('a late row for one grid re-evaluates that grid only and bumps its revision', async (t) => {
      await store.uplinks.write({ records: [scan('I1', 'b', local('15:00'), local('19:30'))] })
      now = local('19:40')
      const out = await runner.evaluateDays(items)
      t.strictSame(brief(out), [['I1', 'revised', 2, false], ['I2', 'unchanged', 1, true], ['I3', 'unchanged', 1, true]])
      t.equal(out[0]?.casesResolved, 1, 'the filled miss is resolved')
      await fullAgrees(t, 'late row')
    })

    await t.test('clock offsets: a re-synced device re-evaluates its grid; a new largest offset every grid', async (t) => {
      now = local('20:00')
      await timeSync(store, 'I3-dev', 0, local('19:50'))
      let out = await runner.evaluateDays(items)
      t.strictSame(brief(out), [['I1', 'unchanged', 2, true], ['I2', 'unchanged', 1, true], ['I3', 'unchanged', 1, false]], 'offset 0: only I3 re-read')
      await timeSync(store, 'I1-dev', 20 * 60_000, local('19:55'))
      out = await runner.evaluateDays(items)
      t.strictSame(out.map((o) => o.skipped === true), [false, false, false], 'the scan slack moved: every grid re-read')
      t.equal(out[0]?.status, 'revised', "I1's visits are 20 minutes earlier now")
      await fullAgrees(t, 'clock offsets')
      out = await runner.evaluateDays(items)
      t.strictSame(out.map((o) => o.skipped === true), [true, true, true], 'settled again')
    })

    await t.test('a row committed after a run with a receipt time just before its watermark is seen (overlap)', async (t) => {
      await store.uplinks.write({ records: [scan('I2', 'b', local('15:30'), local('20:10'))] })
      now = local('20:10') + 30_000
      let out = await runner.evaluateDays(items)
      t.strictSame(brief(out), [['I1', 'unchanged', 3, true], ['I2', 'revised', 2, false], ['I3', 'unchanged', 1, true]])
      // received 30 s before that run's watermark, committed 90 s after it ran
      await store.uplinks.write({ records: [scan('I2', 'a', local('16:30'), local('20:09') + 30_000)] })
      now = local('20:12')
      out = await runner.evaluateDays(items)
      t.strictSame(brief(out), [['I1', 'unchanged', 3, true], ['I2', 'revised', 3, false], ['I3', 'unchanged', 1, true]])
      await fullAgrees(t, 'late commit')
    })

    await t.test('a plan edit re-evaluates its grid', async (t) => {
      await store.plans.put({ gridId: 'I2', effectiveFrom: null, plan: plan('I2', { checkpoints: [...plan('I2').checkpoints, { id: 'I2-C', tagIds: ['I2-tc'] }] }) })
      const out = await runner.evaluateDays(items)
      t.strictSame(brief(out), [['I1', 'unchanged', 3, true], ['I2', 'revised', 4, false], ['I3', 'unchanged', 1, true]])
      t.equal(out[1]?.casesOpened, 2, 'C missed in both windows')
      await fullAgrees(t, 'plan edit')
    })

    await t.test('a case context change reconciles the cases (priority), as a full run would', async (t) => {
      await store.rulesConfig.set('categories', { patrol_miss: { department: 'grid-office', priority: 'urgent' }, patrol_gap: { department: 'grid-office' } })
      const out = await runner.evaluateDays(items)
      t.strictSame(out.map((o) => o.skipped === true), [false, false, false], 'reports older than the change are not trusted for cases')
      t.equal(out[1]?.casesUpdated, 2, "I2's two open misses become urgent")
      const open = (await store.cases.list({ gridId: 'I2' })).filter((c) => c.clearedAtMs === null && c.rule === 'patrol_miss')
      t.strictSame(open.map((c) => c.priority), ['urgent', 'urgent'])
      await fullAgrees(t, 'categories')
      t.strictSame((await runner.evaluateDays(items)).map((o) => o.skipped === true), [true, true, true], 'cases in line with it: skipped again')
    })

    await t.test('a day still open is re-evaluated until it is settled', async (t) => {
      const D2 = '2024-06-04'
      await grid(store, 'I4', D2)
      const day = [{ gridId: 'I4', localDate: D2 }]
      now = local('17:10', D2) // pm ended, not closed (grace 30 min)
      let [o] = await runner.evaluateDays(day)
      t.equal(o?.result?.summary.pending, 1)
      now = local('17:20', D2)
      ;[o] = await runner.evaluateDays(day)
      t.strictSame([o?.status, o?.skipped === true], ['unchanged', false], 'not settled yet: re-read')
      now = local('17:31', D2)
      ;[o] = await runner.evaluateDays(day)
      t.strictSame([o?.status, o?.revision, o?.casesOpened, o?.skipped === true], ['revised', 2, 1, false], 'closed: pending → missed')
      now = local('18:00', D2)
      ;[o] = await runner.evaluateDays(day)
      t.equal(o?.skipped, true, 'settled and evaluated after it: skipped')
    })

    await t.test('a report from another engine version is not trusted', async (t) => {
      const head = (await store.reports.latest('I3', DATE))!
      await store.reports.save({ ...head, revision: head.revision + 1, digest: 'e0.' + head.digest!.slice(head.digest!.indexOf('.') + 1) })
      const [o] = await runner.evaluateDays([{ gridId: 'I3', localDate: DATE }])
      t.strictSame([o?.status, o?.skipped === true], ['unchanged', false])
    })

    await t.test('cases first: a run failing to store its reports leaves the cases a re-run keeps exactly once', async (t) => {
      await grid(store, 'C1')
      const day = [{ gridId: 'C1', localDate: DATE }]
      const broken: Store = { ...store, reports: { ...store.reports, saveMany: async () => Promise.reject(new Error('report write failed')) } }
      await t.rejects(createRunner({ store: broken, log, now: () => now }).evaluateDays(day), /report write failed/)
      t.equal((await store.reports.revisions('C1', DATE)).length, 0)
      const raised = await store.cases.list({ gridId: 'C1' })
      t.equal(raised.length, 1, 'the miss was raised before the report write')
      const [o] = await runner.evaluateDays(day)
      t.strictSame([o?.status, o?.revision, o?.casesOpened, o?.casesUpdated], ['revised', 1, 0, 0])
      const cases = await store.cases.list({ gridId: 'C1' })
      t.strictSame(cases.map((c) => c.id), raised.map((c) => c.id))
      t.strictSame((await store.cases.events(cases[0]!.id)).map((e) => e.rule), ['raise'], 'one raise entry')
    })

    await t.test('cases first: a run failing to raise its cases stores no report, so the re-run raises them', async (t) => {
      await grid(store, 'C2')
      const day = [{ gridId: 'C2', localDate: DATE }]
      const fail = async () => Promise.reject(new Error('case write failed'))
      const broken: Store = { ...store, cases: { ...store.cases, raiseMany: fail, upsertMany: fail } }
      await t.rejects(createRunner({ store: broken, log, now: () => now }).evaluateDays(day), /case write failed/)
      t.equal((await store.reports.revisions('C2', DATE)).length, 0, 'no report without its cases')
      const [o] = await runner.evaluateDays(day)
      t.strictSame([o?.status, o?.revision, o?.casesOpened], ['revised', 1, 1])
      const [again] = await runner.evaluateDays(day, { full: true })
      t.strictSame([again?.status, again?.casesOpened, again?.casesUpdated], ['unchanged', 0, 0])
      const cases = await store.cases.list({ gridId: 'C2' })
      t.equal(cases.length, 1)
      t.strictSame((await store.cases.events(cases[0]!.id)).map((e) => e.rule), ['raise'])
    })

    await t.test('a report older than the lookback is re-read instead of searched since', async (t) => {
      const day = [{ gridId: 'C2', localDate: DATE }]
      const fresh = (config = {}) => createRunner({ store, log, now: () => now, config })
      t.equal((await fresh().evaluateDays(day))[0]?.skipped, true)
      // the watermark moves 20 h on (another grid's row): C2's report is that old now
      await store.uplinks.write({ records: [scan('I4', 'a', local('10:00', '2024-06-05'), local('10:00', '2024-06-05'))] })
      t.equal((await fresh({ incrementalLookbackHours: 1 }).evaluateDays(day))[0]?.skipped === true, false, 'older than 1 h: re-read')
      t.equal((await fresh().evaluateDays(day))[0]?.skipped, true, 'within 48 h: searched, nothing found')
    })
  })
}
