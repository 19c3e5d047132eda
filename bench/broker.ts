// npm run bench:broker [-- --devices 1000 --seconds 5 --warmup 2 --rate 20000 --idle 5000 --nodelay 1
//                          --brokers ours,bare,mosquitto --phases q1,q1lat,q0lat,q0]
//
// Fan-in, N devices → 1 subscriber, 64-byte payloads, against our broker (auth, ACL,
// commit hook on), bare aedes 1.2.0 and Debian's mosquitto, the same load for each:
// - saturation throughput, QoS 1 (8 unacked per device) and QoS 0 (32 writes per
//   device per turn, waiting for the socket to drain: the client never buffers
//   without bound, so what is measured is the broker);
// - publish→receive latency p50/p99 at a fixed offered load (--rate msg/s in total,
//   spread over the devices), QoS 1 then QoS 0 — latency at saturation only measures
//   queue lengths (Little's law), so it is not reported;
// - idle connections: RSS (after a full GC for node brokers) and V8 heap per connection.
// Each broker runs in its own process pinned to CPU 0 (taskset), this process (all the
// clients) to CPU 1; a warm-up precedes every measurement. Memory first on a fresh
// process, then the fan-in phases on another, QoS 0 saturation last (bare aedes may
// die there: the mqemitter stack overflow).
// BENCH_BROKER_NODE_ARGS adds node flags to the node brokers (e.g. "--cpu-prof").
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { cpuMs, pin, pinned } from './cpu.ts'

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const argList = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return (i >= 0 ? (process.argv[i + 1] ?? def) : def).split(',')
}
const DEVICES = arg('devices', 1000)
const SECONDS = arg('seconds', 5)
const WARMUP = arg('warmup', 2)
const RATE = arg('rate', 20_000)
const IDLE = arg('idle', 5000)
const NODELAY = arg('nodelay', 1)
const BROKERS = argList('brokers', 'ours,bare,mosquitto')
const PHASES = new Set(argList('phases', 'q1,q1lat,q0lat,q0'))
const serverScript = fileURLToPath(new URL('./broker/server.ts', import.meta.url))
const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(' ').filter(Boolean)


