// The scheduler on virtual time: windows evaluated as they close (+ grace),
// late uploads re-evaluating the grid-days they touch, start/stop.
import t from 'tap'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createRulesEngine, type Timers } from '../../src/rules/scheduler.ts'
import type { CheckInRecord, Store } from '../../src/store/types.ts'
import { openRulesStore } from './store/open.ts'

const log = pino({ level: process.env['DBG'] ? 'debug' : 'silent' })
const local = (date: string, hhmm: string) => Date.parse(`${date}T${hhmm}:00+08:00`)
let seq = 0
const scan = (tag: string, at: number, receivedAt: number): CheckInRecord => ({
  kind: 'checkin', deviceId: 'S-dev', seq: ++seq, deviceTimeMs: at, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId: tag, method: 'qr', checkpointId: null, gridId: null,
})

/** A grid with one checkpoint and two 4-hour windows (08–12, 12–16), 30 min grace. */
async function gridWithPlan(store: Pick<Store, 'grids' | 'plans'>, gridId: string, checkpointId: string, tag: string): Promise<void> {
  await store.grids.create({ id: gridId, level: 'district', name: gridId })
  await store.plans.put({
    gridId,
    effectiveFrom: null,
    plan: { gridId, checkpoints: [{ id: checkpointId, tagIds: [tag] }], windows: { kind: 'every', every: '4h', start: '08:00', end: '16:00' }, graceMinutes: 30, maxGapMinutes: 600 },
  })
}

