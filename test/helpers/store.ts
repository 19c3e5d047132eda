// Opens a migrated store for a test file and registers its teardown. PGlite
// costs 2-3 s and ~400 MiB to start, so a test file opens one and shares it
// between its subtests (tests use unique ids instead of a reset).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { openStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/types.ts'
import { makeTestDatabase } from './db.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const silentLog = pino({ level: 'silent' })

/** Embedded store in a fresh temp dir (removed at teardown). */
export async function openEmbeddedStore(t: Teardown, opts: { dataDir?: string; migrate?: boolean } = {}): Promise<Store> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'gp-store-')))
  const store = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
  t.teardown(async () => {
    await store.close()
    if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true })
  })
  if (opts.migrate !== false) await store.migrate()
  return store
}

/** Server store on its own throwaway database; undefined when DATABASE_URL is unset. */
export async function openServerStore(t: Teardown, opts: { migrate?: boolean; poolSize?: number } = {}): Promise<Store | undefined> {
  const db = await makeTestDatabase()
  if (!db) return undefined
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url, ...(opts.poolSize ? { poolSize: opts.poolSize } : {}) }, silentLog)
  t.teardown(async () => {
    await store.close()
    await db.drop()
  })
  if (opts.migrate !== false) await store.migrate()
  return store
}
