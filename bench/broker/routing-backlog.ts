// Heap held per message queued for routing (mqemitter behind our routing guard), to size
// the routing high-water mark (limits.routingHighWater): N QoS 1 publishes of 64 B are
// queued synchronously behind busy listeners (mq.emit, as aedes routes them), then the
// heap is compared after a full GC.
// Run: node --expose-gc --import tsx bench/broker/routing-backlog.ts [N=100000]
import { Aedes } from 'aedes'
import { createRequire } from 'node:module'
import { guardRouting } from '../../broker/routing-guard.ts'

const Packet = createRequire(import.meta.url)('aedes-packet') as new (p: object, broker: unknown) => object
const N = Number(process.argv[2] ?? 100_000)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')
const aedes = await Aedes.createBroker({ concurrency: 100 })
type Mq = { length: number; on(topic: string, fn: (m: unknown, cb: () => void) => void): void; emit(packet: object, cb: () => void): void }
const mq = (aedes as unknown as { mq: Mq }).mq
guardRouting(mq)
mq.on('gp/v1/+/up/telemetry', (_m, cb) => setImmediate(cb))
gc()
gc()
const before = process.memoryUsage().heapUsed
for (let i = 0; i < N; i++) {
  // As parsed from the wire: a fresh topic string and a 64-byte payload per message.
  // aedes hands each routed packet (an aedes-packet Packet) to mq.emit with a callback.
  mq.emit(new Packet({ cmd: 'publish', topic: `gp/v1/bench-${i % 1000}/up/telemetry`, payload: Buffer.alloc(64), qos: 1, retain: false, dup: false }, aedes), () => undefined)
}
gc()
gc()
const after = process.memoryUsage().heapUsed
console.log(`queued for routing: ${mq.length}; heap ${((after - before) / 1e6).toFixed(1)} MB, ${((after - before) / N).toFixed(0)} B per queued message`)
process.exit(0)
