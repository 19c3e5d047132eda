// The rules' CLI end to end on an embedded store: grid, checkpoint, plan,
// coverage report (CSV), case transitions (a refused one exits non-zero with
// the rule's error).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const run = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

t.test('grid, plan, report coverage, cases', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-cli-rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, GRIDPATROL_DATA_DIR: join(dir, 'data'), GRIDPATROL_LOG_LEVEL: 'silent' }
  delete env['DATABASE_URL']
  const gp = (...args: string[]) => run(process.execPath, [bin, ...args], { env })
  const fails = (...args: string[]) => gp(...args).then(() => undefined, (e: { code: number; stderr: string }) => e)

  await gp('grid', 'add', 'CG', '--level', 'district')
  const plan = join(dir, 'plan.json')
  await writeFile(plan, JSON.stringify({ checkpoints: [{ id: 'CG-A', tagIds: ['t-a'] }, { id: 'CG-B' }], windows: { kind: 'every', every: '12h' } }))
  t.match((await gp('plan', 'set', '--grid', 'CG', '--file', plan)).stdout, /version 1/)

  const csv = (await gp('report', 'coverage', '--grid', 'CG', '--date', '2024-06-01', '--format', 'csv')).stdout.trim().split('\r\n')
  t.equal(csv[0], 'grid,date,revision,watermark,window,window_start,window_end,checkpoint,status,visits,required,evidence')
  t.equal(csv.length, 5, 'one row per (checkpoint, window)')
  t.match(csv[1], /^CG,2024-06-01,1,,00:00-12:00,2024-05-31T16:00:00.000Z,2024-06-01T04:00:00.000Z,CG-A,missed,0,1,$/)

  const refused = await fails('cases', 'transition', '1', '--to', 'closed', '--actor', 'x', '--role', 'operator')
  t.ok(refused, 'refused')
  t.equal(refused?.code, 1)
  t.match(refused?.stderr, /GP_CASE_BAD_TRANSITION \[reported->closed\]/)

  const noteless = await fails('plan', 'set', '--grid', 'CG', '--file', join(dir, 'missing.json'))
  t.ok(noteless, 'a missing plan file fails')

  t.match((await gp('cases', 'transition', '1', '--to', 'accepted', '--actor', 'op1', '--role', 'operator')).stdout, /reported → accepted \(accept\) by op1/)
  const shown = JSON.parse((await gp('cases', 'show', '1', '--json')).stdout) as { case: { state: string }; events: Array<{ rule: string; actor: string }> }
  t.equal(shown.case.state, 'accepted')
  t.strictSame(shown.events.map((e) => [e.rule, e.actor]), [['raise', 'rules'], ['accept', 'op1']])
})
