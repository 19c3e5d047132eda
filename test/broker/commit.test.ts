// DESIGN: ack after commit — the PUBACK follows the sink's commit, in order.
import t from 'tap'
import { closed, connectDevice, delay, nextMessage, publish, startBroker, subscribe } from './helpers.ts'

t.test('the PUBACK follows the commit, and acks keep arrival order', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-a')
  const dev = await connectDevice(t, tb, 'dev-a', secret)
  tb.sink.hold = 150
  const acked: number[] = []
  const committedAtAck: boolean[] = []
  await Promise.all(
    [0, 1, 2].map((i) =>
      publish(dev, 'gp/v1/dev-a/up/checkin', `m${i}`).then(() => {
        acked.push(i)
        // Commits of one device run concurrently (shared group commits); only the acks are ordered.
        committedAtAck.push(tb.sink.committed.some((m) => m.payload.toString() === `m${i}`))
      }),
    ),
  )
  t.same(acked, [0, 1, 2], 'acks in arrival order')
  t.same(committedAtAck, [true, true, true], 'each ack came after its own commit')
  const m = tb.sink.committed[0]
  t.equal(m?.deviceId, 'dev-a')
  t.equal(m?.kind, 'checkin')
  t.equal(m?.qos, 1)
  t.equal(m?.clientId, 'dev-a')
  t.equal(m?.payload.toString(), 'm0')
  const metrics = await tb.broker.registry.metrics()
  t.match(metrics, /gridpatrol_broker_hook_seconds_count\{hook="commit"\} 3\n/, 'three commits timed')
  t.match(metrics, /gridpatrol_broker_hook_seconds_bucket\{le="0\.1",hook="commit"\} 0\n/, 'each held 150 ms: none under 0.1 s')
  t.match(metrics, /gridpatrol_broker_hook_seconds_bucket\{le="0\.25",hook="commit"\} [1-3]\n/)
})

t.test('a failing sink is retried and nothing is acked before it commits', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-b')
  const dev = await connectDevice(t, tb, 'dev-b', secret)
  tb.sink.failures = 3
  const started = Date.now()
  await publish(dev, 'gp/v1/dev-b/up/alarm', 'sos')
  t.equal(tb.sink.attempts, 4, 'three failures, then the commit')
  t.equal(tb.sink.committed.length, 1)
  t.ok(Date.now() - started >= 20 + 40 + 80, 'backoff between attempts')
  t.match(await tb.broker.registry.metrics(), /gridpatrol_broker_sink_failures_total 3/)
})

t.test('a device that leaves while its commit keeps failing gets no ack', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-c')
  const dev = await connectDevice(t, tb, 'dev-c', secret)
  tb.sink.failures = 1_000_000
  let acked = false
  dev.publish('gp/v1/dev-c/up/checkin', 'x', { qos: 1 }, (err) => {
    if (!err) acked = true
  })
  await delay(150)
  dev.end(true)
  await closed(dev)
  await delay(150)
  t.equal(acked, false, 'no PUBACK')
  t.equal(tb.sink.committed.length, 0)
})

t.test('commands reach the device on QoS 1, and wait for a persistent session', async (t) => {
  const tb = await startBroker(t)
  const secret = await tb.device('dev-d')
  const dev = await connectDevice(t, tb, 'dev-d', secret, { clean: false })
  t.equal(await subscribe(dev, 'gp/v1/dev-d/down/cmd'), 1)
  const got = nextMessage(dev)
  await tb.broker.publishCommand('dev-d', Buffer.from('ping'))
  t.equal((await got).payload.toString(), 'ping')
  dev.end()
  await closed(dev)
  await tb.broker.publishCommand('dev-d', Buffer.from('while-away'))
  const back = await connectDevice(t, tb, 'dev-d', secret, { clean: false })
  t.equal((await nextMessage(back)).payload.toString(), 'while-away', 'queued command delivered on reconnect')
  await t.rejects(tb.broker.publishCommand('bad/id', Buffer.from('x')), { code: 'GP_BROKER_BAD_OPTIONS' })
})
