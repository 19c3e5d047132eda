// Broker process for bench/broker.ts: `ours` (auth + ACL + commit hook on) or `bare` aedes.
// Prints the port on stdout, then serves until SIGTERM (a clean exit, so --cpu-prof
// and --heap-prof write their files). Over the IPC channel it answers
// { cmd: 'mem' } (after a full GC when run with --expose-gc) and
// { cmd: 'snapshot', path } (v8.writeHeapSnapshot) for the idle-memory phase.
import { createServer } from 'node:net'
import { writeHeapSnapshot } from 'node:v8'
import { Aedes } from 'aedes'
import { createBroker, createVerifyCache, hashSecret, type DeviceDirectory } from '../../broker/index.ts'

const [mode = 'ours', , noDelayArg = '1'] = process.argv.slice(2)
let port: number
if (mode === 'bare') {
  const aedes = await Aedes.createBroker()
  const server = createServer({ noDelay: noDelayArg === '1' }, aedes.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  port = (server.address() as { port: number }).port
} else {
  // Every bench device shares one secret so start-up is not 5,000 scrypt hashes; each
  // CONNECT still goes through the directory and the verify cache, as in production.
  const hash = await hashSecret('bench')
  const cache = createVerifyCache()
  const directory: DeviceDirectory = {
    async authenticate({ username, password }) {
      if (!username || !password || !(await cache.verify(password, hash))) return null
      if (username === 'bench-sub') return { kind: 'service', name: 'bench-sub', rights: { publish: [], subscribe: ['gp/v1/+/up/#'] } }
      return /^bench-\d+$/.test(username) ? { kind: 'device', deviceId: username } : null
    },
  }
  const broker = createBroker({
    port: 0,
    wsPort: null,
    noDelay: noDelayArg === '1',
    directory,
    // The sink resolves at once: this measures the broker, not a database.
    sink: { commit: async () => {} },
    // BENCH_BROKER_HIGH_WATER overrides the routing high-water mark (experiments only).
    limits: {
      publishRate: 1e9,
      publishBurst: 1e9,
      flapLimit: 1e9,
      ...(process.env.BENCH_BROKER_HIGH_WATER ? { routingHighWater: Number(process.env.BENCH_BROKER_HIGH_WATER) } : {}),
    },
  })
  port = (await broker.listen()).mqtt
}

process.on('SIGTERM', () => process.exit(0))
process.on('message', (m: { cmd: string; path?: string }) => {
  if (m.cmd === 'mem') {
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    gc?.()
    const u = process.memoryUsage()
    process.send?.({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers })
  } else if (m.cmd === 'snapshot') {
    process.send?.({ path: writeHeapSnapshot(m.path) })
  }
})
console.log(JSON.stringify({ port }))