t.test('scheduler', async (t) => {
  const store = await openRulesStore(t, 'embedded')
  if (!store) return
  await gridWithPlan(store, 'S1', 'A', 'ta')
  let now = local('2024-06-03', '07:00')
  const pending: Array<{ fn: () => void; ms: number }> = []
  const timers: Timers = { setTimeout: (fn, ms) => pending.push({ fn, ms }), clearTimeout: () => undefined }
  const engine = createRulesEngine({ store, log, now: () => now, timers, config: { scheduler: { tickSeconds: 60, deviceRulesSeconds: 3600 } } })

  await engine.start()
  await engine.idle()
  t.equal(pending.length, 1, 'next tick scheduled on the injected timers')
  t.equal((await store.reports.revisions('S1', '2024-06-02')).length, 1, 'catch-up evaluated yesterday')
  t.equal((await store.reports.revisions('S1', '2024-06-03')).length, 0, 'today has no started window yet')

  now = local('2024-06-03', '12:10')
  let r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.localDate, o.status]), [['2024-06-03', 'revised']], 'window 08-12 ended: provisional evaluation')
  t.equal(r.evaluated[0]?.result?.summary.pending, 2)

  now = local('2024-06-03', '12:31')
  r = await engine.tick()
  t.equal(r.evaluated[0]?.result?.summary.missed, 1, 'closed after grace: missed')
  t.equal(r.evaluated[0]?.casesOpened, 1)

  now = local('2024-06-03', '12:40')
  t.strictSame((await engine.tick()).evaluated, [], 'nothing closed, nothing uploaded')

  // A store-and-forward upload of a 10:00 visit arrives at 13:05: timed in a window that has
  // ended (08–12), so its grid-day is re-evaluated (not the day before: no window of it ends after 10:00).
  await store.uplinks.write({ records: [scan('ta', local('2024-06-03', '10:00'), local('2024-06-03', '13:05'))] })
  now = local('2024-06-03', '13:06')
  r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.gridId, o.localDate, o.status, o.casesResolved]), [['S1', '2024-06-03', 'revised', 1]], 'late upload re-evaluated')
  t.equal(r.evaluated[0]?.result?.summary.met, 1)

  // An on-time scan in the window still open (12–16) waits for that window's end: no pass per scan.
  // (The first tick after the late upload re-reads the rows received in the overlap before its
  // watermark — lateOverlapSeconds — the late one among them: the grid-day is read once more.)
  await store.uplinks.write({ records: [scan('ta', local('2024-06-03', '13:20'), local('2024-06-03', '13:20'))] })
  now = local('2024-06-03', '13:21')
  t.strictSame((await engine.tick()).evaluated.map((o) => o.localDate), ['2024-06-03'], 'the late row, once more (overlap)')
  await store.uplinks.write({ records: [scan('ta', local('2024-06-03', '13:40'), local('2024-06-03', '13:40'))] })
  now = local('2024-06-03', '13:41')
  t.strictSame((await engine.tick()).evaluated, [], 'a scan inside the open window: nothing evaluated yet')
  const revisionBefore = (await store.reports.latest('S1', '2024-06-03'))!.revision
  now = local('2024-06-03', '16:01')
  r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.localDate, o.status]), [['2024-06-03', 'revised']], 'evaluated when the window ends')
  t.equal(r.evaluated[0]?.result?.summary.met, 2, 'with those scans')
  t.equal((await store.reports.latest('S1', '2024-06-03'))?.revision, revisionBefore + 1)

  // A device whose clock runs 2 h ahead: its scan says 17:00 but is timed 15:00 (the latest offset),
  // inside the window that ended at 16:00 — re-evaluated, as stage A times it.
  await store.commands.enqueue({ commandId: 'S-ts1', deviceId: 'S-dev', kind: 'time_sync', body: { timeSync: { serverTimeMs: local('2024-06-03', '16:05') } }, issuedAtMs: local('2024-06-03', '16:05'), expiresAtMs: null })
  await store.uplinks.write({
    records: [{ kind: 'ack', deviceId: 'S-dev', seq: ++seq, deviceTimeMs: local('2024-06-03', '18:05'), receivedAtMs: local('2024-06-03', '16:05'), clockFuture: false, clockAncient: false, commandId: 'S-ts1', status: 'ok', receivedDeviceTimeMs: local('2024-06-03', '18:05') }],
  })
  now = local('2024-06-03', '16:06')
  await engine.tick() // (the rows of the window just ended, received before the last watermark, once more)
  await store.uplinks.write({ records: [scan('ta', local('2024-06-03', '17:00'), local('2024-06-03', '16:10'))] })
  now = local('2024-06-03', '16:11')
  r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.localDate, o.status, o.skipped === true]), [['2024-06-03', 'revised', false]], 'a scan timed (offset applied) in an ended window')
  // Provisional revisions (pending cells) were replaced as the day went on: 1–3 (12:10, 12:31, 13:06) and 6.
  const kept = await store.reports.revisions('S1', '2024-06-03')
  t.strictSame(kept.map((x) => [x.revision, x.pending]), [[4, 0], [5, 0], [7, 0]], 'the revisions with every cell decided are kept')

  await engine.stop()
  pending.length = 0
  t.end()
})

t.test('provisional revisions: replaced by default, all kept with keepProvisionalRevisions', async (t) => {
  const store = await openRulesStore(t, 'embedded')
  if (!store) return
  const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
  for (const keep of [false, true]) {
    const grid = keep ? 'K2' : 'K1'
    await gridWithPlan(store, grid, `${grid}-A`, `${grid}-t`)
    let now = local('2024-06-04', '12:10')
    const engine = createRulesEngine({
      store, log, now: () => now, timers,
      config: { runner: { keepProvisionalRevisions: keep }, scheduler: { deviceRulesSeconds: 86_400, catchUpDays: 0 } },
    })
    await engine.tick() // 08–12 ended: pending in its grace, 12–16 not started
    now = local('2024-06-04', '12:31')
    await engine.tick() // 08–12 missed; 12–16 pending
    now = local('2024-06-04', '16:31')
    await engine.tick() // the day closed: both missed
    const revisions = await store.reports.revisions(grid, '2024-06-04')
    t.strictSame(
      revisions.map((x) => [x.revision, x.pending]),
      keep ? [[1, 2], [2, 1], [3, 0]] : [[3, 0]],
      keep ? 'kept: every revision' : 'replaced: only the complete revision, numbered after the drafts',
    )
    if (!keep) t.same((await store.reports.latest(grid, '2024-06-04'))?.changes.map((c) => (c as { kind: string }).kind).includes('cell'), true, 'its changes are relative to the draft it replaced')
    await engine.stop()
  }
})