type Target = { name: string; port: number; proc: ChildProcess }

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function start(name: string): Promise<Target> {
  if (name === 'mosquitto') {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'gp-mosq-'))
    writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay ${NODELAY ? 'true' : 'false'}\n`)
    const [cmd, args] = pin('mosquitto', ['-c', join(dir, 'm.conf')])
    const proc = spawn(cmd, args, { stdio: 'ignore' })
    await sleep(500)
    return { name, port, proc }
  }
  // node --import tsx (not the tsx CLI, which forks): the pid is the broker's, for RSS;
  // taskset execs, so the pid stays the broker's.
  const [cmd, args] = pin(process.execPath, ['--expose-gc', ...nodeArgs, '--import', 'tsx', serverScript, name, String(DEVICES), String(NODELAY)])
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve) => proc.stdout?.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()).port)))
  return { name, port, proc }
}

function ask<T>(t: Target, msg: object): Promise<T> {
  return new Promise((resolve) => {
    t.proc.once('message', (m) => resolve(m as T))
    t.proc.send?.(msg)
  })
}

/** CPU time (ms) a process has used so far, from /proc (Linux). */

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024

async function memory(t: Target): Promise<{ rss: number; heap: number }> {
  if (t.name === 'mosquitto') return { rss: rssOf(t.proc.pid ?? 0), heap: NaN }
  const m = await ask<{ rss: number; heapUsed: number }>(t, { cmd: 'mem' })
  return { rss: m.rss, heap: m.heapUsed }
}

function connect(port: number, opts: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4, keepalive: 600, ...opts })
    // mqtt.js leaves Nagle on: the client side gets the same TCP_NODELAY as the brokers.
    ;(c.stream as Socket).setNoDelay?.(NODELAY === 1)
    c.once('connect', () => resolve(c))
    c.once('error', reject)
    c.on('error', () => undefined)
  })
}

const creds = (t: Target, i: number) => (t.name === 'ours' ? { clientId: `bench-${i}`, username: `bench-${i}`, password: 'bench' } : { clientId: `bench-${i}` })

async function connectMany(t: Target, from: number, n: number, batch: number): Promise<MqttClient[]> {
  const out: MqttClient[] = []
  for (let i = 0; i < n; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => connect(t.port, creds(t, from + i + k))))))
  return out
}

const endAll = async (cs: MqttClient[]) => {
  for (const c of cs) c.end(true)
  await sleep(500)
}

const stamp = () => {
  const b = Buffer.alloc(64)
  b.writeBigInt64BE(process.hrtime.bigint(), 0)
  return b
}

interface Measure {
  rate: number
  p50: number
  p99: number
  /** CPU use during the measure, % of one core: the broker process and this (client) process. */
  brokerCpu: number
  clientCpu: number
}

/** Fan-in phases on one broker process, one set of connections. */
async function fanIn(t: Target): Promise<{ q1: Measure; q0: Measure; q1lat: Measure; q0lat: Measure; died?: boolean }> {
  const sub = await connect(t.port, t.name === 'ours' ? { clientId: 'bench-sub', username: 'bench-sub', password: 'bench' } : { clientId: 'bench-sub' })
  await new Promise<void>((r) => sub.subscribe('gp/v1/+/up/telemetry', { qos: 1 }, () => r()))
  const devs = await connectMany(t, 0, DEVICES, 50)
  const topics = devs.map((_, i) => `gp/v1/bench-${i}/up/telemetry`)
  let received = 0
  let sampling = false
  let subDropped = 0
  sub.on('close', () => subDropped++)
  const lat: number[] = []
  sub.on('message', (_t, payload) => {
    received++
    if (sampling) lat.push(Number(process.hrtime.bigint() - payload.readBigInt64BE(0)) / 1e6)
  })

  /** Runs `load` through a warm-up, then measures received msg/s (and latency) over SECONDS. */
  const measure = async (load: () => () => Promise<void>): Promise<Measure> => {
    const stop = load()
    await sleep(WARMUP * 1000)
    lat.length = 0
    sampling = true
    const r0 = received
    const t0 = Date.now()
    const b0 = cpuMs(t.proc.pid ?? 0)
    const c0 = cpuMs('self')
    await sleep(SECONDS * 1000)
    const elapsed = Date.now() - t0
    const rate = ((received - r0) / elapsed) * 1000
    const brokerCpu = ((cpuMs(t.proc.pid ?? 0) - b0) / elapsed) * 100
    const clientCpu = ((cpuMs('self') - c0) / elapsed) * 100
    sampling = false
    if (subDropped > 0) throw new Error('the subscriber was disconnected (slow consumer?): the measure is void')
    await stop()
    await sleep(300) // drain
    lat.sort((a, b) => a - b)
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] ?? NaN
    return { rate, p50: pct(50), p99: pct(99), brokerCpu, clientCpu }
  }

  // Saturation: closed loops per device.
  const saturate = (qos: 0 | 1) => () => {
    let running = true
    const window = qos === 1 ? 8 : 32
    const loops = devs.map(async (d, i) => {
      const topic = topics[i] as string
      while (running && d.connected) {
        // QoS 1: wait for the PUBACKs; QoS 0: the callback fires once written, or on drain.
        await Promise.all(Array.from({ length: window }, () => new Promise<void>((r) => d.publish(topic, stamp(), { qos }, () => r()))))
        if (qos === 0) await new Promise((r) => setImmediate(r))
      }
    })
    return async () => {
      running = false
      await Promise.race([Promise.all(loops), sleep(3000)])
    }
  }

  // Fixed offered load: RATE msg/s in total, round-robin over the devices, every 5 ms.
  const steady = (qos: 0 | 1) => () => {
    let next = 0
    let due = 0
    const t0 = Date.now()
    const timer = setInterval(() => {
      const target = Math.floor(((Date.now() - t0) / 1000) * RATE)
      for (; due < target; due++) {
        const i = next++ % devs.length
        devs[i]?.publish(topics[i] as string, stamp(), { qos })
      }
    }, 5)
    return async () => clearInterval(timer)
  }

  let died = false
  t.proc.once('exit', () => (died = true))
  const none: Measure = { rate: NaN, p50: NaN, p99: NaN, brokerCpu: NaN, clientCpu: NaN }
  const run = (p: string, load: () => () => Promise<void>) => (PHASES.has(p) && !died ? measure(load) : Promise.resolve(none))
  const q1 = await run('q1', saturate(1))
  const q1lat = await run('q1lat', steady(1))
  const q0lat = await run('q0lat', steady(0))
  const q0 = await run('q0', saturate(0))
  await endAll([...devs, sub])
  return { q1, q0, q1lat, q0lat, died }
}

async function idle(t: Target): Promise<{ rss: number; heap: number }> {
  // Warm-up: one-time costs (JIT, the first scrypt, pools) are not charged per connection.
  await endAll(await connectMany(t, IDLE, Math.min(200, IDLE), 100))
  const before = await memory(t)
  const conns = await connectMany(t, 0, IDLE, 100)
  await sleep(1500)
  const after = await memory(t)
  if (process.env.BENCH_BROKER_SNAPSHOT && t.name !== 'mosquitto') {
    console.log(`${t.name}: heap snapshot ${(await ask<{ path: string }>(t, { cmd: 'snapshot', path: `${process.env.BENCH_BROKER_SNAPSHOT}-${t.name}.heapsnapshot` })).path}`)
  }
  await endAll(conns)
  return { rss: (after.rss - before.rss) / IDLE, heap: (after.heap - before.heap) / IDLE }
}

async function phase<T>(name: string, fn: (t: Target) => Promise<T>): Promise<T | undefined> {
  const t = await start(name)
  let died = false
  t.proc.once('exit', () => (died = true))
  try {
    return await fn(t)
  } catch (err) {
    console.log(`${name}: phase failed${died ? ' (broker process died)' : ''}: ${(err as Error).message}`)
    return undefined
  } finally {
    t.proc.kill('SIGTERM')
    await new Promise((r) => (died ? r(null) : t.proc.once('exit', r)))
  }
}

const results: Record<string, Record<string, number>> = {}
for (const name of BROKERS) {
  const mem = IDLE > 0 ? await phase(name, idle) : undefined
  const fi = await phase(name, fanIn)
  if (fi?.died) console.log(`${name}: broker process died during the fan-in`)
  results[name] = {
    q0: fi?.q0.rate ?? NaN,
    q0cpu: fi?.q0.brokerCpu ?? NaN,
    q0clientCpu: fi?.q0.clientCpu ?? NaN,
    q0p50: fi?.q0lat.p50 ?? NaN,
    q0p99: fi?.q0lat.p99 ?? NaN,
    q0at: fi?.q0lat.rate ?? NaN,
    q1: fi?.q1.rate ?? NaN,
    q1cpu: fi?.q1.brokerCpu ?? NaN,
    q1clientCpu: fi?.q1.clientCpu ?? NaN,
    q1latCpu: fi?.q1lat.brokerCpu ?? NaN,
    q0latCpu: fi?.q0lat.brokerCpu ?? NaN,
    q1p50: fi?.q1lat.p50 ?? NaN,
    q1p99: fi?.q1lat.p99 ?? NaN,
    q1at: fi?.q1lat.rate ?? NaN,
    rssKB: (mem?.rss ?? NaN) / 1024,
    heapKB: (mem?.heap ?? NaN) / 1024,
  }
  console.log(name, JSON.stringify(results[name], (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)))
}
const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d))
console.log(
  `\nfan-in ${DEVICES} devices → 1 subscriber, 64 B, ${WARMUP} s warm-up + ${SECONDS} s per measure, latency at ${RATE} msg/s offered, TCP_NODELAY=${NODELAY}; ` +
    `idle connections: ${IDLE}; ${pinned ? 'broker pinned to CPU 0, clients to CPU 1' : 'not pinned'}`,
)
console.log('broker      QoS1 msg/s  p50 ms  p99 ms   QoS0 msg/s  p50 ms  p99 ms   RSS KB/conn  heap KB/conn')
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(10)}  ${f(r.q1).padStart(10)}  ${f(r.q1p50, 1).padStart(6)}  ${f(r.q1p99, 1).padStart(6)}   ${f(r.q0).padStart(10)}  ${f(r.q0p50, 1).padStart(6)}  ${f(r.q0p99, 1).padStart(6)}   ${f(r.rssKB, 1).padStart(11)}  ${f(r.heapKB, 1).padStart(12)}`,
  )
}
const o = results.ours
const b = results.bare
const m = results.mosquitto
if (o && b) console.log(`ours/bare aedes: QoS1 ×${f(o.q1! / b.q1!, 2)}, QoS0 ×${f(o.q0! / b.q0!, 2)}, RSS/conn ×${f(o.rssKB! / b.rssKB!, 2)}, heap/conn ×${f(o.heapKB! / b.heapKB!, 2)}`)
// Broker CPU per message (µs): robust to other load on the machine, unlike msg/s when the
// broker does not get its whole core. "CPU-normalised" = the throughput ratio if both were
// CPU-bound: bare's µs per message / ours.
const usPerMsg = (cpu: number | null | undefined, rate: number | null | undefined) => (cpu && rate ? (cpu * 10_000) / rate : undefined)
for (const [name, r] of Object.entries(results)) {
  const q1 = usPerMsg(r.q1cpu, r.q1)
  const q0 = usPerMsg(r.q0cpu, r.q0)
  if (q1 !== undefined || q0 !== undefined) console.log(`${name}: broker CPU per message QoS1 ${f(q1, 2)} µs, QoS0 ${f(q0, 2)} µs (broker CPU ${f(r.q1cpu)} % / ${f(r.q0cpu)} %)`)
}
if (o && b) {
  const n1 = (usPerMsg(b.q1cpu, b.q1) ?? NaN) / (usPerMsg(o.q1cpu, o.q1) ?? NaN)
  const n0 = (usPerMsg(b.q0cpu, b.q0) ?? NaN) / (usPerMsg(o.q0cpu, o.q0) ?? NaN)
  console.log(`ours/bare aedes, CPU-normalised: QoS1 ×${f(n1, 2)}, QoS0 ×${f(n0, 2)}`)
}
if (o && m) console.log(`ours/mosquitto:  QoS1 ×${f(o.q1! / m.q1!, 2)}, QoS0 ×${f(o.q0! / m.q0!, 2)}, RSS/conn ×${f(o.rssKB! / m.rssKB!, 2)}`)
process.exit(0)
