// Opens a migrated store for a test file and registers its teardown. PGlite
// costs 2-3 s and ~400 MiB to start, so a test file opens one and shares it
// between its subtests (tests use unique ids instead of a reset).
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Test } from 'tap'
import type { Db } from '../../src/store/db.ts'
import { openPg } from '../../src/store/drivers/pg.ts'
import { openPglite } from '../../src/store/drivers/pglite.ts'
import { migrate, MIGRATIONS_DIR } from '../../src/store/migrate.ts'
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

/**
 * A data dir in a fresh temp dir (removed at teardown) migrated with only the migrations `keep`
 * accepts (file names), as an older release left it; returns the open PGlite (close it before
 * opening the store on the same dir) and the data dir. Upgrade tests write old-shaped rows with it.
 */
export async function embeddedMigratedWith(t: Teardown, prefix: string, keep: (file: string) => boolean): Promise<{ dataDir: string; db: Db }> {
  const root = await mkdtemp(join(tmpdir(), `${prefix}-`))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const old = join(root, 'migrations')
  await mkdir(old)
  for (const f of await readdir(MIGRATIONS_DIR)) if (keep(f)) await copyFile(join(MIGRATIONS_DIR, f), join(old, f))
  const dataDir = join(root, 'data')
  const o = await openPglite(dataDir)
  await migrate(o.db, { timescale: o.timescale, tsl: o.tsl }, old)
  return { dataDir, db: o.db }
}

/**
 * An upgrade test on both drivers: the database migrated with the files `keep` selects (the
 * release before), `seed` writes what that release stored, then the current store opens it
 * (applying the rest) and `check` looks. The server half passes with a note without DATABASE_URL.
 */
export function upgradeBothDrivers(
  tap: Test,
  name: string,
  prefix: string,
  keep: (file: string) => boolean,
  seed: (db: Db) => Promise<void>,
  check: (t: Test, store: Store) => Promise<void>,
): void {
  tap.test(`embedded: ${name}`, async (t) => {
    const { dataDir, db } = await embeddedMigratedWith(t, prefix, keep)
    await seed(db)
    await db.close()
    const store = await openStore({ dataDir, databaseUrl: undefined }, silentLog)
    t.teardown(() => store.close())
    await check(t, store)
  })
  tap.test(`server: ${name}`, async (t) => {
    const target = await makeTestDatabase()
    if (!target) {
      t.pass('DATABASE_URL is not set: server upgrade not tested')
      return
    }
    const opened: { store?: Store } = {}
    t.teardown(async () => {
      await opened.store?.close()
      await target.drop()
    })
    const root = await mkdtemp(join(tmpdir(), `${prefix}-pg-`))
    t.teardown(() => rm(root, { recursive: true, force: true }))
    for (const f of await readdir(MIGRATIONS_DIR)) if (keep(f)) await copyFile(join(MIGRATIONS_DIR, f), join(root, f))
    const o = await openPg(target.url, silentLog)
    try {
      await migrate(o.db, { timescale: o.timescale, tsl: o.tsl }, root)
      await seed(o.db)
    } finally {
      await o.db.close()
    }
    opened.store = await openStore({ dataDir: '/nonexistent', databaseUrl: target.url }, silentLog)
    await check(t, opened.store)
  })
}
