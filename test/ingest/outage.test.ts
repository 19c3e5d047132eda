// Database gone mid-stream, two ways: a TCP proxy between the ingest and
// PostgreSQL is cut and restored, and a private PostgreSQL server is stopped
// (immediate shutdown) and started again. Meanwhile nothing is acknowledged and
// nothing crashes; once it returns every check-in is stored exactly once.
import t, { type Test } from 'tap'
import { openStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/types.ts'
import { makeTestDatabase, serverUrl } from '../helpers/db.ts'
import { dbProxy } from '../helpers/db-proxy.ts'
import { startPrivatePostgres } from '../helpers/private-postgres.ts'
import { silentLog } from '../helpers/store.ts'
import { connectDevice, startStack, up } from './helpers.ts'

/**
 * 10 check-ins, then the database goes away (`down`): 10 more are sent and none is
 * acknowledged; it comes back (`back`): all 10 are, and after overlapping
 * re-sends every check-in is stored once.
 */
async function outage(t: Test, store: Store, deviceId: string, down: () => Promise<void>, back: () => Promise<void>): Promise<void> {
  await store.migrate()
  const stack = await startStack(t, store)
  const dev = await connectDevice(t, stack.url, deviceId, await stack.device(deviceId))
  const NOW = Date.now()
  const send = (seq: number) => up(dev, deviceId, 'checkin', { kind: 'checkin', seq, deviceTimeMs: NOW + seq, checkin: { tagId: 'T', method: 'nfc' } })
  for (let s = 1; s <= 10; s++) await send(s)

  await down()
  const acked: number[] = []
  const during = Array.from({ length: 10 }, (_, i) => send(11 + i).then(() => acked.push(11 + i)))
  await new Promise((r) => setTimeout(r, 1500))
  t.same(acked, [], 'nothing acknowledged while the database is unreachable')

  await back()
  await Promise.all(during)
  t.equal(acked.length, 10, 'all acknowledged once it is back')
  for (let s = 15; s <= 25; s++) await send(s) // overlapping re-sends and new ones
  const rows = await store.checkIns.list({ from: new Date(NOW), to: new Date(NOW + 1000), deviceId })
  t.same(rows.map((r) => r.seq), Array.from({ length: 25 }, (_, i) => i + 1), 'every check-in once, the ten sent during the outage too')
  // Retried either by the batcher (write failed) or by the broker (a lookup
  // failed before the write): both withhold the PUBACK.
}

t.test('database unreachable mid-stream (connections cut): no ack, no crash, exactly once after it returns', async (t) => {
  const db = await makeTestDatabase()
  if (!db) return t.pass('DATABASE_URL is not set: server driver not tested')
  const p = dbProxy(new URL(db.url))
  await p.listen()
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: p.url() }, silentLog)
  t.teardown(async () => {
    await p.cut()
    await store.close()
    await db.drop()
  })
  await outage(t, store, 'outage-dev', p.cut, async () => void (await p.listen()))
})

t.test('database server stopped (immediate shutdown, as in a crash) and restarted mid-stream', async (t) => {
  if (!serverUrl()) return t.pass('DATABASE_URL is not set: server driver not tested')
  const pg = await startPrivatePostgres(t)
  if (typeof pg === 'string') return t.pass(`no private server: ${pg}`)
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: pg.url }, silentLog)
  t.teardown(() => store.close())
  await outage(t, store, 'crash-dev', pg.stop, pg.start)
})
