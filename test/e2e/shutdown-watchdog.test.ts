// Shutdown's watchdog (src/main.ts closeParts) against a real PostgreSQL: a part that waits on
// a database that still answers is waited for; one that waits on a database that does not
// answer (a stalled connection, through the test proxy) has the store closed under it.
import t from 'tap'
import { pino } from 'pino'
import { closeParts } from '../../src/main.ts'
import { openStore } from '../../src/store/index.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { dbProxy } from '../helpers/db-proxy.ts'
import pg from 'pg'

const GRACE = 300

function capture() {
  const lines: string[] = []
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) })
  return { log, lines }
}

const skip = process.env['DATABASE_URL'] ? false : 'DATABASE_URL is not set'

t.test('a part waiting for a lock on a live database is waited for, not cut', { skip }, async (t) => {
  const db = await makeTestDatabase('gp_watchdog_live')
  if (!db) throw new Error('no database')
  t.teardown(() => db.drop())
  const { log, lines } = capture()
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, log)
  await store.migrate()
  await store.grids.create({ id: 'G1', level: 'district', name: 'G1' })

  // another session holds the grids table: the part's write waits for it
  const other = new pg.Client({ connectionString: db.url })
  await other.connect()
  t.teardown(() => other.end())
  await other.query('BEGIN')
  await other.query('LOCK TABLE grids IN ACCESS EXCLUSIVE MODE')
  const write = store.grids.create({ id: 'G2', level: 'district', name: 'G2' })
  const released = new Promise<void>((resolve) => setTimeout(() => void other.query('COMMIT').then(() => resolve()), 3 * GRACE + 2_500))

  const started = Date.now()
  await closeParts([['rules', () => write.then(() => undefined)], ['store', () => store.close()]], { close: () => store.close(), ping: () => store.ping() }, log, GRACE)
  await released
  t.ok(Date.now() - started >= 3 * GRACE + 2_000, 'shutdown waited for the part')
  t.notMatch(lines.join(''), /closing the store under it/, 'the store was not closed under it')
  const check = new pg.Client({ connectionString: db.url })
  await check.connect()
  const { rows } = await check.query<{ n: number }>("SELECT count(*)::int AS n FROM grids WHERE id = 'G2'")
  await check.end()
  t.equal(rows[0]?.n, 1, "the part's write committed")
})

t.test('a part waiting on a database that does not answer has the store closed under it', { skip }, async (t) => {
  const db = await makeTestDatabase('gp_watchdog_hung')
  if (!db) throw new Error('no database')
  t.teardown(() => db.drop())
  const proxy = dbProxy(new URL(db.url))
  await proxy.listen()
  t.teardown(() => proxy.cut())
  const { log, lines } = capture()
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: proxy.url(), shutdownGraceMs: GRACE }, log)
  await store.migrate()
  await store.grids.create({ id: 'G1', level: 'district', name: 'G1' })

  proxy.stall()
  const write = store.grids.create({ id: 'G2', level: 'district', name: 'G2' })
  write.catch(() => undefined)
  const started = Date.now()
  await closeParts([['rules', () => write.then(() => undefined, () => undefined)], ['store', () => store.close()]], { close: () => store.close(), ping: () => store.ping() }, log, GRACE)
  const took = Date.now() - started
  // the watchdog after the grace + 1 s, its ping's second, then the store's own grace (the same, from the store config)
  t.ok(took < GRACE + 1_000 + 1_000 + GRACE + 3_000, `shutdown ended (${took} ms)`)
  t.match(lines.join(''), /rules not closed after the 300 ms grace and the database does not answer: closing the store under it/)
  await t.rejects(write, 'the stuck write failed')
})

t.test('without a ping (embedded) nothing is forced', async (t) => {
  const { log, lines } = capture()
  let closedStore = false
  const part = new Promise<void>((resolve) => setTimeout(resolve, GRACE + 1_500))
  await closeParts([['rules', () => part], ['store', async () => void (closedStore = true)]], { close: async () => void (closedStore = true) }, log, GRACE)
  t.ok(closedStore, 'the store is closed last, in order')
  t.equal(lines.length, 0, 'nothing logged')
})
