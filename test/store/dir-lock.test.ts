// One process per embedded data directory: a second opener is refused with a
// message naming the owner; a lock left by a dead process is taken over.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore } from '../../src/store/index.ts'
import { silentLog } from '../helpers/store.ts'

t.test('the embedded data directory is locked to one opener', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-lock-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))

  const first = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  await t.rejects(openStore({ dataDir, databaseUrl: undefined }, silentLog), /already open in this process/)
  await first.close()

  // Another live process holds it.
  const other = spawn('sleep', ['30'])
  t.teardown(() => other.kill())
  await writeFile(join(dataDir, 'gridpatrol.lock'), `${other.pid}\n`)
  await t.rejects(openStore({ dataDir, databaseUrl: undefined }, silentLog), new RegExp(`in use by another gridpatrol process \\(pid ${other.pid}\\)`))

  // The owner died without releasing (kill -9): the stale lock is taken over.
  other.kill('SIGKILL')
  await new Promise((r) => other.once('exit', r))
  const reopened = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  await reopened.migrate()
  t.equal(await reopened.checkIns.count(), 0, 'opens and works after taking over a stale lock')
  await reopened.close()
})
