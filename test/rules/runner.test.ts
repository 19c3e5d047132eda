// The runner against a real store: revisions only on change, cases raised
// once, late data resolving cases per the workflow table, concurrency, device rules.
import t from 'tap'
import { pino } from 'pino'
import { evaluateGridDay, type CoverageResult } from '../../src/rules/coverage/evaluate.ts'
import { parsePlan } from '../../src/rules/plans/schema.ts'
import { createRunner } from '../../src/rules/runner.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { twoShiftPlan } from './fixtures.ts'
import { drivers, openRulesStore } from './store/open.ts'

const log = pino({ level: 'silent' })
const DATE = '2024-06-03' // Monday, Asia/Shanghai
const local = (hhmm: string, date = DATE) => Date.parse(`${date}T${hhmm}:00+08:00`)

let seqs = 0
function scan(deviceId: string, tagId: string, at: number, receivedAt = at + 2000): CheckInRecord {
  return { kind: 'checkin', deviceId, seq: ++seqs, deviceTimeMs: at, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId, method: 'nfc', checkpointId: null, gridId: null, badgeId: 'P1' }
}

async function setup(store: Store, grid: string) {
  await store.grids.create({ id: grid, level: 'district', name: grid })
  await store.plans.put({
    gridId: grid,
    effectiveFrom: null,
    plan: twoShiftPlan(grid),
  })
}

