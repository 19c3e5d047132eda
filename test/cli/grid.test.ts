import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const run = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

t.test('grid and checkpoint input errors name the option, before the database is touched', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-cli-grid-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const env = { ...process.env, DATABASE_URL: '', GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_LOG_LEVEL: 'warn' }
  const fail = (args: string[]) =>
    run(process.execPath, [bin, ...args], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    )

  let r = await fail(['grid', 'add', 'G9', '--level', 'community'])
  t.equal(r.code, 1)
  t.match(r.stderr, /--parent is required for a community grid/)
  r = await fail(['grid', 'add', 'D9', '--level', 'district', '--code', '12345'])
  t.match(r.stderr, /--code must be 15 digits/)
  r = await fail(['checkpoint', 'add', 'C9', '--grid', 'G9', '--lat', '91', '--lon', '0'])
  t.match(r.stderr, /--lat 91 is not a latitude/)
  // A valid hierarchy goes through, and a wrong parent level is named.
  await run(process.execPath, [bin, 'grid', 'add', 'D9', '--level', 'district'], { env })
  r = await fail(['grid', 'add', 'G9', '--parent', 'D9'])
  t.match(r.stderr, /the parent of a community grid must be a street; "D9" is a district/)
})
