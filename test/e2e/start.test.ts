// The main job as a user runs it: `gridpatrol device add`, then `gridpatrol start`
// (one process, embedded database), a real MQTT device publishing at QoS 1, the
// operator's HTTP endpoints, a clean SIGTERM, and the data still there after.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { encodeUplink, uplinkTopic, type Uplink } from '../../firmware-protocol/index.ts'
import { bin, LOCAL_EPHEMERAL, startProcess } from '../helpers/app.ts'

const run = promisify(execFile)

t.test('device add → start → QoS 1 check-in acked → health, metrics → SIGTERM → data kept', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-e2e-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: '',
    REDIS_URL: '',
    GRIDPATROL_DATA_DIR: dataDir,
    ...LOCAL_EPHEMERAL,
    GRIDPATROL_LOG_LEVEL: 'info',
    GRIDPATROL_RETENTION_DAYS: '3',
  }

  const added = await run(process.execPath, [bin, 'device', 'add', 'patrol-e2e', '--vendor', 'acme'], { env })
  const secret = /secret (\S+)/.exec(added.stdout)?.[1]
  t.ok(secret, 'the secret is printed once')
  const listed = await run(process.execPath, [bin, 'device', 'list', '--json'], { env })
  t.notMatch(listed.stdout, secret!, 'the secret is never listed')
  t.match(JSON.parse(listed.stdout), [{ id: 'patrol-e2e', vendor: 'acme', disabled: false }])

  const s = await startProcess(env)
  t.match(s.logs.join(''), /"level":40,.*"retentionDays":3,.*GRIDPATROL_RETENTION_DAYS=3 is shorter than the plans' default upload delay/, 'a retention shorter than late uploads are credited is warned about at start')
  let exited = false
  s.child.on('exit', () => (exited = true))
  t.teardown(() => {
    if (!exited) s.child.kill('SIGKILL')
  })
  t.ok(s.ports.mqtt > 0 && s.ports.http > 0, `listening on ephemeral ports ${JSON.stringify(s.ports)}`)

  // A wrong secret is refused (CONNACK 4), the right one connects.
  const bad = mqtt.connect(`mqtt://127.0.0.1:${s.ports.mqtt}`, { clientId: 'patrol-e2e', username: 'patrol-e2e', password: 'wrong', reconnectPeriod: 0 })
  const badErr = await new Promise<Error>((resolve) => bad.once('error', resolve))
  t.match(badErr.message, /Bad username or password|Not authorized/)
  bad.end(true)

  const device = mqtt.connect(`mqtt://127.0.0.1:${s.ports.mqtt}`, { clientId: 'patrol-e2e', username: 'patrol-e2e', password: secret!, clean: false, reconnectPeriod: 0 })
  await new Promise<void>((resolve, reject) => {
    device.once('connect', () => resolve())
    device.once('error', reject)
  })
  const now = Date.now()
  for (let seq = 1; seq <= 5; seq++) {
    const u: Uplink = { seq, deviceTimeMs: now + seq, kind: 'checkin', checkin: { tagId: `TAG-${seq}`, method: 'nfc' } }
    await device.publishAsync(uplinkTopic('patrol-e2e', 'checkin'), Buffer.from(encodeUplink(u)), { qos: 1 })
  }
  // Garbage is acked too (stored as a reject), and the connection stays up.
  await device.publishAsync(uplinkTopic('patrol-e2e', 'checkin'), Buffer.from('not protobuf at all'), { qos: 1 })
  t.ok(device.connected, 'garbage does not cost the device its connection')
  await device.endAsync()

  const health = await fetch(`http://127.0.0.1:${s.ports.http}/health`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ok', database: { driver: 'pglite' } })
  const metrics = await (await fetch(`http://127.0.0.1:${s.ports.http}/metrics`)).text()
  t.match(metrics, /process_resident_memory_bytes/)
  t.match(metrics, /gridpatrol_/, 'our own metrics are exported')
  t.match(metrics, /# TYPE gridpatrol_time_syncs_total counter\n/, "the command service's too")

  s.child.kill('SIGTERM')
  const code = await new Promise<number | null>((resolve) => (exited ? resolve(0) : s.child.once('exit', resolve)))
  t.equal(code, 0, 'clean exit on SIGTERM')

  // After the process is gone, the same data directory holds what was acked.
  const { openStore } = await import('../../src/store/index.ts')
  const { pino } = await import('pino')
  const store = await openStore({ dataDir, databaseUrl: undefined }, pino({ level: 'silent' }))
  t.teardown(() => store.close())
  t.equal(await store.checkIns.count({ deviceId: 'patrol-e2e' }), 5, 'every acked check-in stored once')
  const rejects = await store.rejects.list({ deviceId: 'patrol-e2e' })
  t.equal(rejects.length, 1)
  t.equal(Buffer.from(rejects[0]!.payload).toString(), 'not protobuf at all', 'the reject keeps the raw bytes')
})
