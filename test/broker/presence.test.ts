import { connect as tcpConnect } from 'node:net'
import t from 'tap'
import type { PresenceEvent } from '../../broker/index.ts'
import { connectPacket } from './connack.ts'
import { closed, connect, connectDevice, delay, nextMessage, startBroker, subscribe } from './helpers.ts'

t.test('presence events with reasons, and the retained presence topic', async (t) => {
  const tb = await startBroker(t)
  const events: PresenceEvent[] = []
  tb.broker.on('presence', (e) => events.push(e))
  const s = await tb.device('dev-p')
  const mon = await tb.directory.addService({ name: 'mon', rights: { publish: [], subscribe: ['gp/v1/+/presence'] } })
  const watcher = await connect(t, tb.url, { clientId: 'mon:1', username: 'mon', password: mon })
  await subscribe(watcher, 'gp/v1/+/presence')

  const seen = nextMessage(watcher)
  const d = await connectDevice(t, tb, 'dev-p', s, { will: { topic: 'gp/v1/dev-p/presence', payload: Buffer.from('offline'), qos: 1, retain: true } })
  t.equal((await seen).payload.toString(), 'online')
  const offline = nextMessage(watcher)
  d.end()
  t.equal((await offline).payload.toString(), 'offline', 'clean disconnect: the broker writes offline')

  const onlineAgain = nextMessage(watcher)
  const d2 = await connectDevice(t, tb, 'dev-p', s, { will: { topic: 'gp/v1/dev-p/presence', payload: Buffer.from('offline'), qos: 1, retain: true } })
  t.equal((await onlineAgain).payload.toString(), 'online')
  const willSeen = nextMessage(watcher)
  d2.stream.destroy() // connection lost: the will goes out
  t.equal((await willSeen).payload.toString(), 'offline')

  // Keep-alive timeout: a raw client that goes silent (1 s keep-alive → 1.5 s).
  const raw = tcpConnect(tb.ports.mqtt, '127.0.0.1', () => raw.write(connectPacket({ clientId: 'dev-p', username: 'dev-p', password: s, keepalive: 1 })))
  raw.on('error', () => undefined)
  t.teardown(() => raw.destroy())
  await delay(2000)

  const takeover1 = await connectDevice(t, tb, 'dev-p', s)
  await connectDevice(t, tb, 'dev-p', s)
  t.ok(await closed(takeover1), 'a second connection with the same id takes over')
  await delay(50)

  const reasons = events.map((e) => `${e.online ? 'on' : 'off'}:${e.reason}`)
  t.same(reasons, ['on:connect', 'off:disconnect', 'on:connect', 'off:will', 'on:connect', 'off:keepalive_timeout', 'on:connect', 'off:takeover', 'on:connect'])
  t.ok(events.every((e) => e.deviceId === 'dev-p' && e.at instanceof Date))

  const late = await connect(t, tb.url, { clientId: 'mon', username: 'mon', password: mon })
  const retained = nextMessage(late)
  await subscribe(late, 'gp/v1/dev-p/presence')
  t.match(await retained, { retain: true }, 'presence is retained')
})
