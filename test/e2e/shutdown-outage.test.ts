// Shutdown while the database is unreachable (src/main.ts close(), as on SIGTERM):
// devices keep publishing into an outage — one device's messages wait in the
// ingest's batcher (its retry loop), another's in the broker's (its first
// message needs a device look-up that fails), a dock's frames in the serial
// gateway's — and the process is stopped. The stop is bounded by the fronts' grace
// (GRIDPATROL_SHUTDOWN_GRACE_SECONDS, short here), nothing of the outage is
// acknowledged, one warning per front counts what was left, and nothing retries or
// logs once close() has returned. Restarted, the devices re-send and every check-in
// is stored once.
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import mqtt, { type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import t, { type Test } from 'tap'
import { generateSecret, hashSecret } from '../../broker/index.ts'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { connectExternal, createIngest } from '../../ingest/index.ts'
import { openSerialDock } from '../../simulators/serial-dock.ts'
import { loadConfig } from '../../src/config/index.ts'
import { start } from '../../src/main.ts'
import { openStore } from '../../src/store/index.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { dbProxy } from '../helpers/db-proxy.ts'
import { LOCAL_EPHEMERAL } from '../helpers/app.ts'
import { ptyPair } from '../helpers/pty.ts'
import { silentLog } from '../helpers/store.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** A race's bound: unref'd, it does not hold the test process open once the race is won (a hang still fails). */
const limit = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())
/** The shutdown grace of the processes under test (GRIDPATROL_SHUTDOWN_GRACE_SECONDS; 5 s by default). */
const GRACE_MS = 500

/**
 * A throwaway database behind a proxy (cut() is the outage); `cleanups` run last first at
 * teardown, whatever order tap runs teardowns in; unhandled rejections are collected.
 */
async function outageSetup(t: Test, name: string) {
  const db = await makeTestDatabase(name)
  if (!db) return undefined
  const p = dbProxy(new URL(db.url))
  await p.listen()
  const viaProxy = new URL(p.url())
  const cleanups: Array<() => unknown> = [() => db.drop(), () => p.cut()]
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c()
  })
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown) => void unhandled.push(err)
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => void process.off('unhandledRejection', onUnhandled))
  return { db, p, viaProxy, cleanups, unhandled }
}

interface Line {
  level: number
  msg: string
  component?: string
  deviceId?: string
  err?: unknown
  unacknowledged?: number
  notCommitted?: number
  at: number
}

/** A logger at debug that keeps every line (parsed) with the time it was written. */
function capture() {
  const lines: Line[] = []
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push({ ...(JSON.parse(l) as Omit<Line, 'at'>), at: Date.now() })
        cb()
      },
    }),
  )
  return { log, lines }
}

function connect(cleanups: Array<() => unknown>, port: number, id: string, secret: string): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, protocolVersion: 4 })
  c.on('error', () => undefined)
  cleanups.push(() => new Promise<void>((r) => c.end(true, {}, () => r())))
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c))
    c.once('close', () => reject(new Error(`${id}: closed before CONNACK`)))
  })
}

const T0 = Date.now() - 3_600_000
const checkIn = (seq: number): Uplink => ({ kind: 'checkin', seq, deviceTimeMs: T0 + seq * 1000, checkin: { tagId: 'T1', method: 'nfc' } })
const payload = (seq: number) => Buffer.from(encodeUplink(checkIn(seq)))

