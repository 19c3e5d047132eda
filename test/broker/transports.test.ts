// TLS (with client-certificate CN = device id), WebSocket, Debian's mosquitto clients,
// and the port-in-use message.
import { execFileSync, execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createBroker, createMemoryDirectory } from '../../broker/index.ts'
import { connect, nextMessage, publish, startBroker, subscribe } from './helpers.ts'

function makeCerts(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gp-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=gridpatrol test CA')
  const leaf = (name: string, cn: string) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(join(dir, `${name}.ext`), cn === 'localhost' ? 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' : 'extendedKeyUsage=clientAuth\n')
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`)
  }
  leaf('server', 'localhost')
  leaf('dev', 'dev-tls')
  const f = (n: string) => join(dir, n)
  return { dir, f, read: (n: string) => readFileSync(f(n)) }
}

t.test('TLS: password or client certificate (CN = device id)', async (t) => {
  const c = makeCerts(t)
  const tb = await startBroker(t, { tls: { cert: c.f('server.pem'), key: c.f('server.key'), ca: c.f('ca.pem') }, tlsPort: 0 })
  const secret = await tb.device('dev-tls')
  t.ok(tb.ports.mqtts && tb.ports.mqtts > 0)
  const url = `mqtts://127.0.0.1:${tb.ports.mqtts}`
  const byPassword = await connect(t, url, { ca: c.read('ca.pem'), servername: 'localhost', clientId: 'dev-tls', username: 'dev-tls', password: secret })
  await publish(byPassword, 'gp/v1/dev-tls/up/status', 'tls-pw')
  byPassword.end()
  const byCert = await connect(t, url, { ca: c.read('ca.pem'), servername: 'localhost', clientId: 'dev-tls', cert: c.read('dev.pem'), key: c.read('dev.key') })
  await publish(byCert, 'gp/v1/dev-tls/up/status', 'tls-cert')
  t.same(tb.sink.committed.map((m) => m.payload.toString()), ['tls-pw', 'tls-cert'])
  await t.rejects(connect(t, url, { ca: c.read('ca.pem'), servername: 'localhost', clientId: 'x' }), 'no cert, no credentials: refused')
})

t.test('MQTT over WebSocket', async (t) => {
  const tb = await startBroker(t, { wsPort: 0 })
  const secret = await tb.device('dev-ws')
  const ws = await connect(t, `ws://127.0.0.1:${tb.ports.ws}/mqtt`, { clientId: 'dev-ws', username: 'dev-ws', password: secret })
  t.equal(await subscribe(ws, 'gp/v1/dev-ws/down/cmd'), 1)
  const got = nextMessage(ws)
  await tb.broker.publishCommand('dev-ws', Buffer.from('hi-ws'))
  t.equal((await got).payload.toString(), 'hi-ws')
  await publish(ws, 'gp/v1/dev-ws/up/checkin', 'ws-up')
  t.equal(tb.sink.committed[0]?.payload.toString(), 'ws-up')
})

t.test("Debian's mosquitto_pub and mosquitto_sub", async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-mosq')
  // The command goes out once mosquitto_sub's subscription exists (a clean session: sent before, it is lost).
  const subscribed = new Promise<void>((resolve) => tb.broker.on('downlink-ready', (ev) => ev.deviceId === 'dev-mosq' && resolve()))
  const sub = execFile('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tb.ports.mqtt), '-i', 'dev-mosq', '-u', 'dev-mosq', '-P', secret, '-t', 'gp/v1/dev-mosq/down/cmd', '-q', '1', '-C', '1', '-W', '5'])
  const out = new Promise<string>((resolve) => {
    let s = ''
    sub.stdout?.on('data', (d: Buffer) => (s += d.toString()))
    sub.on('close', () => resolve(s.trim()))
  })
  await subscribed
  await tb.broker.publishCommand('dev-mosq', Buffer.from('from-broker'))
  t.equal(await out, 'from-broker')
  const pub = (args: string[]) =>
    new Promise<number>((resolve) => execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tb.ports.mqtt), '-q', '1', ...args]).on('close', (code) => resolve(code ?? -1)))
  t.equal(await pub(['-i', 'dev-mosq', '-u', 'dev-mosq', '-P', secret, '-t', 'gp/v1/dev-mosq/up/status', '-m', 'from-mosquitto']), 0)
  t.equal(tb.sink.committed[0]?.payload.toString(), 'from-mosquitto')
  t.not(await pub(['-i', 'dev-mosq', '-u', 'dev-mosq', '-P', 'wrong', '-t', 'gp/v1/dev-mosq/up/status', '-m', 'x']), 0, 'bad password refused')
})

t.test('a taken port fails start-up naming the port and the variable', async (t) => {
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const b = createBroker({ host: '127.0.0.1', port: 0, wsPort: port, directory: createMemoryDirectory(), sink: { commit: async () => {} } })
  const err = await b.listen().then(
    () => null,
    (e: Error & { code?: string }) => e,
  )
  t.equal(err?.code, 'GP_BROKER_PORT_IN_USE')
  t.match(err?.message, new RegExp(`port ${port}.*GRIDPATROL_WS_PORT`))
  await b.close()
})
