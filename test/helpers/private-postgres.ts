// A PostgreSQL server of the test's own (initdb in a temp dir, a free loopback
// port), so a test can really stop and restart it without touching the
// machine's shared server. Runs as the postgres user when the tests run as root
// (initdb and postgres refuse root). Undefined, with the reason, when this
// machine has no PostgreSQL server binaries.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface PrivatePostgres {
  url: string
  /** `pg_ctl stop -m immediate`: the server dies as in a crash (no clean shutdown). */
  stop(): Promise<void>
  start(): Promise<void>
}

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin')
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function startPrivatePostgres(t: { teardown(fn: () => unknown): void }): Promise<PrivatePostgres | string> {
  const bin = binDir()
  if (!bin) return 'no PostgreSQL server binaries under /usr/lib/postgresql'
  const root = process.getuid?.() === 0
  const as = async (file: string, args: string[]) => (root ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args))
  const dir = await mkdtemp(join(tmpdir(), 'gp-pg-'))
  if (root) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout), Number(gid))
  }
  await chmod(dir, 0o700)
  const data = join(dir, 'data')
  const port = await freePort()
  await as(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`
  const start = async () => void (await as(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']))
  const stop = async () => void (await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']))
  await start()
  t.teardown(async () => {
    await stop().catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop, start }
}