t.test('stopped during a database outage: bounded, nothing acked uncommitted, one count logged, nothing after close, re-sent once', async (t) => {
  const o = await outageSetup(t, 'gp_shutdown')
  if (!o) return t.pass('DATABASE_URL is not set: a database outage is simulated on the server driver only')
  const { db, p, viaProxy, cleanups, unhandled } = o

  const [dockSide, gatewaySide] = await ptyPair(t)
  const dock = await openSerialDock({ path: dockSide })
  cleanups.push(() => dock.close())
  const env = { GRIDPATROL_DATA_DIR: '/nonexistent', ...LOCAL_EPHEMERAL, GRIDPATROL_SERIAL_PORTS: `${gatewaySide}@115200`, GRIDPATROL_SHUTDOWN_GRACE_SECONDS: String(GRACE_MS / 1_000) }

  const { log, lines } = capture()
  const config = loadConfig({ ...env, DATABASE_URL: viaProxy.toString() })
  const running = await start(config, log, { rules: false })
  let stopped = false
  cleanups.push(async () => {
    if (!stopped) await Promise.race([running.close(), limit(1000)]) // a close that hangs has failed the test already
  })
  const secrets = new Map<string, string>()
  for (const id of ['shut-a', 'shut-b']) {
    secrets.set(id, generateSecret())
    await running.store.devices.create({ id, kind: 'patrol', gridId: null, secretHash: await hashSecret(secrets.get(id)!) })
  }
  const a = await connect(cleanups, running.ports.mqtt, 'shut-a', secrets.get('shut-a')!)
  const b = await connect(cleanups, running.ports.mqtt, 'shut-b', secrets.get('shut-b')!)
  await a.publishAsync(uplinkTopic('shut-a', 'checkin'), payload(1), { qos: 1 }) // committed and acked; shut-a's look-up cached
  await sleep(200) // the connect presence events committed too

  await p.cut()
  const cutAt = Date.now()
  const acked: string[] = []
  const send = (c: MqttClient, id: string, seq: number) => c.publish(uplinkTopic(id, 'checkin'), payload(seq), { qos: 1 }, (err) => void (err ? undefined : acked.push(`${id}#${seq}`)))
  for (const seq of [2, 3, 4]) send(a, 'shut-a', seq) // to the batcher, which retries the write
  for (const seq of [1, 2]) send(b, 'shut-b', seq) // shut-b's look-up fails: the broker retries the commit
  await dock.upload('shut-a', [5, 6, 7].map(checkIn)) // the first frame to the batcher, the others wait their turn
  await sleep(1500)
  t.same(acked, [], 'nothing acknowledged while the database is unreachable')
  t.ok(
    lines.some((l) => /uplink commit failed; not acked, retrying/.test(l.msg) && l.deviceId === 'shut-b'),
    "shut-b's messages are in the broker's retry loop (its device look-up failed)",
  )
  t.ok(
    lines.some((l) => /database unavailable: commit retried/.test(l.msg)),
    "shut-a's are in the batcher's",
  )

  const closeStarted = Date.now()
  const outcome = await Promise.race([running.close().then(() => 'closed'), limit(20_000).then(() => 'still closing after 20 s')])
  const closedAt = Date.now()
  stopped = outcome === 'closed'
  t.equal(outcome, 'closed', 'close() returns although the database is still down')
  t.ok(closedAt - closeStarted < GRACE_MS + 4_000, `within the grace and a little (${closedAt - closeStarted} ms)`)
  t.same(acked, [], 'nothing acknowledged that was not committed')

  const counted = lines.filter((l) => l.level >= 40 && /left unacknowledged/.test(l.msg))
  t.equal(counted.length, 1, 'one warning counts what was left unacknowledged')
  t.match(counted[0], { component: 'broker', unacknowledged: 5, msg: /shutdown: 5 device message\(s\) left unacknowledged.*re-send/ })
  const serial = lines.filter((l) => l.level >= 40 && /serial frame\(s\)/.test(l.msg))
  t.equal(serial.length, 1, 'one warning for the serial line')
  t.match(serial[0], { notCommitted: 3, msg: /shutdown: 3 serial frame\(s\) received on .* not committed.*dock them again/ })
  t.same(
    lines.filter((l) => l.at >= closeStarted && /uplink commit failed; not acked, retrying|presence event not stored/.test(l.msg) && l.level >= 40),
    [],
    'no retry announced, and no line per message or device, once the stop began',
  )
  t.match(
    lines.find((l) => l.component === 'ingest' && /^closed with/.test(l.msg)),
    { msg: /closed with 4 message\(s\) and 2 presence event\(s\) not committed/ },
    "the ingest's own count (its queue: shut-a's three check-ins and first frame, both devices' offline events)",
  )

  // Longer than the backoff any retry can be in: a retry still running would log or fail by now.
  // The broker's, the batcher's and the serial line's double from 100 ms up to 5 s, so one asleep
  // when close() returned sleeps no longer than the outage had lasted then (and 100 ms).
  await sleep(Math.min(5_500, closedAt - cutAt + 1_000))
  t.same(
    lines.filter((l) => l.at > closedAt).map((l) => `${l.component ?? ''}: ${l.msg}`),
    [],
    'nothing logged after close(): no retry outlived it, no use of the closed store',
  )
  t.same(unhandled, [], 'no unhandled rejection')

  // Back up, restarted: the devices re-send what was not acknowledged; each check-in once.
  const again = await start(loadConfig({ ...env, DATABASE_URL: db.url }), silentLog, { rules: false })
  cleanups.push(() => again.close())
  const a2 = await connect(cleanups, again.ports.mqtt, 'shut-a', secrets.get('shut-a')!)
  const b2 = await connect(cleanups, again.ports.mqtt, 'shut-b', secrets.get('shut-b')!)
  for (const seq of [1, 2, 3, 4]) await a2.publishAsync(uplinkTopic('shut-a', 'checkin'), payload(seq), { qos: 1 })
  for (const seq of [1, 2]) await b2.publishAsync(uplinkTopic('shut-b', 'checkin'), payload(seq), { qos: 1 })
  await dock.upload('shut-a', [5, 6, 7].map(checkIn)) // docked again
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, silentLog)
  cleanups.push(() => store.close())
  const seqs = async (deviceId: string) => (await store.checkIns.list({ from: new Date(T0), to: new Date(T0 + 60_000), deviceId })).map((r) => r.seq)
  for (const deadline = Date.now() + 10_000; (await seqs('shut-a')).length < 7 && Date.now() < deadline; ) await sleep(50)
  t.same(await seqs('shut-a'), [1, 2, 3, 4, 5, 6, 7], "shut-a's check-ins once each (seq 1 was committed before, and re-sent)")
  t.same(await seqs('shut-b'), [1, 2])
})

