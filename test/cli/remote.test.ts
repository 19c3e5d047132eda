// Commands while `gridpatrol start` holds the embedded database: they run in the server, on its
// store (src/cli/remote.ts). A real server process; the commands through the CLI's run() in this
// process (what the `gridpatrol` binary does, without its start-up) and once as a real process.
import { spawn, execFile } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runCli } from '../helpers/cli.ts'
import { serveCommands } from '../../src/cli/remote.ts'
import { run } from '../../src/cli/index.ts'
import { openStore } from '../../src/store/index.ts'
import { silentLog } from '../helpers/store.ts'

const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))
const execFileP = promisify(execFile)

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('a running server runs the commands that need its embedded database', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-remote-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_MQTT_PORT: '0', GRIDPATROL_WS_PORT: '0', GRIDPATROL_HTTP_PORT: '0' }
  delete env['DATABASE_URL']
  const server = spawn(process.execPath, [bin, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  server.stdout.on('data', (c: Buffer) => (log += c.toString()))
  server.stderr.on('data', (c: Buffer) => (log += c.toString()))
  const exited = once(server, 'exit')
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL')
  })
  const socket = join(dataDir, 'gridpatrol.sock')
  await until('the control socket', () => existsSync(socket) || server.exitCode !== null)
  t.equal(server.exitCode, null, `the server runs (${log.slice(-500)})`)
  t.equal((await stat(socket)).mode & 0o777, 0o600, "the socket is the owner's only")

  const gp = (args: string[], extra: NodeJS.ProcessEnv = {}, cwd?: string) => runCli(args, { env: { ...env, ...extra }, ...(cwd ? { cwd } : {}) })

  const added = await gp(['grid', 'add', 'G1', '--level', 'district', '--name', 'Riverside'])
  t.equal(added.code, 0, added.stderr)
  t.match(added.stdout, /G1/)
  const listed = await gp(['grid', 'list', '--json'])
  t.equal(listed.code, 0, listed.stderr)
  t.match(JSON.parse(listed.stdout), [{ id: 'G1', name: 'Riverside' }], 'the server stored it')

  // a command that fails in the server fails here, with its message and status
  const again = await gp(['cases', 'show', '999999'])
  t.equal(again.code, 1)
  t.match(again.stderr, /999999/)

  // a file argument is read from the caller's working directory
  const elsewhere = join(dir, 'elsewhere')
  await mkdir(elsewhere)
  await writeFile(join(elsewhere, 'plan.json'), JSON.stringify({ checkpoints: [{ id: 'CP1', tagIds: ['T1'] }], windows: { kind: 'every', every: '2h' } }))
  const planned = await gp(['plan', 'set', '--grid', 'G1', '--file', 'plan.json'], {}, elsewhere)
  t.equal(planned.code, 0, planned.stderr)
  const shown = await gp(['plan', 'show', '--grid', 'G1', '--json'])
  t.match(shown.stdout, /CP1/, "the plan stored is the caller's file")

  // the caller's environment: a bad variable is refused by name, as in a local command
  const bad = await gp(['grid', 'list'], { GRIDPATROL_RETENTION_DAYS: 'soon' })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /GRIDPATROL_RETENTION_DAYS/)

  // the real binary: output and exit status through the process
  const real = await execFileP(process.execPath, [bin, 'grid', 'list'], { env })
  t.match(real.stdout, /Riverside/)
  const realFail = await execFileP(process.execPath, [bin, 'cases', 'show', '999999'], { env }).then(() => undefined, (e: { code: number }) => e)
  t.equal(realFail?.code, 1, 'a failed command exits 1 from the real binary too')

  // what manages the database itself is still refused, naming the server
  const migrate = await gp(['migrate'])
  t.equal(migrate.code, 1)
  t.match(migrate.stderr, new RegExp(`in use by another gridpatrol process \\(pid ${server.pid}\\)`))

  server.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'the server stops cleanly')
  t.notOk(existsSync(socket), 'its socket is removed')
  const direct = await gp(['grid', 'list', '--json'])
  t.equal(direct.code, 0, direct.stderr)
  t.match(JSON.parse(direct.stdout), [{ id: 'G1' }], 'what it wrote is in the database, opened directly now')
})

t.test('in one process: the socket serves the caller its own io; a dead socket gives the lock message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-remote-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const store = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  t.teardown(() => store.close())
  await store.migrate()
  const env = { GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_LOG_LEVEL: 'silent' }

  // nothing answers on the socket path (a file left behind): the command is refused, not hung
  await writeFile(join(dataDir, 'gridpatrol.sock'), '')
  const refused = await runCli(['grid', 'list'], { env })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /already open in this process/)

  const served = await serveCommands({ dataDir, store, log: silentLog, run })
  t.ok(served, 'serving')
  t.teardown(() => served?.close())
  const r = await runCli(['grid', 'add', 'D9', '--level', 'district'], { env })
  t.equal(r.code, 0, r.stderr)
  t.ok(await store.grids.get('D9'), "written through the server's store")

  // a malformed request is answered with an error, not a crash
  const sock = net.createConnection(join(dataDir, 'gridpatrol.sock'))
  await once(sock, 'connect')
  sock.write('{"argv": 7}\n')
  let reply = ''
  sock.setEncoding('utf8').on('data', (c: string) => (reply += c))
  await once(sock, 'close')
  t.match(reply, /bad request on the control socket: argv must be an array of strings/)
  t.match(reply, /"exit":1/)
})
