// `gridpatrol ingest --broker URL`: the ingest as a client of this machine's
// Mosquitto, as an operator runs it; check-ins land once, SIGTERM exits cleanly.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { encodeUplink, uplinkTopic } from '../../firmware-protocol/index.ts'
import { runCli } from '../helpers/cli.ts'

const external = process.env['GRIDPATROL_TEST_EXTERNAL_MQTT']
const run = promisify(execFile)
const bin = fileURLToPath(new URL('../../bin/gridpatrol.js', import.meta.url))

t.test('gridpatrol ingest against an external broker', { skip: external ? false : 'GRIDPATROL_TEST_EXTERNAL_MQTT is not set (.ci/run sets it)' }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-cli-ingest-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const env = { ...process.env, DATABASE_URL: '', GRIDPATROL_DATA_DIR: dataDir, GRIDPATROL_LOG_LEVEL: 'info' }
  await run(process.execPath, [bin, 'device', 'add', 'ext-dev-1'], { env })

  const prefix = `gp-test-${randomBytes(4).toString('hex')}/`
  const child = spawn(process.execPath, [bin, 'ingest', '--broker', external!, '--client-id', `ingest-${prefix.slice(0, -1)}`, '--topic-prefix', prefix, '--no-rules'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (out += c.toString()))
  t.teardown(() => child.kill('SIGKILL'))
  const deadline = Date.now() + 30_000
  while (!out.includes('external ingest running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  t.match(out, /external ingest running/, 'running')
  // the embedded database is this process's now: a command is run by it (src/cli/remote.ts)
  const listed = await runCli(['device', 'list', '--json'], { env })
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, /ext-dev-1/, 'a command while the ingest holds the database is run by the ingest')

  const device = await mqtt.connectAsync(external!, { clientId: `dev-${prefix.slice(0, -1)}` })
  const now = Date.now()
  for (let seq = 1; seq <= 3; seq++) {
    const payload = Buffer.from(encodeUplink({ seq, deviceTimeMs: now + seq, kind: 'checkin', checkin: { tagId: `T${seq}`, method: 'qr' } }))
    await device.publishAsync(prefix + uplinkTopic('ext-dev-1', 'checkin'), payload, { qos: 1 })
    if (seq === 3) await device.publishAsync(prefix + uplinkTopic('ext-dev-1', 'checkin'), payload, { qos: 1 }) // a re-send
  }
  await device.endAsync()
  // Wait until the ingest has stored them (its log counts nothing, so poll by stopping).
  await new Promise((r) => setTimeout(r, 1500))
  child.kill('SIGTERM')
  const code = await new Promise<number | null>((r) => child.once('exit', r))
  t.equal(code, 0, 'clean exit on SIGTERM')

  const { openStore } = await import('../../src/store/index.ts')
  const { pino } = await import('pino')
  const store = await openStore({ dataDir, databaseUrl: undefined }, pino({ level: 'silent' }))
  t.teardown(() => store.close())
  t.equal(await store.checkIns.count({ deviceId: 'ext-dev-1' }), 3, 'three check-ins, the re-send deduplicated')
})
