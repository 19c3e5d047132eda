// The rules' CLI end to end on an embedded store, reports: a report's cell detail derived
// from its watermark (and the warning when it disagrees), revision history, replaced
// provisional revisions, every grid's coverage on a day, and a day past the retention.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createRunner } from '../../src/rules/runner.ts'
import { embeddedCli } from '../helpers/cli.ts'
import { silentLog } from '../helpers/store.ts'

t.test('report coverage, revisions, day; past the retention', async (t) => {
  const { dir, gp, fails, withEnv, store: cliStore } = await embeddedCli(t, 'gp-cli-reports')

  // A grid whose plan applies to every date (version 2, as in rules.test.ts), evaluated once for
  // 2024-06-01 with no check-in: revision 1, every cell missed.
  await gp('grid', 'add', 'CG', '--level', 'district')
  const plan = join(dir, 'plan.json')
  // CG-B alone has coordinates (no travel between CG-A and CG-B: it needs both): the checkpoint nearest a GPS fix.
  await writeFile(plan, JSON.stringify({ checkpoints: [{ id: 'CG-A', tagIds: ['t-a'] }, { id: 'CG-B', lat: 31.499, lon: 121.9 }], windows: { kind: 'every', every: '12h' } }))
  await gp('plan', 'set', '--grid', 'CG', '--file', plan)
  t.match((await gp('plan', 'set', '--grid', 'CG', '--file', plan, '--retroactive')).stdout, /stored as version 2, effective on every date/)
  t.match((await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01', '--format', 'csv')).stdout, /^grid,date,revision,.*\r\nCG,2024-06-01,1,,00:00-12:00,.*,CG-A,missed,0,1,\r\n/)

  // Stored reports keep only the exceptions; `report coverage` prints every cell with its
  // evidence, derived as of the report's watermark, and says so when that disagrees with
  // the stored report (here: a row committed after it with an older receipt time).
  const store = await cliStore()
  const T = Date.parse('2024-06-01T03:00:00+08:00')
  const checkin = (seq: number, tagId: string, at: number, receivedAtMs: number) =>
    ({ kind: 'checkin', deviceId: 'cg-dev', seq, deviceTimeMs: at, receivedAtMs, clockFuture: false, clockAncient: false, tagId, method: 'nfc', checkpointId: null, gridId: 'CG' }) as const
  await store.uplinks.write({ records: [checkin(1, 't-a', T, T + 60_000)] })
  // Revision 1 was computed before anything was received (no watermark): its detail counts nothing
  // received since, and agrees with it (before: every row counted, and a WARNING of disagreement).
  const first = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01')).stdout
  t.match(first, /revision 1 .*\ncoverage 0%  met 0  missed 4  pending 0  of 4\n/)
  t.match(first, /00:00-12:00 +CG-A +missed +0\/1\n/)
  t.notMatch(first, /WARNING/)
  t.equal((await createRunner({ store, log: silentLog, now: () => T + 86_400_000 }).evaluateDay('CG', '2024-06-01')).revision, 2)
  t.strictSame(((await store.reports.latest('CG', '2024-06-01'))?.result as { cells: unknown[] }).cells.length, 3, 'stored: the three exceptions')
  await store.uplinks.write({ records: [checkin(2, 'CG-B', T, T + 30_000)] })
  const table = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01')).stdout
  t.match(table, /revision 2 .*\ncoverage 25%  met 1  missed 3  pending 0  of 4\n/)
  t.match(table, /00:00-12:00 +CG-A +met +1\/1 +cg-dev:1\n/, 'the met cell with its evidence')
  t.match(table, /WARNING: the cell detail above .*\n.*stored revision 2 in \d+ place\(s\):\n {2}cell CG-B 2024-06-01\/00:00-12:00: stored missed, detail met\n(.*\n)* {2}coverage: stored 25%, detail 50%\n/)
  const json = await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01', '--format', 'json')
  const parsed = JSON.parse(json.stdout) as { revision: number; result: { cells: Array<{ checkpointId: string; status: string; evidence: string[] }> } }
  t.strictSame(parsed.result.cells.map((c) => [c.checkpointId, c.status, c.evidence]), [['CG-A', 'met', ['cg-dev:1']], ['CG-B', 'met', ['cg-dev:2']], ['CG-A', 'missed', []], ['CG-B', 'missed', []]])
  t.match(json.stderr, /WARNING: .*\n.*stored revision 2/, 'json stays parseable; the warning goes to stderr')

  // The revision history: what each revision changed from the one before it.
  const history = (await gp('report', 'revisions', '--grid', 'CG', '--date', '2024-06-01')).stdout
  t.match(history, /^revision +evaluated +watermark +plan +coverage +met +missed +pending +changes\n1 +\S+ +- +2 +0% +0 +4 +0 +0\n2 +\S+ +2024-05-31T19:01:00.000Z +2 +25% +1 +3 +0 +5\n/)
  t.match(history, /\nrevision 2:\n {2}cell CG-A 2024-06-01\/00:00-12:00: missed → met\n {2}gap CG-A from 2024-05-31T16:00:00.000Z: closed \(was 1440 min\)\n(.*\n)* {2}coverage 0% → 25%\n/)
  t.notMatch(history, /provisional/)
  t.strictSame(JSON.parse((await gp('report', 'revisions', '--grid', 'CG', '--date', '2024-06-01', '--format', 'json')).stdout).map((r: { revision: number }) => r.revision), [1, 2])
  t.match((await fails('report', 'revisions', '--grid', 'CG', '--date', '2024-06-05'))?.stderr, /no coverage report for grid "CG" on 2024-06-05/)
  // A day evaluated while its windows were open: its provisional revisions were replaced.
  for (const at of ['2024-06-02T06:00:00+08:00', '2024-06-02T13:00:00+08:00', '2024-06-03T01:00:00+08:00']) {
    await createRunner({ store: await cliStore(), log: silentLog, now: () => Date.parse(at) }).evaluateDay('CG', '2024-06-02')
  }
  const replaced = (await gp('report', 'revisions', '--grid', 'CG', '--date', '2024-06-02')).stdout
  t.match(replaced, /\n3 +\S+ +\S+ +2 +0% +0 +4 +0 +\d+\n/)
  t.match(replaced, /\nRevision\(s\) 1–2: provisional \(cells pending\), replaced by the next revision/)
  t.match((await fails('report', 'coverage', '--grid', 'CG', '--date', '2024-06-02', '--revision', '2'))?.stderr, /revision 2 of grid "CG" on 2024-06-02 was provisional \(cells pending\) and was replaced by a later revision; the latest is 3/)
  t.match((await fails('report', 'coverage', '--grid', 'CG', '--date', '2024-06-02', '--revision', '9'))?.stderr, /no coverage report for grid "CG" on 2024-06-02 revision 9/)
  t.match((await fails('report', 'coverage', '--grid', 'CG', '--date', '2024-06-02', '--revision', 'latest'))?.stderr, /--revision must be a whole number > 0/)

  // Mid-day: a revision with cells pending, and data received since: the report says so (and how to evaluate now).
  const T4 = Date.parse('2024-06-04T06:00:00+08:00')
  await createRunner({ store: await cliStore(), log: silentLog, now: () => T4 }).evaluateDay('CG', '2024-06-04')
  const midday = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-04')).stdout
  t.notMatch(midday, /NOTE/, 'nothing received since: no note')
  await (await cliStore()).uplinks.write({ records: [checkin(3, 't-a', T4 + 60_000, T4 + 120_000)] })
  const stale = await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-04')
  t.match(stale.stdout, /\nNOTE: 4 cell\(s\) were pending when revision \d+ was evaluated \(2024-06-03T22:00:00.000Z\), and data has been received since \(ingest watermark now 2024-06-03T22:02:00.000Z\)\. .*--evaluate evaluates now\.\n/)
  t.match((await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-04', '--format', 'csv')).stderr, /^NOTE: 4 cell\(s\) were pending/, 'csv: the note on stderr')
  t.notMatch((await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-04', '--evaluate')).stdout, /NOTE/, 'evaluated now: no note')

  // Signals in words in the table (README, "signals"): an unknown tag, a GPS fix outside every geofence, a re-read,
  // checkpoints not in the plan: a neighbouring grid's (CX-1, its tag read) and one of CG's own that its plan does
  // not list (CG-C, a GPS fix the ingest placed in its geofence: the device's grid's geofences only).
  await gp('grid', 'add', 'CX', '--level', 'district')
  await gp('checkpoint', 'add', 'CX-1', '--grid', 'CX', '--tag', 't-cx')
  await gp('checkpoint', 'add', 'CG-C', '--grid', 'CG', '--lat', '31.51', '--lon', '121.9')
  const T5 = Date.parse('2024-06-05T03:00:00+08:00')
  await (await cliStore()).uplinks.write({
    records: [
      checkin(10, 'zz-unknown', T5, T5 + 1000),
      { ...checkin(11, '', T5 + 60_000, T5 + 61_000), method: 'gps', lat: 31.5, lon: 121.9 },
      checkin(12, 't-a', T5 + 120_000, T5 + 121_000),
      checkin(13, 't-a', T5 + 150_000, T5 + 151_000),
      { ...checkin(14, 't-cx', T5 + 180_000, T5 + 181_000), checkpointId: 'CX-1' },
      { ...checkin(15, '', T5 + 240_000, T5 + 241_000), method: 'gps', lat: 31.5101, lon: 121.9, checkpointId: 'CG-C' },
    ],
  })
  const signals = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-05')).stdout
  t.match(signals, /\nsignals\nkind +device +at +detail +checkins\n/)
  t.match(signals, /\nrescan +cg-dev +\S+ +read again after 30 s +cg-dev:12 cg-dev:13\n/)
  t.match(signals, /\nunknown_tag +cg-dev +\S+ +tag zz-unknown is in no plan or registry +cg-dev:10\n/)
  t.match(signals, /\noutside_geofence +cg-dev +\S+ +GPS fix 31\.5, 121\.9 outside every geofence: 111 m from CG-B +cg-dev:11\n/)
  t.notMatch(signals, /unknown_tag +cg-dev +\S+ +GPS/, 'a GPS fix is no unknown tag')
  t.match(signals, /\nunplanned_checkpoint +cg-dev +\S+ +checkpoint CX-1 of grid CX, not in this grid's plan +cg-dev:14\n/)
  t.match(signals, /\nunplanned_checkpoint +cg-dev +\S+ +checkpoint CG-C of grid CG, not in this grid's plan +cg-dev:15\n/)
  t.notMatch(signals, /(unknown_tag|outside_geofence) .*cg-dev:1[45]/, 'a registered checkpoint is no unknown tag, its geofence no outside')
  const sigJson = JSON.parse((await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-05', '--format', 'json')).stdout) as { result: { signals: Array<{ kind: string; detail: unknown }> } }
  t.strictSame(sigJson.result.signals.find((x) => x.kind === 'outside_geofence')?.detail, { lat: 31.5, lon: 121.9, nearestCheckpoint: 'CG-B', meters: 111 }, 'json: the fields')
  t.strictSame(sigJson.result.signals.filter((x) => x.kind === 'unplanned_checkpoint').map((x) => x.detail), [{ checkpointId: 'CX-1', gridId: 'CX' }, { checkpointId: 'CG-C', gridId: 'CG' }], 'json: the checkpoint and its grid')
  // A revision stored by the engine before outside_geofence (digest tagged e1): the fix was an unknown tag with an
  // empty tag id. `report coverage` (its table: the detail derived now) says why that disagrees.
  const cur = (await (await cliStore()).reports.latest('CG', '2024-06-05'))!
  const oldResult = cur.result as { signals: Array<{ kind: string; detail: Record<string, unknown> }> }
  const oldSignals = oldResult.signals.map((x) => (x.kind === 'outside_geofence' ? { ...x, kind: 'unknown_tag', detail: { tagId: '' } } : x))
  await (await cliStore()).reports.saveMany([{ ...cur, revision: cur.revision + 1, result: { ...oldResult, signals: oldSignals }, changes: [], digest: 'e1.stored-by-engine-1' }])
  const engine1 = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-05')).stdout
  t.match(engine1, /\n {2}signal unknown_tag cg-dev cg-dev:11: only in the stored report\n(.*\n)*Revision \d+ was computed by an earlier version of the rules engine, which may judge the same check-ins differently/)
  t.notMatch(signals, /earlier version of the rules engine/, 'a report of this engine: no such line')

  // Every grid's coverage on a day, worst first.
  await gp('grid', 'add', 'CH', '--level', 'district')
  const planCh = join(dir, 'plan-ch.json')
  await writeFile(planCh, JSON.stringify({ checkpoints: [{ id: 'CH-A', tagIds: ['t-ch-a'] }, { id: 'CH-B', tagIds: ['t-ch-b'] }], windows: { kind: 'every', every: '12h' } }))
  await gp('plan', 'set', '--grid', 'CH', '--file', planCh, '--retroactive')
  await gp('report', 'coverage', '--grid', 'CH', '--date', '2024-06-01')
  const day = (await gp('report', 'day', '--date', '2024-06-01')).stdout
  t.match(day, /^grid +revision +coverage +met +missed +pending +evaluated +watermark\nCH +1 +0% +0 +4 +0 .*\nCG +2 +25% +1 +3 +0 .*\n\n2 of 2 grid\(s\) with a report for 2024-06-01\n$/)
  t.match((await gp('report', 'day', '--date', '2024-06-01', '--below', '10')).stdout, /\nCH .*\n\n1 of 2 grid\(s\) with a report for 2024-06-01 \(below 10%\)\n$/)
  t.match((await gp('report', 'day', '--date', '2024-06-01', '--format', 'csv')).stdout, /^grid,revision,coverage,met,missed,pending,evaluated,watermark\r\nCH,1,0,0,4,0,/)
  t.match((await fails('report', 'day', '--date', '2024-06-01', '--below', '120'))?.stderr, /--below must be a percentage 0–100, got "120"/)
  // A grid patrolled that day by its plan but never evaluated is named (not listed is not fine).
  await gp('grid', 'add', 'CI', '--level', 'district')
  await gp('plan', 'set', '--grid', 'CI', '--file', planCh, '--retroactive')
  t.match((await gp('report', 'day', '--date', '2024-06-01')).stdout, /\n2 of 2 grid\(s\) with a report for 2024-06-01\n\nNOTE: 1 grid\(s\) patrolled on 2024-06-01 by their plan have no report yet: CI\. .*report coverage --grid G --date 2024-06-01 evaluates one now\.\n$/)
  t.match((await gp('report', 'day', '--date', '2024-06-01', '--format', 'json')).stderr, /^NOTE: 1 grid\(s\) patrolled/, 'json: the note on stderr')
  await gp('report', 'coverage', '--grid', 'CI', '--date', '2024-06-01')
  t.notMatch((await gp('report', 'day', '--date', '2024-06-01')).stdout, /NOTE/, 'evaluated: listed, no note')

  // With a check-in retention (GRIDPATROL_RETENTION_DAYS), a day older than it is not evaluated again
  // (its dropped check-ins would count as missed): the stored report is printed, its exceptions only.
  const retained = withEnv({ GRIDPATROL_RETENTION_DAYS: '30' })
  const gpr = retained.gp
  const old = (await gpr('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01')).stdout
  t.match(old, /revision 2 .*\ncoverage 25%  met 1  missed 3/)
  t.notMatch(old, /WARNING/, 'no disagreement: nothing is derived')
  t.match(old, /CG-B +missed/)
  t.notMatch(old, / met +1\/1/, 'the met cell is not listed')
  t.match(old, /NOTE: 2024-06-01 is past the check-in retention: only the stored report's exceptions are listed above; its 1 met cell\(s\) are not listed/)
  const again = await retained.fails('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01', '--evaluate')
  t.equal(again?.code, 1, '--evaluate refused')
  t.match(again?.stderr, /2024-06-01 is past the check-in retention \(GRIDPATROL_RETENTION_DAYS=30: check-ins are kept for 30 day\(s\)\), so grid "CG" is not re-evaluated .*stored revision 2 stands/)
  const none = await retained.fails('report', 'coverage', '--grid', 'CG', '--date', '2024-05-01')
  t.match(none?.stderr, /so grid "CG" has no coverage report for it and it cannot be evaluated/)
})
