import t from 'tap'
import { authorizePublishTopic, authorizeSubscribeFilter, topicMatches, type Principal } from '../../broker/index.ts'
import { closed, connect, connectDevice, delay, nextMessage, publish, startBroker, subscribe } from './helpers.ts'

const dev: Principal = { kind: 'device', deviceId: 'd1' }
const svc: Principal = { kind: 'service', name: 'mon', rights: { publish: ['gp/v1/+/down/cmd'], subscribe: ['gp/v1/+/up/#', 'ops/#'] } }

t.test('ACL (pure): deny by default', async (t) => {
  t.match(authorizePublishTopic(dev, 'gp/v1/d1/up/checkin'), { allow: true, uplink: { deviceId: 'd1', kind: 'checkin' } })
  t.match(authorizePublishTopic(dev, 'gp/v1/d1/presence'), { allow: true, presence: 'd1' })
  // A decision remembered for d1's topics is never handed to another device.
  const d2: Principal = { kind: 'device', deviceId: 'd2' }
  t.equal(authorizePublishTopic(d2, 'gp/v1/d1/up/checkin').allow, false, "d1's remembered uplink topic, published by d2")
  t.equal(authorizePublishTopic(d2, 'gp/v1/d1/presence').allow, false, "d1's remembered presence topic, published by d2")
  t.match(authorizePublishTopic(dev, 'gp/v1/d1/up/checkin'), { allow: true, uplink: { deviceId: 'd1', kind: 'checkin' } }, 'and d1 again')
  for (const topic of ['gp/v1/d2/up/checkin', 'gp/v1/d1/down/cmd', 'gp/v1/d1/up/nope', 'gp/v1/+/up/checkin', 'gp/v1/d1/up/#', '$SYS/x', 'other', 'gp/v2/d1/up/checkin', '']) {
    t.equal(authorizePublishTopic(dev, topic).allow, false, `device may not publish ${topic}`)
  }
  t.equal(authorizeSubscribeFilter(dev, 'gp/v1/d1/down/cmd').allow, true)
  for (const f of ['gp/v1/d2/down/cmd', 'gp/v1/+/down/cmd', 'gp/v1/d1/down/#', '#', '$share/g/gp/v1/d1/down/cmd', '$SYS/#']) {
    t.equal(authorizeSubscribeFilter(dev, f).allow, false, `device may not subscribe ${f}`)
  }
  t.equal(authorizeSubscribeFilter(svc, 'gp/v1/+/up/checkin').allow, true)
  t.equal(authorizeSubscribeFilter(svc, 'gp/v1/d9/up/#').allow, true)
  t.equal(authorizeSubscribeFilter(svc, 'gp/v1/+/down/cmd').allow, false)
  t.equal(authorizeSubscribeFilter(svc, '#').allow, false)
  t.equal(authorizeSubscribeFilter(svc, '$share/g/ops/x').allow, false, '$share refused clearly')
  t.equal(authorizePublishTopic(svc, 'gp/v1/d1/down/cmd').allow, true)
  t.equal(authorizePublishTopic(svc, 'gp/v1/d1/up/checkin').allow, false)
  t.equal(topicMatches('#', '$SYS/x'), false, '[MQTT-4.7.2-1]')
  t.equal(topicMatches('a/#', 'a'), true, '[MQTT-4.7.1-2]')
  t.equal(topicMatches('a/+', 'a/b/c'), false)
})

t.test('devices publish only under their own id; others keep being served', async (t) => {
  const tb = await startBroker(t)
  const s1 = await tb.device('dev-1')
  const s2 = await tb.device('dev-2')
  const d1 = await connectDevice(t, tb, 'dev-1', s1)
  const d2 = await connectDevice(t, tb, 'dev-2', s2)
  d1.publish('gp/v1/dev-2/up/checkin', 'forged', { qos: 1 })
  t.ok(await closed(d1), 'publishing as another device closes the connection, no ack [MQTT-3.3.5-2]')
  await publish(d2, 'gp/v1/dev-2/up/checkin', 'real')
  t.same(tb.sink.committed.map((m) => m.payload.toString()), ['real'])

  const d1b = await connectDevice(t, tb, 'dev-1', s1)
  t.equal(await subscribe(d1b, 'gp/v1/dev-2/down/cmd'), 128, "another device's commands: SUBACK 0x80")
  t.equal(await subscribe(d1b, 'gp/v1/+/down/cmd'), 128, 'wildcards: SUBACK 0x80')
  t.equal(await subscribe(d1b, '$share/g/gp/v1/dev-1/down/cmd'), 128, '$share: SUBACK 0x80')
  t.equal(await subscribe(d1b, 'gp/v1/dev-1/down/cmd'), 1, 'own commands granted')
  t.ok(d1b.connected, 'refused subscriptions keep the connection')
  d1b.publish('gp/v1/dev-1/up/#', 'x', { qos: 1 })
  t.ok(await closed(d1b), 'wildcard publish closes the connection')
})

t.test("a refused filter in a persistent session never leaks another device's commands", async (t) => {
  const tb = await startBroker(t)
  const s1 = await tb.device('spy')
  const s2 = await tb.device('victim')
  const spy = await connectDevice(t, tb, 'spy', s1, { clean: false })
  t.equal(await subscribe(spy, 'gp/v1/victim/down/cmd'), 128)
  spy.end()
  await closed(spy)
  await tb.broker.publishCommand('victim', Buffer.from('secret-cmd'))
  const spy2 = await connectDevice(t, tb, 'spy', s1, { clean: false })
  await t.rejects(nextMessage(spy2, 400), /no message/, 'nothing delivered at reconnect')
  const victim = await connectDevice(t, tb, 'victim', s2)
  t.ok(victim.connected)
})

t.test('service accounts act within their rights', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.directory.addService({ name: 'monitor', rights: { publish: ['gp/v1/+/down/cmd'], subscribe: ['gp/v1/+/up/#'] } })
  const ds = await tb.device('dev-s')
  const mon = await connect(t, tb.url, { clientId: 'monitor:1', username: 'monitor', password: secret })
  t.equal(await subscribe(mon, 'gp/v1/+/up/#'), 1)
  t.equal(await subscribe(mon, '#'), 128)
  const d = await connectDevice(t, tb, 'dev-s', ds)
  await subscribe(d, 'gp/v1/dev-s/down/cmd')
  const seen = nextMessage(mon)
  await publish(d, 'gp/v1/dev-s/up/telemetry', 't1')
  t.equal((await seen).topic, 'gp/v1/dev-s/up/telemetry', 'uplinks are forwarded to entitled services after the commit')
  const cmd = nextMessage(d)
  await publish(mon, 'gp/v1/dev-s/down/cmd', 'reboot')
  t.equal((await cmd).payload.toString(), 'reboot')
  await delay(10)
})
