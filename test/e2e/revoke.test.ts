// `gridpatrol device disable` / `rotate-secret` while the device is connected:
// the running process (src/main.ts, its revocation sweep) disconnects it within
// GRIDPATROL_REVOKE_CHECK_MS, says why in its presence event, and refuses it
// from then on; a device that reconnects with its new secret stays connected,
// whatever the clock of the host that rotated the secret; service accounts too.
// In process on both drivers (the store change made through the store, as the
// CLI does), and as an operator runs it on the server database: `gridpatrol
// start` in one process, the CLI in another.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { generateSecret, hashSecret, type PresenceEvent } from '../../broker/index.ts'
import { connack } from '../broker/connack.ts'
import { bin, LOCAL_EPHEMERAL, startLocal, startProcess } from '../helpers/app.ts'
import { makeTestDatabase, serverUrl } from '../helpers/db.ts'
import { drivers } from '../rules/store/open.ts'

const run = promisify(execFile)

/** An mqtt.js device that does not reconnect by itself; resolves once connected. */
async function device(port: number, id: string, secret: string): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 5000 })
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}

const closed = (c: mqtt.MqttClient, ms = 10_000): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!c.connected) return resolve()
    const timer = setTimeout(() => reject(new Error(`${c.options.clientId} still connected after ${ms} ms`)), ms)
    c.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })

for (const driver of drivers()) {
  t.test(`${driver}: a disabled device is disconnected and refused; a rotated secret ends the old session only`, async (t) => {
    const { running, cleanup } = await startLocal(driver, 'gp_revoke', { GRIDPATROL_REVOKE_CHECK_MS: '100' })
    const clients: mqtt.MqttClient[] = []
    t.teardown(async () => {
      for (const c of clients) c.end(true)
      await cleanup()
    })
    const presence: PresenceEvent[] = []
    running.broker.on('presence', (ev) => presence.push(ev))
    const { store, ports } = running
    const secrets = new Map<string, string>()
    for (const id of ['rv-stays', 'rv-disabled', 'rv-rotated']) {
      secrets.set(id, generateSecret())
      await store.devices.create({ id, kind: 'patrol', secretHash: await hashSecret(secrets.get(id)!) })
    }
    const stays = await device(ports.mqtt, 'rv-stays', secrets.get('rv-stays')!)
    const disabled = await device(ports.mqtt, 'rv-disabled', secrets.get('rv-disabled')!)
    const rotated = await device(ports.mqtt, 'rv-rotated', secrets.get('rv-rotated')!)
    clients.push(stays, disabled, rotated)

    t.ok(await store.devices.setDisabled('rv-disabled', true))
    await closed(disabled)
    t.pass('the disabled device was disconnected')
    t.equal(await connack(ports.mqtt, { clientId: 'rv-disabled', username: 'rv-disabled', password: secrets.get('rv-disabled')! }), 5, 'and is refused: CONNACK 5')

    // The rotation's time is the rotating host's clock (the CLI's), which need not agree with the
    // broker's: here 10 minutes behind, then 10 minutes ahead. Neither may matter.
    const fresh = generateSecret()
    t.ok(await store.devices.rotateSecret('rv-rotated', await hashSecret(fresh), Date.now() - 10 * 60_000))
    await closed(rotated)
    t.pass('the session opened with the old secret was disconnected (rotated by a host whose clock is behind)')
    t.equal(await connack(ports.mqtt, { clientId: 'rv-rotated', username: 'rv-rotated', password: secrets.get('rv-rotated')! }), 4, 'the old secret is refused: CONNACK 4')
    const again = await device(ports.mqtt, 'rv-rotated', fresh)
    clients.push(again)
    const third = generateSecret()
    t.ok(await store.devices.rotateSecret('rv-rotated', await hashSecret(third), Date.now() + 10 * 60_000))
    await closed(again)
    t.pass('rotated again (by a host whose clock is ahead): the second session is disconnected too')
    const kept = await device(ports.mqtt, 'rv-rotated', third)
    clients.push(kept)
    await new Promise((r) => setTimeout(r, 500)) // five sweeps
    t.ok(kept.connected, 'a session opened with the new secret stays, though the rotation is stamped later than its connect')
    t.ok(stays.connected, 'an untouched device stays connected')

    // a service account's sessions end with its rotated secret too
    const svcSecret = generateSecret()
    await store.devices.create({ id: 'rv-svc', kind: 'service', secretHash: await hashSecret(svcSecret) })
    const svc = await device(ports.mqtt, 'rv-svc', svcSecret)
    clients.push(svc)
    await new Promise((r) => setTimeout(r, 300))
    t.ok(svc.connected, 'a service account connects and stays')
    t.ok(await store.devices.rotateSecret('rv-svc', await hashSecret(generateSecret()), Date.now()))
    await closed(svc)
    t.pass('the service session opened with the old secret was disconnected')

    const offline = presence.filter((e) => !e.online).map((e) => `${e.deviceId}:${e.reason}`)
    t.same(offline.sort(), ['rv-disabled:revoked', 'rv-rotated:revoked', 'rv-rotated:revoked'], 'presence says why (stored as device status)')
    t.ok(await store.devices.setDisabled('rv-disabled', false))
    const back = await device(ports.mqtt, 'rv-disabled', secrets.get('rv-disabled')!)
    clients.push(back)
    t.ok(back.connected, 'enabled again: connects')
  })
}

t.test('operator flow on the server database: `gridpatrol device disable` from another process', { skip: serverUrl() ? false : 'needs DATABASE_URL' }, async (t) => {
  const db = await makeTestDatabase('gp_revoke_cli')
  const dataDir = await mkdtemp(join(tmpdir(), 'gp-revoke-cli-'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: db!.url,
    REDIS_URL: '',
    GRIDPATROL_DATA_DIR: dataDir,
    ...LOCAL_EPHEMERAL,
    GRIDPATROL_LOG_LEVEL: 'info',
    GRIDPATROL_REVOKE_CHECK_MS: '200',
  }
  const added = await run(process.execPath, [bin, 'device', 'add', 'rv-cli'], { env })
  const secret = /secret (\S+)/.exec(added.stdout)?.[1]
  t.ok(secret, 'secret printed once')
  const { child, ports, logs } = await startProcess(env)
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    await db!.drop()
    await rm(dataDir, { recursive: true, force: true })
  })
  const c = await device(ports.mqtt, 'rv-cli', secret!)
  t.teardown(() => c.end(true))
  const out = await run(process.execPath, [bin, 'device', 'disable', 'rv-cli'], { env })
  t.match(out.stdout, /device rv-cli disabled/)
  await closed(c)
  t.pass('disconnected by the running process')
  // The log line and the socket's close travel on different channels: wait for the line.
  const why = /"why":"device disabled","msg":"connection revoked"/
  for (const deadline = Date.now() + 10_000; !why.test(logs.join('')) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50))
  t.match(logs.join(''), why, 'the process logs why')
  t.notMatch(logs.join(''), secret!, 'the secret is never logged')
  t.equal(await connack(ports.mqtt, { clientId: 'rv-cli', username: 'rv-cli', password: secret! }), 5, 'refused from then on')
})
