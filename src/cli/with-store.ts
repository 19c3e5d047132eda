import { loadConfig } from '../config/index.ts'
import { createLogger } from '../logger.ts'
import { existsSync } from 'node:fs'
import { DataDirInUseError } from '../store/drivers/dir-lock.ts'
import { openStore } from '../store/index.ts'
import type { Store } from '../store/types.ts'
import { io, out } from './io.ts'
import { controlSocket, HeldByServer } from './remote.ts'

/**
 * Opens the configured store (migrations applied), runs `fn`, always closes; or runs `fn` on
 * the store the caller of `run()` keeps open (see CliIo.store). An embedded database held by a
 * running server (`start`) is not opened: the whole command goes to that server (remote.ts).
 */
export async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const { env, store: provided } = io()
  const config = loadConfig(env)
  if (provided) return fn(await provided(config))
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel)
  let store: Store
  try {
    store = await openStore(config, log)
  } catch (err) {
    const socket = err instanceof DataDirInUseError ? controlSocket(err.dataDir) : undefined
    if (socket !== undefined && existsSync(socket)) throw new HeldByServer(socket, err as Error)
    throw err
  }
  try {
    await store.migrate()
    return await fn(store)
  } finally {
    await store.close()
  }
}

/** Prints rows as an aligned table (or JSON lines with --json). */
export function printTable(rows: Array<Record<string, unknown>>, json: boolean): void {
  if (json) {
    out(JSON.stringify(rows, null, 2) + '\n')
    return
  }
  if (rows.length === 0) {
    out('(none)\n')
    return
  }
  const cols = Object.keys(rows[0]!)
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : v instanceof Date ? v.toISOString() : String(v))
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n'
  out(line(cols))
  for (const r of rows) out(line(cols.map((c) => cell(r[c]))))
}
