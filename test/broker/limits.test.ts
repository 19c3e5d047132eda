// Misbehaving clients are cut off or slowed down while other devices keep being served.
import { connect as tcpConnect } from 'node:net'
import t from 'tap'
import { connack, connectPacket, remainingLength } from './connack.ts'
import { closed, connectDevice, delay, publish, startBroker } from './helpers.ts'

const rawClosed = (port: number, bytes: Buffer[]) =>
  new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => {
      for (const b of bytes) s.write(b)
    })
    const timer = setTimeout(() => {
      s.destroy()
      resolve(false)
    }, 3000)
    s.on('error', () => undefined)
    s.on('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })

t.test('oversized and malformed packets close only their own connection', async (t) => {
  const tb = await startBroker(t, { limits: { maxPacketBytes: 1024 } })
  const good = await tb.device('dev-ok')
  const big = await tb.device('dev-big')
  const ok = await connectDevice(t, tb, 'dev-ok', good)

  const bigDev = await connectDevice(t, tb, 'dev-big', big)
  bigDev.publish('gp/v1/dev-big/up/batch', Buffer.alloc(4096), { qos: 1 })
  t.ok(await closed(bigDev), 'oversized packet → connection closed')

  // A header announcing 200 MB is refused before any of it is buffered.
  const hello = connectPacket({ clientId: 'dev-big', username: 'dev-big', password: big })
  t.ok(await rawClosed(tb.ports.mqtt, [hello, Buffer.concat([Buffer.from([0x32]), remainingLength(200 * 1024 * 1024)])]), 'huge length header → closed')
  t.ok(await rawClosed(tb.ports.mqtt, [Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x00])]), 'garbage bytes → closed')
  t.ok(await rawClosed(tb.ports.mqtt, [Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61])]), 'PUBLISH before CONNECT → closed [MQTT-3.1.0-1]')
  const twice = await tb.device('dev-twice')
  const hello2 = connectPacket({ clientId: 'dev-twice', username: 'dev-twice', password: twice })
  t.ok(await rawClosed(tb.ports.mqtt, [Buffer.concat([hello2, hello2])]), 'second CONNECT in the same read → closed [MQTT-3.1.0-2]')
  t.ok(await rawClosed(tb.ports.mqtt, [hello2, hello2]), 'second CONNECT in its own write → closed [MQTT-3.1.0-2]')

  await publish(ok, 'gp/v1/dev-ok/up/status', 'fine')
  t.equal(tb.sink.committed.length, 1, 'the well-behaved device was served throughout')
  const m = await tb.broker.registry.metrics()
  t.match(m, /reason="packet_too_large"\} [1-9]/)
  t.match(m, /reason="second_connect"\} [1-9]/)
})

t.test('a second CONNECT closes the connection even while the first is being authenticated', async (t) => {
  const tb = await startBroker(t, { allowAnonymous: true })
  // 50 connections at once, each sending two CONNECTs in one segment (lab clients:
  // nothing slows the handshake down, the closest race with the second packet).
  const hello = (i: number) => connectPacket({ clientId: `lab-${i}` })
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => rawClosed(tb.ports.mqtt, [Buffer.concat([hello(i), hello(i)])])))
  t.equal(results.filter(Boolean).length, 50, 'every connection closed')
})

t.test('a device flooding at 10x its rate is slowed, others are not', async (t) => {
  const tb = await startBroker(t, { limits: { publishRate: 50, publishBurst: 10 } })
  const fs = await tb.device('dev-flood')
  const qs = await tb.device('dev-quiet')
  const flood = await connectDevice(t, tb, 'dev-flood', fs)
  const quiet = await connectDevice(t, tb, 'dev-quiet', qs)
  const started = Date.now()
  // 10x the allowed rate: 60 messages at once against 50/s with a burst of 10.
  const all = Promise.all(Array.from({ length: 60 }, (_, i) => publish(flood, 'gp/v1/dev-flood/up/telemetry', `f${i}`)))
  await new Promise((r) => setTimeout(r, 100))
  const q0 = Date.now()
  await publish(quiet, 'gp/v1/dev-quiet/up/telemetry', 'q')
  t.ok(Date.now() - q0 < 300, 'the quiet device is acked promptly')
  await all
  const took = Date.now() - started
  t.ok(took >= 900, `flood paced to the rate (${took} ms for 60 at 50/s, burst 10)`)
  const flooded = tb.sink.committed.filter((m) => m.deviceId === 'dev-flood').map((m) => m.payload.toString())
  t.same(flooded, Array.from({ length: 60 }, (_, i) => `f${i}`), 'nothing dropped, in order')
  t.match(await tb.broker.registry.metrics(), /gridpatrol_broker_throttled_total [1-9]/)
})

