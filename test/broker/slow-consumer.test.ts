// The aedes 1.2.0 trap: a QoS 0 backlog behind a slow subscriber that disconnects
// crashes bare aedes inside mqemitter; our bounded queues and routing guard survive it.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { closed, connect, connectDevice, delay, publish, startBroker, subscribe } from './helpers.ts'

const fixture = fileURLToPath(new URL('./fixtures/slow-consumer.ts', import.meta.url))
const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url))
const run = (mode: string) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    let out = ''
    const child = execFile(process.execPath, [tsx, fixture, mode, '100000'], { timeout: 60_000 })
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
    child.on('close', (code) => resolve({ code, out }))
  })

t.test('reproduced on bare aedes, gone with ours', async (t) => {
  const [bare, ours] = await Promise.all([run('bare'), run('ours')])
  t.not(bare.code, 0, 'bare aedes dies')
  t.match(bare.out, /RangeError: Maximum call stack size exceeded/)
  t.equal(ours.code, 0, 'our broker lives')
  t.match(ours.out, /survived/)
})

t.test('a slow QoS 0 subscriber is shed, a slow QoS 1 subscriber is disconnected; others are served', async (t) => {
  const tb = await startBroker(t, { allowAnonymous: true, limits: { maxQueued: 50 } })
  const secret = await tb.device('dev-fast')
  const fast = await connectDevice(t, tb, 'dev-fast', secret)
  const slow0 = await connect(t, tb.url, { clientId: 'slow0' })
  const slow1 = await connect(t, tb.url, { clientId: 'slow1' })
  await subscribe(slow0, 'lab/flood', 0)
  await subscribe(slow1, 'lab/flood', 1)
  const pub = await connect(t, tb.url, { clientId: 'pub' })
  // Stop reading on both subscribers.
  slow0.stream.pause()
  slow1.stream.pause()
  const big = Buffer.alloc(16 * 1024, 7)
  for (let i = 0; i < 300; i++) pub.publish('lab/flood', big, { qos: 1 })
  // Routing 300 × 16 KB takes a moment on a loaded machine: wait for the outcome
  // (up to 20 s) instead of a fixed delay — a failing broker still fails, by timeout.
  const outcome = /gridpatrol_broker_slow_consumer_disconnects_total [1-9]/
  let m = await tb.broker.registry.metrics()
  for (let waited = 0; !outcome.test(m) && waited < 20_000; waited += 100) {
    await delay(100)
    m = await tb.broker.registry.metrics()
  }
  t.match(m, /gridpatrol_broker_shed_total [1-9]/, 'QoS 0 deliveries over the bound are dropped and counted')
  t.match(m, /gridpatrol_broker_slow_consumer_disconnects_total 1/, 'the QoS 1 subscriber over its bound is disconnected')
  slow1.stream.resume()
  t.ok(await closed(slow1))
  await publish(fast, 'gp/v1/dev-fast/up/status', 'ok')
  t.equal(tb.sink.committed.length, 1, 'devices keep being served')
})