for (const driver of drivers()) {
  t.test(`runner (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    let now = local('18:00')
    const runner = createRunner({ store, log, now: () => now })

    await t.test('first evaluation stores revision 1 and raises one case per miss', async (t) => {
      await setup(store, 'R1')
      await store.uplinks.write({ records: [scan('R1-dev', 'R1-ta', local('09:00')), scan('R1-dev', 'R1-tb', local('09:10')), scan('R1-dev', 'R1-ta', local('14:00'))] })
      const out = await runner.evaluateDay('R1', DATE)
      t.equal(out.status, 'revised')
      t.equal(out.revision, 1)
      t.equal(out.casesOpened, 1, 'B missed in pm')
      t.strictSame(out.result?.summary, { required: 4, met: 3, missed: 1, pending: 0, coveragePct: 75 })
      const [c] = await store.cases.list({ gridId: 'R1' })
      t.equal(c?.rule, 'patrol_miss')
      t.equal(c?.subject, 'R1-B')
      t.equal(c?.state, 'reported')
      t.equal(c?.department, 'grid-office')
      const ev = await store.cases.events(c!.id)
      t.strictSame(ev.map((e) => [e.from, e.to, e.rule, e.actor, e.role]), [[null, 'reported', 'raise', 'rules', 'system']])
    })

    await t.test('re-runs are idempotent: no revision, no case, no audit entry', async (t) => {
      now += 3_600_000
      const out = await runner.evaluateDay('R1', DATE)
      t.equal(out.status, 'unchanged')
      t.equal(out.revision, 1)
      t.equal(out.casesOpened + out.casesUpdated + out.casesResolved, 0)
      t.equal((await store.reports.revisions('R1', DATE)).length, 1)
      const [c] = await store.cases.list({ gridId: 'R1' })
      t.equal((await store.cases.events(c!.id)).length, 1)
    })

    await t.test('late upload fills the gap: revision 2 says what changed, the case is rejected by the system', async (t) => {
      await store.uplinks.write({ records: [scan('R1-dev', 'R1-tb', local('15:00'), local('19:30'))] })
      const out = await runner.evaluateDay('R1', DATE)
      t.equal(out.status, 'revised')
      t.equal(out.revision, 2)
      t.equal(out.casesResolved, 1)
      const rev = await store.reports.get('R1', DATE, 2)
      t.equal(rev?.coveragePct, 100)
      t.ok(rev?.changes.some((c) => (c as { kind: string }).kind === 'cell'), 'changes name the cell')
      t.ok((rev?.watermarkMs ?? 0) >= local('19:30'), 'watermark covers the late row')
      const [c] = await store.cases.list({ gridId: 'R1' })
      t.equal(c?.state, 'rejected')
      t.ok(c?.clearedAtMs)
      const ev = await store.cases.events(c!.id)
      t.strictSame(ev.at(-1) && [ev.at(-1)!.from, ev.at(-1)!.to, ev.at(-1)!.rule, ev.at(-1)!.role], ['reported', 'rejected', 'reject', 'system'])
      t.equal((await runner.evaluateDay('R1', DATE)).status, 'unchanged')
    })

    await t.test('accepted case voided; dispatched case only noted', async (t) => {
      await setup(store, 'R2')
      await store.uplinks.write({ records: [scan('R2-dev', 'R2-ta', local('09:00')), scan('R2-dev', 'R2-ta', local('14:00'))] })
      const out = await runner.evaluateDay('R2', DATE)
      t.equal(out.casesOpened, 2)
      const cases = await store.cases.list({ gridId: 'R2' })
      const [am, pm] = cases.sort((a, b) => (a.windowKey ?? '').localeCompare(b.windowKey ?? ''))
      await runner.transitionCase(am!.id, 'accepted', { id: 'op1', roles: ['operator'] }, null)
      await runner.transitionCase(pm!.id, 'accepted', { id: 'op1', roles: ['operator'] }, null)
      await runner.transitionCase(pm!.id, 'dispatched', { id: 'dp1', roles: ['dispatcher'] }, null)
      await t.rejects(runner.transitionCase(pm!.id, 'verified', { id: 'sv1', roles: ['supervisor'] }, null), { code: 'GP_CASE_BAD_TRANSITION' })
      await t.rejects(runner.transitionCase(pm!.id, 'handled', { id: 'x', roles: ['operator'] }, 'done'), { code: 'GP_CASE_FORBIDDEN' })
      await t.rejects(runner.transitionCase(999_999, 'accepted', { id: 'op1', roles: ['operator'] }, null), { code: 'GP_RULES_NOT_FOUND' })
      await store.uplinks.write({ records: [scan('R2-dev', 'R2-tb', local('10:00'), local('20:00')), scan('R2-dev', 'R2-tb', local('15:00'), local('20:00'))] })
      const again = await runner.evaluateDay('R2', DATE)
      t.equal(again.casesResolved, 2)
      const amAfter = await store.cases.get(am!.id)
      const pmAfter = await store.cases.get(pm!.id)
      t.equal(amAfter?.state, 'rejected')
      t.equal((await store.cases.events(am!.id)).at(-1)?.rule, 'void')
      t.equal(pmAfter?.state, 'dispatched', 'command owns it now')
      const last = (await store.cases.events(pm!.id)).at(-1)
      t.strictSame(last && [last.from, last.to, last.rule], ['dispatched', 'dispatched', 'note'])
      t.ok(pmAfter?.clearedAtMs)
    })

    await t.test('two runners at once never double a case or a revision', async (t) => {
      await setup(store, 'R3')
      await store.uplinks.write({ records: [scan('R3-dev', 'R3-ta', local('09:00'))] })
      const other = createRunner({ store, log, now: () => now })
      const outs = await Promise.all([runner.evaluateDay('R3', DATE), other.evaluateDay('R3', DATE), runner.evaluateDay('R3', DATE), other.evaluateDay('R3', DATE)])
      t.equal(outs.reduce((n, o) => n + o.casesOpened, 0), 3, 'three misses raised once in total')
      t.equal((await store.cases.list({ gridId: 'R3' })).length, 3)
      t.equal((await store.reports.revisions('R3', DATE)).length, 1)
      for (const c of await store.cases.list({ gridId: 'R3' })) t.equal((await store.cases.events(c.id)).length, 1)
    })

    await t.test('stored reports keep the exceptions; the detail is derived as of the watermark and checked', async (t) => {
      await setup(store, 'R5')
      await store.uplinks.write({ records: [scan('R5-dev', 'R5-ta', local('09:00')), scan('R5-dev', 'R5-tb', local('09:10')), scan('R5-dev', 'R5-ta', local('14:00'))] })
      t.equal((await runner.evaluateDay('R5', DATE)).revision, 1)
      const row = (await store.reports.latest('R5', DATE))!
      const stored = row.result as CoverageResult
      t.equal(stored.cellsScope, 'exceptions')
      t.strictSame(stored.cells.map((c) => [c.checkpointId, c.windowKey, c.status]), [['R5-B', `${DATE}/pm`, 'missed']], 'only the exception is stored')
      t.strictSame(stored.windows.map((w) => w.met), [2, 1])
      const detail = await runner.reportDetail(row)
      t.equal(detail.source, 'derived')
      t.strictSame(detail.disagreements, [])
      t.strictSame(
        detail.result.cells.map((c) => [c.checkpointId, c.windowKey.slice(11), c.status, c.evidence.length]),
        [['R5-A', 'am', 'met', 1], ['R5-B', 'am', 'met', 1], ['R5-A', 'pm', 'met', 1], ['R5-B', 'pm', 'missed', 0]],
        'every cell, met ones with their evidence',
      )
      t.equal(detail.result.evaluatedAt, row.evaluatedAtMs)
      t.strictSame(detail.result.summary, stored.summary)

      // A row committed after the report with a receipt time older than its watermark: the detail disagrees.
      const back = (row.watermarkMs ?? 0) - 60_000
      await store.uplinks.write({ records: [scan('R5-dev', 'R5-tb', local('15:00'), back)] })
      const off = await runner.reportDetail(row)
      t.ok(off.disagreements.some((c) => c.kind === 'cell' && c.checkpointId === 'R5-B' && c.from === 'missed' && c.to === 'met'), 'names the cell')
      const again = await runner.evaluateDay('R5', DATE)
      t.same([again.status, again.revision, again.casesResolved], ['revised', 2, 1])
      const rev2 = (await store.reports.latest('R5', DATE))!
      t.strictSame((await runner.reportDetail(rev2)).disagreements, [], 'the new revision agrees')

      // A row received after the watermark is the next evaluation's: the detail is as of the watermark.
      await store.uplinks.write({ records: [scan('R5-dev', 'R5-tb', local('16:00'), (rev2.watermarkMs ?? 0) + 3_600_000)] })
      const asOf = await runner.reportDetail(rev2)
      t.strictSame(asOf.disagreements, [], 'the later row would have changed the device figures')
      t.equal(asOf.result.devices[0]?.scans, 4)
      t.equal((await runner.evaluateDay('R5', DATE)).revision, 3, 'the next evaluation counts it')
    })

    await t.test('a report stored before exceptions-only storage is read as it is', async (t) => {
      await setup(store, 'R6')
      const full = evaluateGridDay({ plan: parsePlan((await store.plans.list('R6'))[0]!.plan), localDate: DATE, checkins: [], now })
      const row = { gridId: 'R6', localDate: DATE, revision: 1, planVersion: 1, watermarkMs: null, evaluatedAtMs: now, coveragePct: 0, met: 0, missed: 4, pending: 0, result: full, changes: [], digest: 'old-formula' }
      t.strictSame(await store.reports.saveMany([row]), [true])
      const detail = await runner.reportDetail((await store.reports.latest('R6', DATE))!)
      t.equal(detail.source, 'stored')
      t.strictSame(detail.result, full)
      // Re-evaluating on the same data: the digest differs (older formula), the results do not.
      const out = await runner.evaluateDay('R6', DATE)
      t.same([out.status, out.revision], ['unchanged', 1])
    })

    await t.test('no plan: nothing stored', async (t) => {
      t.equal((await runner.evaluateDay('nope', DATE)).status, 'no_plan')
    })

    await t.test('device rules: offline raised once, resolved when seen again; SOS urgent', async (t) => {
      await store.grids.create({ id: 'R4', level: 'district', name: 'R4' })
      await store.devices.create({ id: 'R4-dev', kind: 'patrol', gridId: 'R4', secretHash: 'scrypt$1$1$1$a$b' })
      const seen = Date.now()
      await store.uplinks.write({ records: [scan('R4-dev', 'R4-x', seen, seen)] })
      const clock = { t: seen + 10 * 60_000 }
      const r = createRunner({ store, log, now: () => clock.t, config: { offline: { offlineMinutes: 30 } } })
      const quiet = await r.runDeviceRules()
      t.equal(quiet.opened, 0)
      clock.t = seen + 45 * 60_000
      t.equal((await r.runDeviceRules()).opened, 1)
      t.equal((await r.runDeviceRules()).opened, 0, 'idempotent')
      const [off] = await store.cases.list({ rule: 'device_offline' })
      t.equal(off?.subject, 'R4-dev')
      await store.uplinks.write({
        records: [
          scan('R4-dev', 'R4-x', clock.t, clock.t),
          { kind: 'alarm', deviceId: 'R4-dev', seq: ++seqs, deviceTimeMs: clock.t, receivedAtMs: clock.t, clockFuture: false, clockAncient: false, alarmKind: 'sos' },
        ],
      })
      const back = await r.runDeviceRules()
      t.equal(back.resolved, 1)
      t.equal(back.opened, 1, 'the SOS')
      const [sos] = await store.cases.list({ rule: 'alarm' })
      t.equal(sos?.priority, 'urgent')
      t.equal(sos?.department, 'emergency')
      t.equal((await store.cases.get(off!.id))?.state, 'rejected')
    })
  })
}
