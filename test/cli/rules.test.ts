// The rules' CLI end to end on an embedded store: grid, checkpoint, plan,
// coverage report (CSV), case transitions (a refused one exits non-zero with
// the rule's error), case lists. Reports in detail: rules-reports.test.ts.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { embeddedCli } from '../helpers/cli.ts'

// The reports' part is rules-reports.test.ts.

t.test('grid, plan, report coverage, cases', async (t) => {
  const { dir, gp, fails, spawned } = await embeddedCli(t, 'gp-cli-rules')

  await gp('grid', 'add', 'CG', '--level', 'district')
  const plan = join(dir, 'plan.json')
  await writeFile(plan, JSON.stringify({ checkpoints: [{ id: 'CG-A', tagIds: ['t-a'] }, { id: 'CG-B' }], windows: { kind: 'every', every: '12h' } }))
  // Undated, a plan applies from today (in its time zone): past days keep what they had (here: none).
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
  t.match((await gp('plan', 'set', '--grid', 'CG', '--file', plan)).stdout, new RegExp(`stored as version 1, effective from ${today} \\(windows ended before \\d{4}-\\S+Z are not judged\\)\n`))
  t.match((await gp('plan', 'show', '--grid', 'CG', '--json')).stdout, /"effectiveAt": "\d{4}-\d\d-\d\dT[\d:.]+Z"/, "the grid's first plan records when it was put in force")
  t.match((await fails('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01'))?.stderr, /grid "CG" has no patrol plan in force on 2024-06-01/)
  t.match((await fails('plan', 'set', '--grid', 'CG', '--file', plan, '--retroactive', '--effective-from', '2024-01-01'))?.stderr, /--retroactive and an effective date .* exclude each other/)
  t.match((await gp('plan', 'set', '--grid', 'CG', '--file', plan, '--retroactive')).stdout, /stored as version 2, effective on every date \(retroactive\)\n/)
  // A change, undated: from tomorrow (today's windows keep the version they had).
  const tomorrow = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date(Date.now() + 86_400_000))
  t.match(
    (await gp('plan', 'set', '--grid', 'CG', '--file', plan)).stdout,
    new RegExp(`stored as version 3, effective from ${tomorrow} \\(tomorrow: today keeps the version it had; --effective-from ${today} applies it today, re-judging today's windows\\)\n`),
  )

  const csv = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01', '--format', 'csv')).stdout.trim().split('\r\n')
  t.equal(csv[0], 'grid,date,revision,watermark,window,window_start,window_end,checkpoint,status,visits,required,evidence')
  t.equal(csv.length, 5, 'one row per (checkpoint, window)')
  t.match(csv[1], /^CG,2024-06-01,1,,00:00-12:00,2024-05-31T16:00:00.000Z,2024-06-01T04:00:00.000Z,CG-A,missed,0,1,$/)

  // Dates that are not on the calendar are refused by the CLI, naming the flag and the value
  // (before: PostgreSQL's own "date/time field value out of range").
  const badDate = await fails('report', 'coverage', '--grid', 'CG', '--date', '2024-13-45')
  t.equal(badDate?.code, 1)
  t.match(badDate?.stderr, /--date must be a calendar date YYYY-MM-DD, got "2024-13-45"/)
  t.match((await fails('cases', 'stats', '--from', '2024-02-30'))?.stderr, /--from must be a calendar date YYYY-MM-DD, got "2024-02-30"/)

  // The same through the real `gridpatrol` process (the others run in this one): exit 1, the rule on stderr.
  const refused = await spawned.fails('cases', 'transition', '1', '--to', 'closed', '--actor', 'x', '--role', 'operator')
  t.ok(refused, 'refused')
  t.equal(refused?.code, 1)
  t.match(refused?.stderr, /^gridpatrol: GP_CASE_BAD_TRANSITION \[reported->closed\]/)
  t.equal(refused?.stdout, '')

  const noteless = await fails('plan', 'set', '--grid', 'CG', '--file', join(dir, 'missing.json'))
  t.ok(noteless, 'a missing plan file fails')

  t.match((await gp('cases', 'transition', '1', '--to', 'accepted', '--actor', 'op1', '--role', 'operator')).stdout, /reported → accepted \(accept\) by op1/)
  const shown = JSON.parse((await gp('cases', 'show', '1', '--json')).stdout) as { case: { state: string }; events: Array<{ rule: string; actor: string }> }
  t.equal(shown.case.state, 'accepted')
  t.strictSame(shown.events.map((e) => [e.rule, e.actor]), [['raise', 'rules'], ['accept', 'op1']])
  // Several at once: each moved on its own; every refusal named, exit 1.
  const two = await gp('cases', 'transition', '2', '3', '--to', 'accepted', '--actor', 'op1', '--role', 'operator')
  t.match(two.stdout, /^case 2: reported → accepted \(accept\) by op1\ncase 3: reported → accepted \(accept\) by op1\n$/)
  const mixed = await gp('cases', 'transition', '4', '999', '1', '--to', 'accepted', '--actor', 'op1', '--role', 'operator').then(
    () => undefined,
    (e: { code: number; stdout: string; stderr: string }) => e,
  )
  t.equal(mixed?.code, 1)
  t.match(mixed?.stdout, /^case 4: reported → accepted \(accept\) by op1\n$/, 'the valid one moved')
  t.match(mixed?.stderr, /2 of 3 case\(s\) not moved \(the others were\):\n {2}case 999: .*\n {2}case 1: GP_CASE_BAD_TRANSITION \[accepted->accepted\]/)
  t.match((await fails('cases', 'transition', '5', 'x7', '--to', 'accepted', '--actor', 'op1', '--role', 'operator'))?.stderr, /case ids are whole numbers: "x7"/)
  t.match((await fails('cases', 'show', 'abc'))?.stderr, /value 'abc' is invalid .*the case id must be a whole number > 0/, 'refused by the CLI, not by PostgreSQL')

  // A worklist is never cut short silently: the rest is counted on stderr (JSON stays parseable).
  const all = JSON.parse((await gp('cases', 'list', '--date', '2024-06-01', '--json')).stdout) as Array<{ id: number; reportDate: string }>
  t.ok(all.length >= 3 && all.every((c) => c.reportDate === '2024-06-01'), `cases of that report date (${all.length})`)
  const one = await gp('cases', 'list', '--date', '2024-06-01', '--limit', '1')
  t.match(one.stdout, /^id +state .*\n1 +accepted /)
  t.equal(one.stdout.trim().split('\n').length, 2, 'one row')
  t.match(one.stderr, new RegExp(`showing the oldest 1 of ${all.length} matching cases: narrow with --grid, --date, --state, --rule or --department, or raise --limit`))
  t.equal((await gp('cases', 'list', '--department', 'grid-office', '--limit', String(all.length))).stderr, '', 'nothing left out, nothing said')
  t.match((await gp('cases', 'list', '--department', 'nobody')).stdout, /\(none\)/)
  t.match((await fails('cases', 'list', '--date', '2024-06-31'))?.stderr, /--date must be a calendar date YYYY-MM-DD, got "2024-06-31"/)
  t.match((await fails('cases', 'list', '--limit', '0'))?.stderr, /--limit must be a whole number ≥ 1, got "0"/)
})