t.test('a clock sync that re-times judged check-ins re-evaluates their grid-day, with no new check-in', async (t) => {
  const store = await openRulesStore(t, 'embedded')
  if (!store) return
  await gridWithPlan(store, 'Z1', 'Z1-A', 'z1-t')
  const D = '2024-06-05'
  const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
  let now = local(D, '07:00')
  const engine = createRulesEngine({ store, log, now: () => now, timers, config: { scheduler: { deviceRulesSeconds: 86_400, catchUpDays: 0 } } })
  const sync = async (seq: number, offsetMs: number, at: number) => {
    const commandId = `z1-sync-${seq}`
    await store.commands.enqueue({ commandId, deviceId: 'Z1-dev', kind: 'time_sync', body: { timeSync: { serverTimeMs: at } }, issuedAtMs: at, expiresAtMs: null })
    await store.uplinks.write({ records: [{ kind: 'ack', deviceId: 'Z1-dev', seq, deviceTimeMs: at + offsetMs, receivedAtMs: at, clockFuture: false, clockAncient: false, commandId, status: 'ok', receivedDeviceTimeMs: at + offsetMs }] })
  }
  await sync(1, 0, local(D, '07:00'))
  await engine.tick()
  // the device's clock falls 90 min behind unnoticed: its 09:00 scan is stamped 07:30, before the 08–12 window
  await store.uplinks.write({ records: [{ ...scan('z1-t', local(D, '07:30'), local(D, '09:00')), deviceId: 'Z1-dev', seq: 2 }] })
  // another device's row received at 11:00 moves the watermark well past the scan (lateOverlapSeconds: 120)
  await store.uplinks.write({ records: [{ ...scan('elsewhere', local(D, '11:00'), local(D, '11:00')), deviceId: 'Z1-other', seq: 1 }] })
  now = local(D, '12:31')
  let r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.gridId, o.result?.summary.missed, o.casesOpened]), [['Z1', 1, 1]], '08–12 judged missed on the stale offset')
  now = local(D, '12:40')
  t.strictSame((await engine.tick()).evaluated, [], 'nothing new')
  // 13:00: a sync measures −90 min; nothing else arrives
  await sync(3, -90 * 60_000, local(D, '13:00'))
  now = local(D, '13:01')
  r = await engine.tick()
  t.strictSame(r.evaluated.map((o) => [o.gridId, o.status, o.casesResolved]), [['Z1', 'revised', 1]], 're-evaluated: the scan is 09:00 now, the miss resolved')
  t.equal(r.evaluated[0]?.result?.summary.missed, 0)
  // a further sync measuring the same re-times nothing (no row since the 13:00 one): nothing changes
  // (the grid-day may be looked at once more: lateOverlapSeconds reaches back over the 13:00 sync)
  await sync(4, -90 * 60_000, local(D, '13:30'))
  now = local(D, '13:31')
  r = await engine.tick()
  t.ok(r.evaluated.every((o) => o.status === 'unchanged' && o.casesOpened + o.casesUpdated + o.casesResolved === 0), 'nothing changed')
  now = local(D, '14:10')
  await sync(5, -90 * 60_000, local(D, '14:05'))
  t.strictSame((await engine.tick()).evaluated, [], 'a sync re-timing no row evaluates nothing')
  await engine.stop()
})

