import t from 'tap'
import { connack } from './connack.ts'
import { closed, connect, connectDevice, publish, startBroker, subscribe } from './helpers.ts'
import { hashSecret, verifySecret, generateSecret } from '../../broker/index.ts'

t.test('secrets are scrypt hashes checked in constant time', async (t) => {
  const secret = generateSecret()
  const h = await hashSecret(secret)
  t.match(h, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  t.notOk(h.includes(secret))
  t.equal(await verifySecret(secret, h), true)
  t.equal(await verifySecret(secret + 'x', h), false)
  await t.rejects(verifySecret(secret, 'md5$abc'), { code: 'GP_BROKER_BAD_SECRET_HASH' })
})

t.test('devices connect with their own credentials; everyone else gets the right CONNACK', async (t) => {
  const tb = await startBroker(t)
  const good = await tb.device('dev-good')
  const off = await tb.device('dev-off')
  tb.directory.disableDevice('dev-off')
  const ok = await connectDevice(t, tb, 'dev-good', good)
  t.ok(ok.connected, 'registered device connects')

  t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-good', username: 'dev-good', password: 'wrong' }), 4, 'wrong password → 4')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'nobody', username: 'nobody', password: 'x' }), 4, 'unknown device → 4')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-off', username: 'dev-off', password: off }), 5, 'disabled device → 5')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'anon' }), 5, 'anonymous without lab mode → 5')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'other-id', username: 'dev-good', password: good }), 2, 'client id must be the device id → 2')
  // [MQTT-3.1.3-8] empty client id needs a clean session; aedes alone accepts it.
  t.equal(await connack(tb.ports.mqtt, { clientId: '', clean: false, username: 'dev-good', password: good }), 2, 'empty client id + persistent session → 2')
  await t.rejects(connack(tb.ports.mqtt, { clientId: 'x', keepalive: 0, username: 'dev-good', password: good }), /closed without CONNACK/, 'keep-alive 0 is outside the bounds: no CONNACK [MQTT-3.2.2-6]')

  // The good device was served all along.
  await publish(ok, 'gp/v1/dev-good/up/status', 'still here')
  t.equal(tb.sink.committed.length, 1)

  const text = await tb.broker.registry.metrics()
  t.match(text, /gridpatrol_broker_refusals_total\{stage="connect",reason="bad_credentials"\} 2/)
  t.match(text, /reason="device_disabled"\} 1/)
})

t.test('MQTT 5 clients are refused cleanly (aedes 1.x speaks 3.1.1)', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-v5')
  await t.rejects(connect(t, tb.url, { protocolVersion: 5, clientId: 'dev-v5', username: 'dev-v5', password: secret }))
})

t.test('lab mode: anonymous clients live outside the device namespace', async (t) => {
  const tb = await startBroker(t, { allowAnonymous: true })
  const secret = await tb.device('dev-lab')
  const dev = await connectDevice(t, tb, 'dev-lab', secret)
  const a = await connect(t, tb.url, { clientId: 'lab-tool' })
  const b = await connect(t, tb.url, { clientId: 'lab-tool-2' })
  t.equal(await subscribe(b, '#'), 1)
  const got: string[] = []
  b.on('message', (topic) => got.push(topic))
  await publish(a, 'lab/hello', 'hi')
  await publish(dev, 'gp/v1/dev-lab/up/status', 'private')
  await new Promise((r) => setTimeout(r, 200))
  t.same(got, ['lab/hello'], '# from an anonymous client never sees device traffic')
  t.equal(await subscribe(b, 'gp/v1/dev-lab/down/cmd'), 128, 'device topics refused to anonymous subscribers')
  t.ok(await closed(a, 100).then((c) => !c), 'anonymous publisher still connected')
  a.publish('gp/v1/dev-lab/up/status', 'forged', { qos: 1 })
  t.ok(await closed(a), 'anonymous publish into the device namespace closes the connection [MQTT-3.3.5-2]')
  t.equal(tb.sink.committed.length, 1, 'only the device uplink was committed')
})

