import pg from 'pg'
import type { Logger } from '../../logger.ts'
import type { Db, Queryable } from '../db.ts'

const INT8 = 20

/**
 * Server database through a `pg` pool. TimescaleDB is created when the server
 * offers it; otherwise the store runs on plain tables (reported to the caller).
 */
export async function openPg(url: string, log: Logger, opts: { max?: number } = {}): Promise<{ db: Db; timescale: boolean; tsl: boolean }> {
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text'),
  }
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 8, types, connectionTimeoutMillis: 10_000 })
  // An idle client losing its server must not crash the process (DB outage).
  pool.on('error', (err) => log.warn({ err: err.message }, 'database connection lost'))
  const wrap = (c: pg.Pool | pg.PoolClient): Queryable => ({
    async query<R>(text: string, params?: unknown[]) {
      return (await c.query(text, params)).rows as R[]
    },
    async exec(text: string) {
      await c.query(text)
    },
  })
  let timescale = false
  let tsl = false
  try {
    const [row] = await wrap(pool).query<{ available: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available",
    )
    if (row?.available) {
      await pool.query('CREATE EXTENSION IF NOT EXISTS timescaledb')
      timescale = true
      const [lic] = await wrap(pool).query<{ license: string | null }>("SELECT current_setting('timescaledb.license', true) AS license")
      tsl = lic?.license === 'timescale'
    }
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'timescaledb is available but could not be created')
  }
  const db: Db = {
    driver: 'pg',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect()
      let broken = false
      // A checked-out client has no pool listener: a connection lost mid-transaction
      // would otherwise be an uncaught 'error' (the pending query rejects anyway).
      const onError = () => (broken = true)
      client.on('error', onError)
      try {
        await client.query('BEGIN')
        const out = await fn(wrap(client))
        await client.query('COMMIT')
        return out
      } catch (err) {
        // A failed ROLLBACK means the connection is gone: discard it from the pool.
        await client.query('ROLLBACK').catch(() => (broken = true))
        throw err
      } finally {
        client.removeListener('error', onError)
        client.release(broken)
      }
    },
    close: () => pool.end(),
  }
  return { db, timescale, tsl }
}
