// Broker/ingest process for bench/ingest.ts (pinned to CPU 0 by the parent).
//   bare                          bare aedes 1.2.0 (the load generator subscribes)
//   ours <devices> <db|dir>       our broker + ingest + store (PUBACK after commit)
//   external <devices> <db> <mqtt-url> <prefix> <maxInFlight>   connectExternal on Mosquitto
// <db|dir>: a postgres:// URL (server driver) or a directory (embedded driver).
// Prints {"port": n} (or {"ready": true}) on stdout, then serves until SIGTERM.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { pino } from 'pino'
import { createBroker, createVerifyCache, hashSecret, type DeviceDirectory } from '../../broker/index.ts'
import { connectExternal, createIngest } from '../../ingest/index.ts'
import { openStore } from '../../src/store/index.ts'

const [mode = 'bare', devicesArg = '1000', target = '', mqttUrl = '', prefix = '', maxInFlight = '256'] = process.argv.slice(2)
const log = pino({ level: 'silent' })
const out = (o: object) => console.log(JSON.stringify(o))

if (mode === 'bare') {
  const aedes = await Aedes.createBroker()
  const server = createServer({ noDelay: true }, aedes.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  out({ port: (server.address() as { port: number }).port })
} else {
  const server = target.startsWith('postgres')
  const store = await openStore({ dataDir: server ? '/nonexistent' : target, databaseUrl: server ? target : undefined }, log)
  await store.migrate()
  const hash = await hashSecret('bench')
  for (let i = 0; i < Number(devicesArg); i++) await store.devices.create({ id: `bench-${i}`, kind: 'patrol', gridId: null, secretHash: hash })
  // The check-ins' 50 tags are registered checkpoints (unknown ones would be negatively cached for 5 s).
  await store.grids.create({ id: 'bench-grid', level: 'district', name: 'bench' })
  for (let k = 0; k < 50; k++) await store.checkpoints.create({ id: `bench-cp-${k}`, gridId: 'bench-grid', tagId: `T${k}`, name: `cp ${k}` })
  // GRIDPATROL_BENCH_WRITERS: transactions in flight at once (default: the ingest's, 4 server / 1 embedded).
  const writers = Number(process.env.GRIDPATROL_BENCH_WRITERS) || undefined
  const ingest = createIngest({ store, log, options: writers ? { writers } : {} })
  if (mode === 'external') {
    await connectExternal(ingest, { url: mqttUrl, clientId: `gp-bench-${prefix.replace(/\W/g, '')}`, topicPrefix: prefix, log, maxInFlight: Number(maxInFlight) })
    out({ ready: true })
  } else {
    // One shared secret (start-up is not 1,000 scrypt hashes); each CONNECT still
    // goes through the directory and the verify cache, as in production.
    const cache = createVerifyCache()
    const directory: DeviceDirectory = {
      async authenticate({ username, password }) {
        if (!username || !password || !(await cache.verify(password, hash))) return null
        return /^bench-\d+$/.test(username) ? { kind: 'device', deviceId: username } : null
      },
    }
    const broker = createBroker({ port: 0, wsPort: null, directory, sink: ingest, limits: { publishRate: 1e9, publishBurst: 1e9, flapLimit: 1e9 } })
    out({ port: (await broker.listen()).mqtt })
  }
  process.on('SIGTERM', () => {
    void (async () => {
      // GRIDPATROL_BENCH_STATS=1: group sizes and commit latency on stderr (profiling aid).
      if (process.env.GRIDPATROL_BENCH_STATS) {
        for (const h of [ingest.metrics.batchRows, ingest.metrics.commitSeconds]) {
          const { name, values: v } = await h.get()
          const sum = v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0
          const count = v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0
          process.stderr.write(`${name}: count ${count}, mean ${(sum / Math.max(1, count)).toFixed(4)}\n`)
        }
      }
      await ingest.close().catch(() => undefined)
      await store.close().catch(() => undefined)
      process.exit(0)
    })()
  })
}
process.on('SIGTERM', () => setTimeout(() => process.exit(0), 3000).unref())
