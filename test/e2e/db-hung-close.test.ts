// `gridpatrol start` stopped while its database hangs (the connection stalls: nothing
// answered, nothing reset): one SIGTERM is enough. A device's check-in and a /health
// probe wait on the database when the signal comes. The API does not close within the
// grace (its request waits), so the store is closed under it; the store gives its
// queries its own grace, ends the connections and says the database did not answer;
// the broker then gives the check-in its grace, and the process exits 0. What was
// committed before the hang is kept; what waited was not acknowledged.
import mqtt from 'mqtt'
import t from 'tap'
import { hashSecret } from '../../broker/index.ts'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { openStore } from '../../src/store/index.ts'
import { LOCAL_EPHEMERAL, startProcess } from '../helpers/app.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { dbProxy } from '../helpers/db-proxy.ts'
import { silentLog } from '../helpers/store.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** A race's bound: unref'd, it does not hold the test process open once the race is won (a hang still fails). */
const limit = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())
/** GRIDPATROL_SHUTDOWN_GRACE_SECONDS of the process: short, so the test waits out half a second, not 5 s, each time. */
const GRACE_MS = 500
const T0 = Date.now() - 3_600_000
const checkIn = (seq: number) => Buffer.from(encodeUplink({ kind: 'checkin', seq, deviceTimeMs: T0 + seq * 1000, checkin: { tagId: 'T1', method: 'nfc' } } satisfies Uplink))

t.test('a hung database: one SIGTERM stops the process within its graces, exit 0, the hang logged, the committed kept', async (t) => {
  const db = await makeTestDatabase('gp_hung_close')
  if (!db) return t.pass('DATABASE_URL is not set: a hung database is simulated on the server driver only')
  const cleanups: Array<() => unknown> = [() => db.drop()]
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c()
  })
  const p = dbProxy(new URL(db.url))
  await p.listen()
  cleanups.push(() => p.cut())

  const s = await startProcess({ ...process.env, REDIS_URL: '', GRIDPATROL_DATA_DIR: '/nonexistent', ...LOCAL_EPHEMERAL, DATABASE_URL: p.url(), GRIDPATROL_LOG_LEVEL: 'info', GRIDPATROL_SHUTDOWN_GRACE_SECONDS: String(GRACE_MS / 1_000) })
  let exit: Promise<number | null> | undefined = new Promise((resolve) => s.child.once('exit', resolve))
  cleanups.push(() => exit && (s.child.kill('SIGKILL'), exit))
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, silentLog)
  cleanups.push(() => store.close())
  await store.devices.create({ id: 'hung-a', kind: 'patrol', gridId: null, secretHash: await hashSecret('s3cret-hung-a') })

  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${s.ports.mqtt}`, { clientId: 'hung-a', username: 'hung-a', password: 's3cret-hung-a', reconnectPeriod: 0, protocolVersion: 4 })
  device.on('error', () => undefined)
  cleanups.push(() => device.endAsync(true))
  await device.publishAsync(uplinkTopic('hung-a', 'checkin'), checkIn(1), { qos: 1 }) // committed, acked
  await sleep(200) // its presence event committed too

  p.stall()
  let acked2 = false
  device.publish(uplinkTopic('hung-a', 'checkin'), checkIn(2), { qos: 1 }, (err) => void (acked2 = !err))
  const probe = fetch(`http://127.0.0.1:${s.ports.http}/health`).then((r) => r.status, (err: Error) => err.message)
  await sleep(1_000)

  const started = Date.now()
  s.child.kill('SIGTERM')
  const code = await Promise.race([exit, limit(25_000).then(() => 'still running 25 s after SIGTERM')])
  const ms = Date.now() - started
  if (code !== 'still running 25 s after SIGTERM') exit = undefined
  t.equal(code, 0, 'exits with its normal status after one SIGTERM')
  // The grace and 2 s (the watchdog's second, its ping's) before the store is closed under the API, its grace, the broker's, and a little.
  t.ok(ms < 3 * GRACE_MS + 4_000, `within the graces and a little (${ms} ms)`)
  const lines = s.logs.join('')
  t.match(lines, /"msg":"shutdown: the database did not answer within the 500 ms grace: \d+ connection\(s\) closed/, 'the log says the database did not answer')
  t.notMatch(lines, /second signal/)
  t.equal(acked2, false, 'the check-in that waited on the database was not acknowledged')
  t.not(await Promise.race([probe, limit(2_000).then(() => 'no answer')]), 200, 'the health probe did not report ok')

  await p.cut()
  const seqs = (await store.checkIns.list({ from: new Date(T0), to: new Date(T0 + 60_000), deviceId: 'hung-a' })).map((r) => r.seq)
  t.same(seqs, [1], 'the check-in committed before the hang is there; the unacknowledged one is not')
})