const MQTT_URL = process.env['GRIDPATROL_TEST_EXTERNAL_MQTT']

t.test('external-broker ingest stopped during a database outage: the same, Mosquitto redelivers', { skip: MQTT_URL ? false : 'GRIDPATROL_TEST_EXTERNAL_MQTT is not set' }, async (t) => {
  const o = await outageSetup(t, 'gp_shutdown_ext')
  if (!o) return t.pass('DATABASE_URL is not set: a database outage is simulated on the server driver only')
  const { db, p, viaProxy, cleanups, unhandled } = o

  // As `gridpatrol ingest --broker` runs it (src/cli/commands/ingest.ts): store, ingest, external client; closed in that order reversed.
  const { log, lines } = capture()
  const run = randomBytes(4).toString('hex')
  const prefix = `gptest-${run}/`
  const ingestId = `gp-ingest-${run}`
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: viaProxy.toString(), shutdownGraceMs: GRACE_MS }, log)
  await store.migrate()
  for (const id of ['ext-a', 'ext-b']) await store.devices.create({ id, kind: 'patrol', gridId: null, secretHash: await hashSecret('unused: Mosquitto authenticates') })
  // Retries back off to 1 s at most (5 s by default): the wait for one outliving the close below is as short.
  const retry = { initialMs: 100, maxMs: 1_000 }
  const ingest = createIngest({ store, log, registry: new Registry(), options: { retry, closeTimeoutMs: GRACE_MS } })
  const external = await connectExternal(ingest, { url: MQTT_URL!, clientId: ingestId, topicPrefix: prefix, log, retry, closeTimeoutMs: GRACE_MS })
  let stopped = false
  cleanups.push(async () => {
    if (!stopped) await Promise.race([(async () => (await external.close(), await ingest.close(), await store.close()))(), limit(1000)])
  })

  const dev = await mqtt.connectAsync(MQTT_URL!, { clientId: `dev-${run}`, reconnectPeriod: 0, protocolVersion: 4 })
  cleanups.push(() => dev.endAsync(true))
  const topic = (id: string) => prefix + uplinkTopic(id, 'checkin')
  await dev.publishAsync(topic('ext-a'), payload(1), { qos: 1 })
  for (let i = 0; i < 100 && (await store.checkIns.count({ deviceId: 'ext-a' })) < 1; i++) await sleep(20) // committed; ext-a's look-up cached

  await p.cut()
  for (const seq of [2, 3, 4]) await dev.publishAsync(topic('ext-a'), payload(seq), { qos: 1 }) // to the batcher
  for (const seq of [1, 2]) await dev.publishAsync(topic('ext-b'), payload(seq), { qos: 1 }) // look-up fails: external.ts retries
  await sleep(1500)
  t.ok(lines.some((l) => /commit failed: PUBACK withheld, retrying/.test(l.msg)), "ext-b's messages are in the external client's retry loop")
  t.ok(lines.some((l) => /database unavailable: commit retried/.test(l.msg)), "ext-a's are in the batcher's")

  const closeStarted = Date.now()
  const outcome = await Promise.race([(async () => (await external.close(), await ingest.close(), await store.close(), 'closed'))(), limit(20_000).then(() => 'still closing after 20 s')])
  const closedAt = Date.now()
  stopped = outcome === 'closed'
  t.equal(outcome, 'closed', 'closed although the database is still down')
  t.ok(closedAt - closeStarted < GRACE_MS + 4_000, `within the grace and a little (${closedAt - closeStarted} ms)`)
  const counted = lines.filter((l) => l.level >= 40 && /left unacknowledged/.test(l.msg))
  t.equal(counted.length, 1, 'one warning counts what was left unacknowledged')
  t.match(counted[0], { component: 'ingest-external', unacknowledged: 5, msg: /shutdown: 5 message\(s\) left unacknowledged.*redelivers/ })
  t.same(
    lines.filter((l) => l.at >= closeStarted && l.level >= 40 && /retrying|not committed while closing/.test(l.msg)),
    [],
    'no retry announced, and no line per message, once the stop began',
  )
  await sleep(retry.maxMs + 500) // longer than the longest backoff
  t.same(
    lines.filter((l) => l.at > closedAt).map((l) => `${l.component ?? ''}: ${l.msg}`),
    [],
    'nothing logged after the close: no retry outlived it, no use of the closed store',
  )
  t.same(unhandled, [], 'no unhandled rejection')

  // Back up: the same persistent session is redelivered what was not acknowledged; each check-in once.
  const store2 = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, silentLog)
  const ingest2 = createIngest({ store: store2, log: silentLog, registry: new Registry() })
  const external2 = await connectExternal(ingest2, { url: MQTT_URL!, clientId: ingestId, topicPrefix: prefix, log: silentLog })
  cleanups.push(async () => (await external2.close(), await ingest2.close(), await store2.close()))
  const seqs = async (deviceId: string) => (await store2.checkIns.list({ from: new Date(T0), to: new Date(T0 + 60_000), deviceId })).map((r) => r.seq)
  for (let i = 0; i < 250 && ((await seqs('ext-a')).length < 4 || (await seqs('ext-b')).length < 2); i++) await sleep(20)
  await sleep(300) // a late duplicate would show here
  t.same(await seqs('ext-a'), [1, 2, 3, 4], 'redelivered, each once')
  t.same(await seqs('ext-b'), [1, 2])
})