t.test('embedded: planner statistics refreshed before a coverage pass, at most every analyzeMinutes', async (t) => {
  const real = await openRulesStore(t, 'embedded')
  if (!real) return
  let analyzed = 0
  const store = { ...real, analyze: async () => (analyzed++, real.analyze()) }
  t.equal(await real.analyze(), true, 'the embedded driver runs ANALYZE (no autovacuum there)')
  await gridWithPlan(store, 'S9', 'A9', 'ta9')
  let now = local('2024-06-03', '07:00')
  const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
  const engine = createRulesEngine({ store, log, now: () => now, timers, config: { scheduler: { deviceRulesSeconds: 86_400, analyzeMinutes: 60 } } })
  await engine.start()
  await engine.idle()
  t.equal(analyzed, 1, 'before the catch-up pass')
  now = local('2024-06-03', '12:10')
  t.equal((await engine.tick()).evaluated.length, 1)
  t.equal(analyzed, 2, 'a pass 5 h 10 min later: again')
  now = local('2024-06-03', '12:40')
  t.equal((await engine.tick()).evaluated.length, 1, 'the window closes (end + grace)')
  t.equal(analyzed, 2, '30 min later: not again')
  await engine.stop()
})

t.test('server: analyze() is left to autovacuum', async (t) => {
  const store = await openRulesStore(t, 'server')
  if (!store) return t.pass('DATABASE_URL is not set')
  t.equal(await store.analyze(), false)
})

t.test('metrics: ticks, steps, outcomes, cases, failures', async (t) => {
  const real = await openRulesStore(t, 'embedded')
  if (!real) return
  let failing = false
  const store = { ...real, watermark: { ...real.watermark, current: () => (failing ? Promise.reject(new Error('database gone')) : real.watermark.current()) } }
  await gridWithPlan(store, 'M1', 'MA', 'tma')
  let now = local('2024-06-03', '07:00')
  const timers: Timers = { setTimeout: () => undefined, clearTimeout: () => undefined }
  const registry = new Registry()
  const engine = createRulesEngine({ store, log, now: () => now, timers, registry, config: { scheduler: { deviceRulesSeconds: 86_400, catchUpDays: 0 } } })
  const value = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value
  const sum = async (name: string) => (await registry.getSingleMetric(name)?.get())?.values.find((v) => (v as { metricName?: string }).metricName === `${name}_count`)?.value

  await engine.tick() // catch-up: yesterday, both windows missed
  t.equal(await value('gridpatrol_rules_grid_days_total', { outcome: 'revised' }), 1, 'one grid-day revised')
  t.equal(await value('gridpatrol_rules_coverage_cases_total', { action: 'opened' }), 2, 'two cases opened')
  for (const step of ['stage_a', 'evaluate', 'cases', 'reports']) t.ok(((await value('gridpatrol_rules_step_seconds_total', { step })) ?? 0) > 0, `time spent in ${step}`)
  t.equal(await sum('gridpatrol_rules_tick_seconds'), 1, 'one tick observed')
  t.ok(((await value('gridpatrol_rules_last_tick_timestamp_seconds')) ?? 0) > Date.now() / 1000 - 60, 'last tick: just now')
  now = local('2024-06-03', '12:31') // today's first window closed after its grace: missed, one more case
  await engine.tick()
  t.equal(await value('gridpatrol_rules_grid_days_total', { outcome: 'revised' }), 2, 'today revised')
  t.equal(await value('gridpatrol_rules_coverage_cases_total', { action: 'opened' }), 3, 'one more case opened')
  now = local('2024-06-03', '12:40')
  await engine.tick()
  t.equal(await value('gridpatrol_rules_grid_days_total', { outcome: 'revised' }), 2, 'nothing due: no more grid-days')
  t.equal(await sum('gridpatrol_rules_tick_seconds'), 3, 'three ticks observed')

  // A failing pass (scheduled ticks are guarded: logged, counted, retried)
  failing = true
  now = local('2024-06-03', '16:31')
  await engine.start()
  await engine.idle()
  t.equal(await value('gridpatrol_rules_tick_failures_total'), 1, 'the failure is counted')
  t.equal(await sum('gridpatrol_rules_tick_seconds'), 3, 'a failed pass is not observed as a tick')
  await engine.stop()
  t.match(await registry.metrics(), /# HELP gridpatrol_rules_step_seconds_total /, 'exposed in the Prometheus text format')
})