t.test('service client ids carry the service name; no one takes over another session', async (t) => {
  const tb = await startBroker(t, { allowAnonymous: true })
  const ingest = await tb.directory.addService({ name: 'ingest', rights: { publish: [], subscribe: ['gp/v1/+/up/#'] } })
  const ops = await tb.directory.addService({ name: 'ops', rights: { publish: ['gp/v1/+/down/cmd'], subscribe: [] } })
  await tb.device('dev-own')
  const svc = (clientId: string, username: string, password: string) => connack(tb.ports.mqtt, { clientId, username, password })
  t.equal(await svc('ingest', 'ingest', ingest), 0, '<name> accepted')
  t.equal(await svc('ingest:worker-2', 'ingest', ingest), 0, '<name>:<suffix> accepted')
  t.equal(await svc('ingest', 'ops', ops), 2, "another service's id → 2")
  t.equal(await svc('ingest:worker-2', 'ops', ops), 2, "another service's id with a suffix → 2")
  t.equal(await svc('opsx', 'ops', ops), 2, 'a longer name is not the name → 2')
  t.equal(await svc('dev-own', 'ops', ops), 2, "a device's id → 2")

  // A live service session is not handed to another service.
  const live = await connect(t, tb.url, { clientId: 'ingest:1', username: 'ingest', password: ingest })
  t.equal(await svc('ingest:1', 'ops', ops), 2)
  t.ok(live.connected, 'the service keeps its session')
  t.match(await tb.broker.registry.metrics(), /reason="client_id_not_service_name"\} 5/)
})

t.test('lab mode: anonymous client ids never collide with device ids or service names', async (t) => {
  const tb = await startBroker(t, { allowAnonymous: true })
  const secret = await tb.device('dev-lab2')
  await tb.directory.addService({ name: 'ingest', rights: { publish: [], subscribe: [] } })
  const dev = await connectDevice(t, tb, 'dev-lab2', secret, { clean: false })
  t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-lab2' }), 2, "a device's id (device online) → 2")
  t.ok(dev.connected, 'the device keeps its session')
  dev.end()
  await closed(dev)
  t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-lab2', clean: false }), 2, "a device's id (device offline, persistent session) → 2")
  t.equal(await connack(tb.ports.mqtt, { clientId: 'ingest' }), 2, 'a service name → 2')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'ingest:1' }), 2, '<service>:<suffix> → 2')
  t.equal(await connack(tb.ports.mqtt, { clientId: 'lab-tool-9' }), 0, 'any other id is fine')
  t.match(await tb.broker.registry.metrics(), /reason="client_id_reserved"\} 4/)
})

t.test('no copy of a device secret stays with the connection once authenticated', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-mem')
  const seen: Buffer[] = []
  const directory = tb.directory
  const authenticate = directory.authenticate.bind(directory)
  directory.authenticate = async (creds) => {
    if (creds.password) seen.push(creds.password)
    return authenticate(creds)
  }
  await connectDevice(t, tb, 'dev-mem', secret)
  const client = (tb.broker.aedes as unknown as { clients: Record<string, { _parser: { settings: Record<string, unknown>; _list: object } }> }).clients['dev-mem']
  t.ok(client, 'connected')
  t.equal(client?._parser.settings.password, undefined, "mqtt-packet's parser no longer holds the CONNECT packet's password")
  t.equal(client?._parser.settings.protocolVersion, 4, 'it keeps what it reads later')
  t.equal(typeof (client?._parser._list as { on?: unknown }).on, 'undefined', "the parser buffers in a plain BufferList, not a stream per connection")
  await publish(await connectDevice(t, tb, 'dev-mem', secret), 'gp/v1/dev-mem/up/status', Buffer.alloc(70_000, 1))
  t.equal(tb.sink.committed.at(-1)?.payload.length, 70_000, 'a packet spanning many socket reads still parses')
  t.equal(seen.length, 2)
  t.ok(seen.every((p) => p.every((b) => b === 0)), 'the password buffers handed to the directory are zeroed after its answer')
})
