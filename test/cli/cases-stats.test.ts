// `gridpatrol cases stats` and the overdue flags of `cases list` on an embedded
// store seeded with known workflow histories (test/rules/cases/closure-seed.ts).
import t from 'tap'
import { embeddedCli } from '../helpers/cli.ts'
import { seedClosureCases } from '../rules/cases/closure-seed.ts'

t.test('cases stats per department / street, cases list overdue', async (t) => {
  const { gp, store } = await embeddedCli(t, 'gp-cli-stats')
  await seedClosureCases(await store())

  const csv = (await gp('cases', 'stats', '--by', 'department', '--format', 'csv')).stdout
  t.equal(
    csv,
    [
      'department,due,closed,closed_on_time,overdue_open,closure_rate_pct,on_time_closure_rate_pct',
      'device-maintenance,2,0,0,2,0,0',
      'emergency,1,1,0,0,100,0',
      'grid-office,1,1,1,0,100,100',
      '',
    ].join('\r\n'),
  )
  const tuesday = JSON.parse((await gp('cases', 'stats', '--by', 'street', '--from', '2025-03-11', '--to', '2025-03-11', '--format', 'json')).stdout)
  t.strictSame(tuesday, [{ street: 'S92', due: 2, closed: 0, closedOnTime: 0, overdueOpen: 2, closureRate: 0, onTimeClosureRate: 0 }], 'filed on Tuesday (local dates)')
  const monday = JSON.parse((await gp('cases', 'stats', '--by', 'grid', '--to', '2025-03-10', '--format', 'json')).stdout)
  t.strictSame(monday.map((r: { grid: string; due: number }) => [r.grid, r.due]), [['G91', 2]], '--to is inclusive, in local time')
  const bad = await gp('cases', 'stats', '--from', '11/03/2025').then(() => undefined, (e: { code: number; stderr: string }) => e)
  t.match(bad?.stderr, /--from must be a calendar date YYYY-MM-DD, got "11\/03\/2025"/)

  const listed = JSON.parse((await gp('cases', 'list', '--json')).stdout) as Array<{ windowKey: string; state: string; overdue: string[] }>
  t.strictSame(
    listed.map((c) => [c.windowKey, c.state, c.overdue]),
    [
      ['A', 'closed', []],
      ['B', 'closed', []],
      ['C', 'accepted', ['stage', 'closure']],
      ['D', 'reported', ['stage', 'closure']],
      ['E', 'rejected', []],
      ['F', 'reopened', ['stage', 'closure']],
    ],
    'overdue flags: open cases past their deadlines (it is later than March 2025)',
  )
  const table = (await gp('cases', 'list', '--state', 'accepted')).stdout
  t.match(table, /overdue/)
  t.match(table, /stage\+closure/)
})
