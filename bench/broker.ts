// npm run bench:broker [-- --devices 1000 --seconds 5 --idle 5000 --nodelay 1]
// Fan-in (N devices → 1 subscriber, 64-byte payloads) QoS 0 and QoS 1 throughput and
// publish→receive latency, against our broker (auth, ACL, commit hook on), bare aedes
// and Debian's mosquitto, each in its own process; then idle connections → RSS.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const DEVICES = arg('devices', 1000)
const SECONDS = arg('seconds', 5)
const IDLE = arg('idle', 5000)
const NODELAY = arg('nodelay', 1)
const serverScript = fileURLToPath(new URL('./broker/server.ts', import.meta.url))

type Target = { name: string; port: number; proc: ChildProcess }

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })

async function start(name: string): Promise<Target> {
  if (name === 'mosquitto') {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'gp-mosq-'))
    writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nset_tcp_nodelay ${NODELAY ? 'true' : 'false'}\n`)
    const proc = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' })
    await new Promise((r) => setTimeout(r, 500))
    return { name, port, proc }
  }
  // node --import tsx (not the tsx CLI, which forks): the pid is the broker's, for RSS.
  const proc = spawn(process.execPath, ['--import', 'tsx', serverScript, name, String(DEVICES), String(NODELAY)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve) => proc.stdout?.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()).port)))
  return { name, port, proc }
}

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024

function connect(port: number, opts: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4, keepalive: 600, ...opts })
    c.once('connect', () => resolve(c))
    c.once('error', reject)
    c.on('error', () => undefined)
  })
}

const creds = (t: Target, i: number) => (t.name === 'ours' ? { clientId: `bench-${i}`, username: `bench-${i}`, password: 'bench' } : { clientId: `bench-${i}` })

async function fanIn(t: Target, qos: 0 | 1) {
  const sub = await connect(t.port, t.name === 'ours' ? { clientId: 'bench-sub', username: 'bench-sub', password: 'bench' } : { clientId: 'bench-sub' })
  await new Promise<void>((r) => sub.subscribe('gp/v1/+/up/telemetry', { qos }, () => r()))
  const devs: MqttClient[] = []
  for (let i = 0; i < DEVICES; i += 50) devs.push(...(await Promise.all(Array.from({ length: Math.min(50, DEVICES - i) }, (_, k) => connect(t.port, creds(t, i + k))))))
  const lat: number[] = []
  let received = 0
  sub.on('message', (_t, payload) => {
    received++
    if (received % 16 === 0) lat.push(Number(process.hrtime.bigint() - payload.readBigInt64BE(0)) / 1e6)
  })
  const payload = () => {
    const b = Buffer.alloc(64)
    b.writeBigInt64BE(process.hrtime.bigint(), 0)
    return b
  }
  let running = true
  const inflight = qos === 1 ? 8 : 32
  const loops = devs.map(async (d, i) => {
    const topic = `gp/v1/bench-${i}/up/telemetry`
    while (running) {
      if (qos === 1) await Promise.all(Array.from({ length: inflight }, () => new Promise<void>((r) => d.publish(topic, payload(), { qos: 1 }, () => r()))))
      else {
        for (let k = 0; k < inflight; k++) d.publish(topic, payload(), { qos: 0 })
        await new Promise((r) => setImmediate(r))
      }
    }
  })
  await new Promise((r) => setTimeout(r, 1000)) // warm-up
  const r0 = received
  const t0 = Date.now()
  lat.length = 0
  await new Promise((r) => setTimeout(r, SECONDS * 1000))
  const rate = ((received - r0) / (Date.now() - t0)) * 1000
  running = false
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 3000))])
  lat.sort((a, b) => a - b)
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] ?? NaN
  for (const d of [...devs, sub]) d.end(true)
  await new Promise((r) => setTimeout(r, 500))
  return { rate, p50: pct(50), p99: pct(99) }
}

async function idle(t: Target) {
  const before = rss(t.proc.pid ?? 0)
  const conns: MqttClient[] = []
  for (let i = 0; i < IDLE; i += 100) conns.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => connect(t.port, creds(t, i + k))))))
  await new Promise((r) => setTimeout(r, 1500))
  const after = rss(t.proc.pid ?? 0)
  for (const c of conns) c.end(true)
  return (after - before) / IDLE
}

const results: Record<string, Record<string, number>> = {}
for (const name of ['ours', 'bare', 'mosquitto']) {
  // Each phase on a fresh broker process: idle memory first, then QoS 1, then QoS 0
  // (bare aedes may die under the QoS 0 flood: the mqemitter stack overflow).
  const phase = async <T>(fn: (t: Target) => Promise<T>): Promise<T | undefined> => {
    const t = await start(name)
    let died = false
    t.proc.once('exit', () => (died = true))
    try {
      const r = await fn(t)
      return died ? undefined : r
    } catch {
      console.log(`${name}: phase failed${died ? ' (broker process died)' : ''}`)
      return undefined
    } finally {
      t.proc.kill('SIGTERM')
    }
  }
  {
    const perConn = IDLE > 0 ? await phase(idle) : NaN
    const q1 = await phase((t) => fanIn(t, 1))
    const q0 = await phase((t) => fanIn(t, 0))
    results[name] = { q0: q0?.rate ?? NaN, q0p50: q0?.p50 ?? NaN, q0p99: q0?.p99 ?? NaN, q1: q1?.rate ?? NaN, q1p50: q1?.p50 ?? NaN, q1p99: q1?.p99 ?? NaN, perConnKB: (perConn ?? NaN) / 1024 }
    console.log(name, JSON.stringify(results[name], (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)))
  }
}
const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(d))
console.log(`\nfan-in ${DEVICES} devices → 1 subscriber, 64 B, ${SECONDS} s, TCP_NODELAY=${NODELAY}; idle connections: ${IDLE}`)
console.log('broker      QoS0 msg/s  p50 ms  p99 ms   QoS1 msg/s  p50 ms  p99 ms   KB/idle conn')
for (const [name, r] of Object.entries(results)) {
  console.log(`${name.padEnd(10)}  ${f(r.q0).padStart(10)}  ${f(r.q0p50, 1).padStart(6)}  ${f(r.q0p99, 1).padStart(6)}   ${f(r.q1).padStart(10)}  ${f(r.q1p50, 1).padStart(6)}  ${f(r.q1p99, 1).padStart(6)}   ${f(r.perConnKB, 1).padStart(12)}`)
}
const o = results.ours
const b = results.bare
const m = results.mosquitto
if (o && b) console.log(`ours/bare aedes: QoS0 ×${f(o.q0! / b.q0!, 2)}, QoS1 ×${f(o.q1! / b.q1!, 2)}, memory/conn ×${f(o.perConnKB! / b.perConnKB!, 2)}`)
if (o && m) console.log(`ours/mosquitto:  QoS0 ×${f(o.q0! / m.q0!, 2)}, QoS1 ×${f(o.q1! / m.q1!, 2)}, memory/conn ×${f(o.perConnKB! / m.perConnKB!, 2)}`)
process.exit(0)
