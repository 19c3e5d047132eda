// store.close() on the server driver when the database hangs: a stalled connection
// (the proxy forwards nothing and closes nothing) or a query stuck behind another
// session's lock. close() gives the queries in flight the grace, then ends the
// connections left, logs once what it abandoned and resolves; what was committed stays.
import { Writable } from 'node:stream'
import pg from 'pg'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import type { Db } from '../../src/store/db.ts'
import { openPg } from '../../src/store/drivers/pg.ts'
import { makeTestDatabase, serverUrl } from '../helpers/db.ts'
import { dbProxy } from '../helpers/db-proxy.ts'

const GRACE_MS = 400
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** A race's bound: unref'd, it does not hold the test process open once the race is won (a hang still fails). */
const limit = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())

interface Line {
  level: number
  msg: string
  graceMs?: number
  connections?: number
  unanswered?: number
  connecting?: number
}

function capture() {
  const lines: Line[] = []
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line)
        cb()
      },
    }),
  )
  return { log, lines }
}

/** A throwaway database with table `kept`; `cleanups` run last first at teardown. */
async function setup(t: Test, name: string) {
  const made = await makeTestDatabase(name)
  if (!made) return undefined
  const cleanups: Array<() => unknown> = [() => made.drop()]
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c()
  })
  const direct = new pg.Client({ connectionString: made.url })
  await direct.connect()
  cleanups.push(() => direct.end())
  await direct.query('CREATE TABLE kept (id int PRIMARY KEY)')
  return { url: made.url, direct, cleanups }
}

/** close(), raced against grace + `marginMs`: 'closed' with the time it took, or 'still closing'. */
async function timedClose(db: Db, marginMs: number) {
  const started = Date.now()
  const outcome = await Promise.race([db.close().then(() => 'closed'), limit(GRACE_MS + marginMs).then(() => 'still closing')])
  return { outcome, ms: Date.now() - started }
}

const ids = async (c: pg.Client) => (await c.query<{ id: number }>('SELECT id FROM kept ORDER BY id')).rows.map((r) => r.id)

t.test('a stalled connection: close() ends the connections after the grace, logs once, keeps what was committed', { skip: serverUrl() ? false : 'DATABASE_URL is not set' }, async (t) => {
  const s = await setup(t, 'gp_close_stall')
  if (!s) return
  const p = dbProxy(new URL(s.url))
  await p.listen()
  s.cleanups.push(() => p.cut())
  const { log, lines } = capture()
  const { db } = await openPg(p.url(), log, { closeGraceMs: GRACE_MS })
  let closedInTime = false
  s.cleanups.push(() => closedInTime || Promise.race([db.close(), limit(1000)]))

  await db.transaction((tx) => tx.query('INSERT INTO kept VALUES (1)'))
  // A transaction left open across the hang: its first insert went through, its second never will.
  let inserted!: () => void
  const insertedOnce = new Promise<void>((r) => (inserted = r))
  const open = db.transaction(async (tx) => {
    await tx.query('INSERT INTO kept VALUES (2)')
    inserted()
    await sleep(200)
    await tx.query('INSERT INTO kept VALUES (3)')
  })
  await insertedOnce
  await db.query('SELECT 1') // a second connection, idle in the pool
  p.stall()
  // One query on the idle connection, two on connections opened during the hang (never answered).
  const stuck = [open, db.query('SELECT 1'), db.query('SELECT 2'), db.query('SELECT 3')].map((q) => q.then(() => 'answered', (err: Error) => err.message))
  await sleep(300)

  const { outcome, ms } = await timedClose(db, 3_000)
  closedInTime = outcome === 'closed'
  t.equal(outcome, 'closed', 'close() resolves although the database does not answer')
  t.ok(ms >= GRACE_MS - 50, `the queries in flight had the grace (${ms} ms)`)
  t.ok(ms < GRACE_MS + 1_500, `and not much more (${ms} ms)`)
  const warned = lines.filter((l) => l.level >= 40)
  t.equal(warned.length, 1, 'one warning')
  t.match(warned[0], {
    graceMs: GRACE_MS,
    connections: 4,
    unanswered: 2,
    connecting: 2,
    msg: /^shutdown: the database did not answer within the 400 ms grace: 4 connection\(s\) closed/,
  })
  const answers = await Promise.race([Promise.all(stuck), limit(2_000).then(() => 'the queries are still waiting')])
  t.ok(Array.isArray(answers), 'every query in flight has failed')
  if (Array.isArray(answers)) for (const a of answers) t.not(a, 'answered', `failed: ${a}`)
  t.same(await ids(s.direct), [1], 'the other sessions see only what was committed')

  // The network back (the server sees the stalled sockets close): the open transaction is rolled back.
  await p.cut()
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(50)) {
    const { rows } = await s.direct.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
    if (rows[0]?.n === 0) break
  }
  t.same(await ids(s.direct), [1], 'committed kept, the open transaction rolled back')
})

