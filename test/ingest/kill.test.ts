// DESIGN "Nothing lost": a device publishes numbered QoS 1 check-ins while the
// process (broker + ingest + store) is killed with SIGKILL at a random moment
// and restarted. Every check-in whose PUBACK arrived is in the database exactly
// once; after the device re-sends the unacknowledged ones, all are there once.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import t from 'tap'
import { generateSecret, hashSecret } from '../../broker/index.ts'
import { encodeUplink, uplinkTopic } from '../../firmware-protocol/index.ts'
import { openStore } from '../../src/store/index.ts'
import { makeTestDatabase } from '../helpers/db.ts'
import { silentLog } from '../helpers/store.ts'

const CHILD = fileURLToPath(new URL('./fixtures/stack-child.ts', import.meta.url))
const N = 400
const DEVICE = 'kill-dev'

function startChild(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /PORT (\d+)/.exec(out)
      if (m) resolve({ child, port: Number(m[1]) })
    })
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before listening`)))
  })
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())))

/** Publishes the given seqs with up to `window` in flight; records PUBACKs; stops quietly when the connection dies. */
async function publishAll(port: number, secret: string, seqs: number[], acked: Set<number>, window = 16): Promise<void> {
  const client: MqttClient = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: DEVICE, username: DEVICE, password: secret, reconnectPeriod: 0, protocolVersion: 4 })
  client.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('close', () => reject(new Error('no CONNACK')))
  })
  let closed = false
  // mqtt.js keeps an unacknowledged QoS 1 publish pending forever once the
  // connection is gone (no reconnect): race it against the close.
  const lost = new Promise<'lost'>((r) => client.once('close', () => ((closed = true), r('lost'))))
  const queue = [...seqs]
  const worker = async () => {
    while (queue.length > 0 && !closed) {
      const seq = queue.shift() as number
      const payload = Buffer.from(encodeUplink({ kind: 'checkin', seq, deviceTimeMs: 1_767_225_600_000 + seq * 1000, checkin: { tagId: `T${seq % 7}`, method: 'nfc' } }))
      try {
        const r = await Promise.race([client.publishAsync(uplinkTopic(DEVICE, 'checkin'), payload, { qos: 1 }), lost])
        if (r === 'lost') return
        acked.add(seq) // the PUBACK arrived
      } catch {
        return
      }
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  client.end(true)
}

for (const driver of ['embedded', 'server'] as const) {
  t.test(`SIGKILL mid-stream, restart, re-send (${driver})`, async (t) => {
    const db = driver === 'server' ? await makeTestDatabase() : undefined
    if (driver === 'server' && !db) {
      t.pass('DATABASE_URL is not set: server driver not tested')
      return
    }
    const dataDir = await mkdtemp(join(tmpdir(), 'gp-kill-'))
    const secret = generateSecret()
    const env = { GP_DATA_DIR: dataDir, GP_DATABASE_URL: db?.url ?? '', GP_DEVICE_ID: DEVICE, GP_SECRET_HASH: await hashSecret(secret) }
    t.teardown(async () => {
      await rm(dataDir, { recursive: true, force: true })
      await db?.drop()
    })

    const first = await startChild(env)
    t.teardown(() => first.child.kill('SIGKILL'))
    const acked = new Set<number>()
    const all = Array.from({ length: N }, (_, i) => i + 1)
    const sending = publishAll(first.port, secret, all, acked)
    // Kill once some are acked, at a random moment.
    while (acked.size < 20) await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)))
    first.child.kill('SIGKILL')
    await exited(first.child)
    await sending
    const ackedBeforeKill = new Set(acked)
    t.ok(ackedBeforeKill.size > 0 && ackedBeforeKill.size < N, `killed mid-stream after ${ackedBeforeKill.size} PUBACKs`)

    const second = await startChild(env)
    t.teardown(() => second.child.kill('SIGKILL'))
    // Checked through the restarted process's view: its store is the only writer.
    await publishAll(second.port, secret, all.filter((s) => !acked.has(s)), acked)
    t.equal(acked.size, N, 'every check-in acknowledged after the re-send')
    // Re-send some acknowledged ones too (a device that lost the PUBACK): still once.
    await publishAll(second.port, secret, [...ackedBeforeKill].slice(0, 10), acked)
    second.child.kill('SIGTERM')
    await exited(second.child)

    const store = await openStore({ dataDir, databaseUrl: db?.url }, silentLog)
    t.teardown(() => store.close())
    const rows = await store.checkIns.list({ from: new Date(0), to: new Date(2_000_000_000_000), deviceId: DEVICE })
    const seqs = rows.map((r) => r.seq)
    t.equal(new Set(seqs).size, seqs.length, 'no duplicate rows')
    t.same([...seqs].sort((a, b) => a - b), all, 'every check-in exactly once')
    t.ok([...ackedBeforeKill].every((s) => seqs.includes(s)), 'every check-in acknowledged before the kill survived it')
  })
}
