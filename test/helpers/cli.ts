// Runs the `gridpatrol` command as a user would, in its own process, on an embedded store in
// a fresh temp dir (removed at teardown). Not a test file.
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

const run = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

export interface CliFailure {
  code: number
  stdout: string
  stderr: string
}

export interface EmbeddedCli {
  /** The temp dir; the store is in `dataDir` below it. */
  dir: string
  dataDir: string
  env: NodeJS.ProcessEnv
  /** Runs a command; rejects when it exits non-zero. */
  gp(...args: string[]): Promise<{ stdout: string; stderr: string }>
  /** Runs a command expected to fail: its exit code and output, or undefined when it succeeded. */
  fails(...args: string[]): Promise<CliFailure | undefined>
  /** The same with extra environment variables. */
  withEnv(extra: NodeJS.ProcessEnv): Pick<EmbeddedCli, 'gp' | 'fails'>
}

export async function embeddedCli(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<EmbeddedCli> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_LOG_LEVEL: 'silent' }
  delete env['DATABASE_URL']
  const runner = (e: NodeJS.ProcessEnv) => {
    const gp = (...args: string[]) => run(process.execPath, [bin, ...args], { env: e })
    const fails = (...args: string[]) => gp(...args).then(() => undefined, (err: CliFailure) => err)
    return { gp, fails }
  }
  return { dir, dataDir, env, ...runner(env), withEnv: (extra) => runner({ ...env, ...extra }) }
}
