import pg from 'pg'
import type { Logger } from '../../logger.ts'
import type { Db, Queryable } from '../db.ts'

const INT8 = 20

/** How long close() lets queries in flight finish by default (GRIDPATROL_SHUTDOWN_GRACE_SECONDS's default). */
const CLOSE_GRACE_MS = 5_000

export interface PgOptions {
  /** Pool size (default 8). */
  max?: number
  /** How long close() waits for the queries in flight and the goodbyes before it ends the connections (default 5000 ms). */
  closeGraceMs?: number
}

/**
 * Server database through a `pg` pool. TimescaleDB is created when the server
 * offers it; otherwise the store runs on plain tables (reported to the caller).
 */
export async function openPg(url: string, log: Logger, opts: PgOptions = {}): Promise<{ db: Db; timescale: boolean; tsl: boolean }> {
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') =>
      oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text'),
  }
  // Every connection of the pool, until its socket has closed: what close() waits for, and ends
  // when the database does not answer. The pool's events show a client only once connected.
  const open = new Map<pg.Client, Promise<void>>()
  const connected = new WeakSet<pg.Client>()
  /** Checked out: a query (or a transaction) in flight. */
  const busy = new Set<pg.Client>()
  class TrackedClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super(config)
      open.set(this, new Promise<void>((resolve) => this.once('end', resolve)).then(() => void open.delete(this)))
    }
  }
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 8, types, connectionTimeoutMillis: 10_000, Client: TrackedClient })
  pool.on('connect', (c) => connected.add(c as pg.Client))
  pool.on('acquire', (c) => busy.add(c as pg.Client))
  pool.on('release', (_err, c) => busy.delete(c as pg.Client))
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
    close: () => (closed ??= endBounded()),
  }
  let closed: Promise<void> | undefined
  /**
   * pool.end(), bounded: a hung database (a stalled connection, a query stuck behind a
   * lock) would hold it forever, as the pool waits for every query in flight and each
   * connection for the server's goodbye. After the grace the sockets left are destroyed:
   * their queries fail, and the server rolls back a transaction left open.
   */
  async function endBounded(): Promise<void> {
    const graceMs = opts.closeGraceMs ?? CLOSE_GRACE_MS
    const ended = pool.end().then(() => Promise.all(open.values()))
    if (await settlesWithin(ended, graceMs)) return
    const left = [...open.keys()]
    const unanswered = left.filter((c) => busy.has(c)).length
    const connecting = left.filter((c) => !connected.has(c)).length
    log.warn(
      { graceMs, connections: left.length, unanswered, connecting },
      `shutdown: the database did not answer within the ${graceMs} ms grace: ${left.length} connection(s) closed ` +
        `(${unanswered} with a query unanswered, ${connecting} not yet connected); their queries fail, a transaction left open is rolled back by the server`,
    )
    // pg-pool's own connection timeout ends a client the same way.
    for (const c of left) c.connection.stream.destroy()
    await settlesWithin(ended, 1_000)
  }
  return { db, timescale, tsl }
}

/** Whether p settles within ms (its rejection counts: the pool is ending anyway). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)))
  try {
    return await Promise.race([p.then(() => true, () => true), late])
  } finally {
    clearTimeout(timer)
  }
}
