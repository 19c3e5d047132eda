// npm run bench:fleet — how many simulated patrol devices one core drives at a
// realistic rate (one check-in per device per minute of virtual time), measured
// on the virtual clock with the in-memory network, next to the bare cost of
// encoding the same check-ins (the comparison, measured in the same run).
import { encodeUplink, type Uplink } from '../firmware-protocol/index.ts'
import { VirtualClock } from '../simulators/clock.ts'
import { Fleet } from '../simulators/fleet.ts'
import { MemoryNetwork } from '../simulators/memory-network.ts'
import { demoCheckpoints } from '../simulators/live.ts'
import type { PatrolDevice } from '../simulators/patrol.ts'

const DEVICES = Number(process.env.BENCH_DEVICES ?? 5000)
const VIRTUAL_MIN = Number(process.env.BENCH_MINUTES ?? 60)
const T0 = Date.UTC(2025, 2, 10)

function baseline(n: number): number {
  const env: Uplink = { seq: 1, deviceTimeMs: T0, kind: 'checkin', checkin: { tagId: '04A1B2C3D4', method: 'nfc', badgeId: 'B-001', batteryPct: 80 } }
  const t = performance.now()
  for (let i = 0; i < n; i++) encodeUplink({ ...env, seq: i + 1 })
  return n / ((performance.now() - t) / 1000)
}

function fleetRun(devices: number, minutes: number) {
  const clock = new VirtualClock(T0)
  const net = new MemoryNetwork(clock, { latencyMs: 50, record: false })
  const fleet = new Fleet({ clock, seed: 1, transportFor: (id) => net.transport(id) })
  for (let i = 0; i < devices; i++) {
    const id = `bench-${i}`
    const d = fleet.addPatrol({ id, heartbeatIntervalS: 300, drainPerHour: 0 }) as PatrolDevice
    const cps = demoCheckpoints(id)
    let k = 0
    const tick = () => {
      d.arrive(cps[k++ % cps.length]!)
      clock.setTimeout(tick, 60_000)
    }
    clock.setTimeout(tick, fleet.rng.next() * 60_000)
  }
  fleet.start()
  clock.runUntil(T0 + 60_000) // warm-up minute: connects, boot statuses
  const before = { msgs: net.received, cpu: process.cpuUsage(), t: performance.now() }
  clock.runUntil(T0 + (minutes + 1) * 60_000)
  const wallS = (performance.now() - before.t) / 1000
  const cpu = process.cpuUsage(before.cpu)
  const msgs = net.received - before.msgs
  const s = fleet.stats()
  fleet.stop()
  return { wallS, cpuS: (cpu.user + cpu.system) / 1e6, msgs, backlog: s.backlog, acked: s.acked }
}

console.log(`fleet bench: ${DEVICES} patrol devices, ${VIRTUAL_MIN} virtual minutes, 1 check-in/device/min + status every 5 min`)
const enc = baseline(200_000)
const r = fleetRun(DEVICES, VIRTUAL_MIN)
const msgPerCpuS = r.msgs / r.cpuS
const speedup = (VIRTUAL_MIN * 60) / r.wallS
// At the realistic rate a device sends 1.2 messages per minute (check-in + 1/5 status).
const devicesPerCore = Math.floor((msgPerCpuS * 60) / 1.2)
console.log(`  baseline encodeUplink (check-in):      ${Math.round(enc).toLocaleString('en')} msg/s`)
console.log(`  fleet, virtual clock + memory network: ${Math.round(r.msgs / r.wallS).toLocaleString('en')} msg/s wall, ${Math.round(msgPerCpuS).toLocaleString('en')} msg per CPU-s (${r.msgs.toLocaleString('en')} messages in ${r.wallS.toFixed(2)} s)`)
console.log(`  virtual time ran ${speedup.toFixed(0)}× faster than real time with ${DEVICES} devices`)
console.log(`  → one core drives ≈ ${devicesPerCore.toLocaleString('en')} devices at 1 check-in/min in real time (simulator side only)`)
console.log(`  device overhead over bare encoding: ${(enc / msgPerCpuS).toFixed(1)}×; backlog at end: ${r.backlog}`)

// The same devices on real MQTT (mqtt.js, one TCP connection each) against a
// plain aedes in this process, speed 60 (1 virtual minute per real second):
// the cost that matters for `gridpatrol sim fleet --url`.
async function mqttRun(devices: number, seconds: number) {
  const { Aedes } = await import('aedes')
  const { createServer } = await import('node:net')
  const { startLiveFleet } = await import('../simulators/live.ts')
  const broker = await Aedes.createBroker()
  let received = 0
  broker.on('publish', (p, c) => {
    if (c && p.topic.includes('/up/')) received++
  })
  const server = createServer(broker.handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const live = startLiveFleet({ url: `mqtt://127.0.0.1:${port}`, speed: 60 }, Array.from({ length: devices }, (_, i) => ({ deviceId: `mq-${i}`, checkinEveryMs: 60_000 })))
  await new Promise((r) => setTimeout(r, 2000))
  const before = { n: received, cpu: process.cpuUsage(), t: performance.now() }
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const wallS = (performance.now() - before.t) / 1000
  const cpu = process.cpuUsage(before.cpu)
  const n = received - before.n
  const online = live.fleet.stats().online
  await live.stop()
  await new Promise<void>((r) => broker.close(() => r()))
  server.close()
  return { rate: n / wallS, cpuS: (cpu.user + cpu.system) / 1e6, wallS, online, n }
}

const MQ = Number(process.env.BENCH_MQTT_DEVICES ?? 1000)
const m = await mqttRun(MQ, 5)
const perCoreReal = Math.floor(((m.n / m.cpuS) * 60) / 1.2)
console.log(`  real MQTT, ${MQ} devices at speed 60 vs in-process aedes: ${Math.round(m.rate).toLocaleString('en')} msg/s, ${m.online}/${MQ} online, ${(m.cpuS / m.wallS).toFixed(2)} cores busy (simulator + broker)`)
console.log(`  → over real MQTT one core (simulator and broker together) drives ≈ ${perCoreReal.toLocaleString('en')} devices at 1 check-in/min`)