t.test('reconnect flapping is slowed down', async (t) => {
  const tb = await startBroker(t, { limits: { flapLimit: 3 } })
  const s = await tb.device('dev-flap')
  const times: number[] = []
  for (let i = 0; i < 6; i++) {
    const t0 = Date.now()
    t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-flap', username: 'dev-flap', password: s }), 0)
    times.push(Date.now() - t0)
  }
  t.ok((times[5] ?? 0) >= 900, `attempts beyond the limit wait longer and longer (${times.join(', ')} ms)`)
  t.match(await tb.broker.registry.metrics(), /gridpatrol_broker_flap_delays_total 3/)
})

t.test('keep-alive bounds', async (t) => {
  const tb = await startBroker(t, { limits: { keepaliveMax: 60 } })
  const s = await tb.device('dev-ka')
  // MQTT 3.1.1 has no return code for it: closed without CONNACK [MQTT-3.2.2-6] (aedes answers 6, reserved).
  await t.rejects(connack(tb.ports.mqtt, { clientId: 'dev-ka', username: 'dev-ka', password: s, keepalive: 61 }), /closed without CONNACK/, 'above the maximum: refused')
  await t.rejects(connack(tb.ports.mqtt, { clientId: 'dev-ka', username: 'dev-ka', password: s, keepalive: 0 }), /closed without CONNACK/, 'no keep-alive: refused')
  t.match(await tb.broker.registry.metrics(), /gridpatrol_broker_refusals_total\{stage="connect",reason="keepalive_out_of_bounds"\} 2/)
  t.equal(await connack(tb.ports.mqtt, { clientId: 'dev-ka', username: 'dev-ka', password: s, keepalive: 60 }), 0)
})

t.test('flap tracker: one id over the limit is slowed; 50,000 distinct ids are not', async (t) => {
  const { FlapTracker } = await import('../../broker/limits.ts')
  const f = new FlapTracker(3, 60_000)
  const delays = [0, 1, 2, 3, 4, 5].map((k) => f.attempt('flappy', 1_000 + k))
  t.same(delays, [0, 0, 0, 250, 500, 1000], 'the 4th connect in the window is delayed, doubling after')
  t.equal(f.attempt('flappy', 1_000 + 61_000 + 60_000), 0, 'attempts expire with the window')
  const g = new FlapTracker(10, 60_000)
  let slowed = 0
  for (let i = 0; i < 50_000; i++) if (g.attempt(`device-${i}`, 5_000 + i) > 0) slowed++
  t.equal(slowed, 0, 'well-behaved clients sharing counter slots are never slowed')
})

t.test('publishers are held before their PUBACK while the routing backlog is over its mark', async (t) => {
  const { RoutingGate } = await import('../../broker/routing-guard.ts')
  let backlog = { messages: 5, bytes: 10 }
  const gate = new RoutingGate(() => backlog, () => ({ messages: 3, bytes: 100 }), () => false)
  t.equal(gate.open, false)
  let released = false
  const waiting = gate.wait().then(() => (released = true))
  await delay(20)
  t.equal(released, false, 'held while the backlog is over the mark')
  backlog = { messages: 3, bytes: 10 }
  await waiting
  t.equal(released, true, 'released once it is back at the mark')
  backlog = { messages: 1, bytes: 101 }
  t.equal(gate.open, false, 'a few large messages over the byte mark hold publishers too')

  // End to end: a mark below any backlog holds every publish; no PUBACK, nothing committed.
  const tb = await startBroker(t, { limits: { routingHighWater: -1 } })
  const s = await tb.device('dev-held')
  const d = await connectDevice(t, tb, 'dev-held', s)
  let acked = false
  d.publish('gp/v1/dev-held/up/status', 'x', { qos: 1 }, () => (acked = true))
  await delay(300)
  t.equal(acked, false, 'no PUBACK while held')
  t.equal(tb.sink.committed.length, 0, 'not committed either')
  t.match(await tb.broker.registry.metrics(), /gridpatrol_broker_routing_holds_total [1-9]/)
})

t.test("the router's backlog is counted in messages and payload bytes", async (t) => {
  const { Aedes } = await import('aedes')
  const { guardRouting } = await import('../../broker/routing-guard.ts')
  const aedes = await Aedes.createBroker({ concurrency: 2 })
  t.teardown(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
  type Mq = { on(topic: string, fn: (m: unknown, cb: () => void) => void): void; emit(packet: object, cb: () => void): void }
  const mq = (aedes as unknown as { mq: Mq }).mq
  const backlog = guardRouting(mq)
  const held: Array<() => void> = []
  mq.on('gp/v1/+/up/telemetry', (_m, cb) => held.push(cb))
  const topic = 'gp/v1/dev-1/up/telemetry'
  for (let i = 0; i < 12; i++) mq.emit({ cmd: 'publish', topic, payload: Buffer.alloc(1000), qos: 1 }, () => undefined)
  // Two in flight (concurrency 2), ten queued.
  t.same(backlog(), { messages: 10, bytes: 10 * (1000 + topic.length) })
  while (held.length > 0) {
    held.shift()!()
    await delay(1)
  }
  t.same(backlog(), { messages: 0, bytes: 0 }, 'drained: nothing counted')
})
