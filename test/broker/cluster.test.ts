// Cluster mode on this machine's Redis: two broker nodes share routing and sessions.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemoryDirectory } from '../../broker/index.ts'
import { RecordingSink, closed, connectDevice, delay, nextMessage, startBroker, subscribe } from './helpers.ts'

const redisUrl = process.env.REDIS_URL
if (!redisUrl) {
  t.comment('skipped: REDIS_URL is not set (cluster mode needs a Redis, e.g. REDIS_URL=redis://127.0.0.1:6379)')
  t.pass('cluster tests skipped without REDIS_URL')
} else {
  t.test('two nodes: commands cross nodes; a persistent session moves from A to B', async (t) => {
    const directory = createMemoryDirectory()
    const sink = new RecordingSink()
    const a = await startBroker(t, { redisUrl, directory, sink })
    const b = await startBroker(t, { redisUrl, directory, sink })
    t.equal(a.broker.mode, 'redis')
    const id = `dev-${randomUUID().slice(0, 8)}`
    const secret = await directory.addDevice({ deviceId: id })

    const onA = await connectDevice(t, a, id, secret, { clean: false })
    t.equal(await subscribe(onA, `gp/v1/${id}/down/cmd`), 1)
    await delay(200) // Redis subscription propagation
    const got = nextMessage(onA)
    await b.broker.publishCommand(id, Buffer.from('via-B'))
    t.equal((await got).payload.toString(), 'via-B', 'device on A receives a command published through B')

    onA.end()
    await closed(onA)
    await b.broker.publishCommand(id, Buffer.from('queued-1'))
    await a.broker.publishCommand(id, Buffer.from('queued-2'))
    const onB = await connectDevice(t, b, id, secret, { clean: false })
    const seen: string[] = []
    onB.on('message', (_topic, payload) => seen.push(payload.toString()))
    const deadline = Date.now() + 3000
    while (seen.length < 2 && Date.now() < deadline) await delay(50)
    t.same(seen.sort(), ['queued-1', 'queued-2'], 'queued QoS 1 messages follow the session to B')
  })
}
