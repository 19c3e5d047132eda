// Runs `gridpatrol` commands on an embedded store in a fresh temp dir (removed at teardown).
// Not a test file.
//
// `gp`/`fails` run a command in this process through the CLI's own `run()` (argument parsing,
// validation, output, exit status: all the same code), on one embedded store kept open for the
// test: opening PGlite is ≈ 1.2 s of every command's ≈ 1.4 s, and the CLI tests run dozens.
// `spawned` runs the real `gridpatrol` process (bin/, its own PGlite), for what only a process
// shows; it closes the shared store first (an embedded database belongs to one process).
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { run } from '../../src/cli/index.ts'
import type { CliIo } from '../../src/cli/io.ts'
import { loadConfig, type Config } from '../../src/config/index.ts'
import { openStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/types.ts'
import { silentLog } from './store.ts'

const execFileP = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

export interface CliFailure {
  code: number
  stdout: string
  stderr: string
}

type Runner = {
  /** Runs a command; rejects (an Error with code, stdout, stderr) when it exits non-zero. */
  gp(...args: string[]): Promise<{ stdout: string; stderr: string }>
  /** Runs a command expected to fail: its exit code and output, or undefined when it succeeded. */
  fails(...args: string[]): Promise<CliFailure | undefined>
}

export interface EmbeddedCli extends Runner {
  /** The temp dir; the store is in `dataDir` below it. */
  dir: string
  dataDir: string
  env: NodeJS.ProcessEnv
  /** The same with extra environment variables. */
  withEnv(extra: NodeJS.ProcessEnv): Runner
  /** The store the commands use (open, migrated): seed or inspect it between commands; do not close it. */
  store(): Promise<Store>
  /** Commands run as real `gridpatrol` processes. */
  spawned: Runner
}

/** One command line through the CLI's `run()` in this process: its exit status and output. */
export async function runCli(args: readonly string[], io: Pick<CliIo, 'env' | 'store' | 'cwd'> = { env: {} }): Promise<CliFailure> {
  let stdout = ''
  let stderr = ''
  const code = await run([process.execPath, bin, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    ...io,
  })
  return { code, stdout, stderr }
}

export async function embeddedCli(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<EmbeddedCli> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`))
  const dataDir = join(dir, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_LOG_LEVEL: 'silent' }
  delete env['DATABASE_URL']

  // One open store, reopened only when a command's configuration asks for other store
  // settings (e.g. GRIDPATROL_RETENTION_DAYS); calls are serialised.
  let open: { key: string; store: Store } | undefined
  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn)
    queue = next.catch(() => undefined)
    return next
  }
  const close = async () => {
    const was = open
    open = undefined
    await was?.store.close()
  }
  const storeFor = (config: Pick<Config, 'dataDir' | 'databaseUrl' | 'storage'>) =>
    serial(async () => {
      const key = JSON.stringify([config.dataDir, config.storage])
      if (open?.key !== key) {
        await close()
        const store = await openStore({ dataDir: config.dataDir, databaseUrl: undefined, ...(config.storage ? { storage: config.storage } : {}) }, silentLog)
        await store.migrate()
        open = { key, store }
      }
      return open.store
    })
  t.teardown(async () => {
    await serial(close)
    await rm(dir, { recursive: true, force: true })
  })

  const inProcess = (e: NodeJS.ProcessEnv): Runner => {
    const gp = async (...args: string[]) => {
      const { code, stdout, stderr } = await runCli(args, { env: e, store: storeFor })
      if (code !== 0) throw Object.assign(new Error(`gridpatrol ${args.join(' ')} exited ${code}: ${stderr}`), { code, stdout, stderr })
      return { stdout, stderr }
    }
    return { gp, fails: failsOf(gp) }
  }
  const spawnedIn = (e: NodeJS.ProcessEnv): Runner => {
    const gp = async (...args: string[]) => {
      await serial(close)
      return execFileP(process.execPath, [bin, ...args], { env: e })
    }
    return { gp, fails: failsOf(gp) }
  }
  return {
    dir,
    dataDir,
    env,
    ...inProcess(env),
    withEnv: (extra) => inProcess({ ...env, ...extra }),
    store: () => storeFor(loadConfig(env)),
    spawned: spawnedIn(env),
  }
}

function failsOf(gp: Runner['gp']): Runner['fails'] {
  return (...args) => gp(...args).then(() => undefined, (err: CliFailure) => err)
}