t.test('a query stuck behind a lock: the same, and the lock holder is unaffected', { skip: serverUrl() ? false : 'DATABASE_URL is not set' }, async (t) => {
  const s = await setup(t, 'gp_close_lock')
  if (!s) return
  const { log, lines } = capture()
  const { db } = await openPg(s.url, log, { closeGraceMs: GRACE_MS })
  let closedInTime = false
  s.cleanups.push(() => closedInTime || Promise.race([db.close(), limit(1000)]))
  await db.transaction((tx) => tx.query('INSERT INTO kept VALUES (1)'))

  await s.direct.query('BEGIN')
  await s.direct.query('LOCK TABLE kept IN ACCESS EXCLUSIVE MODE')
  s.cleanups.push(() => s.direct.query('ROLLBACK').catch(() => undefined))
  const stuck = db.transaction((tx) => tx.query('INSERT INTO kept VALUES (2)')).then(() => 'answered', (err: Error) => err.message)
  await sleep(300)

  const { outcome, ms } = await timedClose(db, 3_000)
  closedInTime = outcome === 'closed'
  t.equal(outcome, 'closed', 'close() resolves while the query waits for the lock')
  t.ok(ms >= GRACE_MS - 50 && ms < GRACE_MS + 1_500, `after the grace (${ms} ms)`)
  t.match(
    lines.filter((l) => l.level >= 40),
    [{ connections: 1, unanswered: 1, connecting: 0, msg: /did not answer within the 400 ms grace/ }],
    'one warning',
  )
  t.match(await Promise.race([stuck, limit(2_000).then(() => 'still waiting')]), /Connection terminated/, 'the stuck insert failed')

  await s.direct.query('COMMIT') // the lock released: the abandoned session must not insert after all
  await sleep(200)
  t.same(await ids(s.direct), [1], 'committed kept, the abandoned insert not committed')
})

t.test('a healthy database: close() lets a query in flight finish, logs nothing', { skip: serverUrl() ? false : 'DATABASE_URL is not set' }, async (t) => {
  const s = await setup(t, 'gp_close_ok')
  if (!s) return
  const { log, lines } = capture()
  const { db } = await openPg(s.url, log, { closeGraceMs: 5_000 })
  await db.query('SELECT 1')
  const slow = db.transaction(async (tx) => {
    await tx.query('SELECT pg_sleep(0.3)')
    await tx.query('INSERT INTO kept VALUES (1)')
  })
  await sleep(50)
  const started = Date.now()
  await db.close()
  await slow
  const ms = Date.now() - started
  t.ok(ms >= 200 && ms < 2_000, `close() waited for the transaction in flight (${ms} ms)`)
  t.same(await ids(s.direct), [1], 'it committed')
  t.same(lines.filter((l) => l.level >= 40), [], 'no warning')
})
