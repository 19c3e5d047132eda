// Simulated devices on a real broker in (optionally sped-up) real time: the
// `gridpatrol sim patrol|sensor|fleet` commands and the conformance self-tests.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { RealClock } from './clock.ts'
import type { DeviceQuirks, DeviceState } from './device.ts'
import { Fleet, defaultSecret } from './fleet.ts'
import { MqttTransport } from './mqtt-transport.ts'
import type { Checkpoint, PatrolDevice } from './patrol.ts'
import type { SensorMetric } from './sensor.ts'

export interface LiveOptions {
  url: string
  seed?: number
  /** Simulated seconds per real second (default 1). */
  speed?: number
  /** Connection attempt spacing, real ms (default 1000). */
  reconnectMs?: number
  /** A JSON file keeping device states (seq counters) across runs. */
  stateFile?: string
  quirks?: DeviceQuirks
  /** Send no last will (a quirk of the transport). */
  noWill?: boolean
  clean?: boolean
}

export interface LivePatrolSpec {
  deviceId: string
  secret?: string
  /** Check-in every N simulated ms, cycling over `checkpoints` (default 60 000). */
  checkinEveryMs?: number
  heartbeatIntervalS?: number
  checkpoints?: Checkpoint[]
  badgeId?: string
  /** The device clock's error, ms (positive = ahead). */
  clockOffsetMs?: number
}

export interface LiveSensorSpec {
  deviceId: string
  secret?: string
  metric: SensorMetric
  reportIntervalS?: number
}

/** A few checkpoints around a point, tags generated from the device id. */
export function demoCheckpoints(deviceId: string, n = 4): Checkpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${deviceId}-cp${i + 1}`,
    tagId: `${Buffer.from(deviceId).toString('hex').slice(0, 8).toUpperCase()}${String(i + 1).padStart(2, '0')}`,
    method: i === n - 1 ? ('gps' as const) : ('nfc' as const),
    lat: 31.23 + i * 0.0005,
    lon: 121.47 + i * 0.0004,
  }))
}

export interface LiveFleet {
  fleet: Fleet
  clock: RealClock
  transports: Map<string, MqttTransport>
  stop(): Promise<void>
}

export function startLiveFleet(opts: LiveOptions, patrols: LivePatrolSpec[], sensors: LiveSensorSpec[] = []): LiveFleet {
  const clock = new RealClock(opts.speed ?? 1)
  const transports = new Map<string, MqttTransport>()
  const states = new Map<string, DeviceState>()
  if (opts.stateFile && existsSync(opts.stateFile)) for (const s of JSON.parse(readFileSync(opts.stateFile, 'utf8')) as DeviceState[]) states.set(s.deviceId, s)
  const save = () => {
    if (opts.stateFile) writeFileSync(opts.stateFile, JSON.stringify([...fleet.devices.values()].map((d) => d.state)))
  }
  const fleet = new Fleet({
    clock,
    seed: opts.seed ?? 1,
    states,
    transportFor: (deviceId, secret) => {
      const t = new MqttTransport({ url: opts.url, deviceId, secret, reconnectMs: opts.reconnectMs ?? 1000, will: !opts.noWill, clean: opts.clean ?? false })
      transports.set(deviceId, t)
      return t
    },
  })
  const loops: (() => void)[] = []
  for (const p of patrols) {
    const d = fleet.addPatrol({ id: p.deviceId, secret: p.secret ?? defaultSecret(p.deviceId), ...(p.badgeId ? { badgeId: p.badgeId } : {}), ...(p.clockOffsetMs ? { clockOffsetMs: p.clockOffsetMs } : {}), heartbeatIntervalS: p.heartbeatIntervalS ?? 300, ...(opts.quirks ? { quirks: opts.quirks } : {}) })
    const cps = p.checkpoints ?? demoCheckpoints(p.deviceId)
    const every = p.checkinEveryMs ?? 60_000
    let i = 0
    let timer: number | undefined
    const tick = () => {
      ;(d as PatrolDevice).arrive(cps[i++ % cps.length]!)
      timer = clock.setTimeout(tick, every)
    }
    timer = clock.setTimeout(tick, fleet.rng.next() * every)
    loops.push(() => clock.clearTimeout(timer))
  }
  for (const s of sensors)
    fleet.addSensor({ id: s.deviceId, secret: s.secret ?? defaultSecret(s.deviceId), metric: s.metric, ...(s.reportIntervalS ? { reportIntervalS: s.reportIntervalS } : {}), ...(opts.quirks ? { quirks: opts.quirks } : {}) })
  fleet.start()
  const saver = opts.stateFile ? setInterval(save, 2000) : undefined
  return {
    fleet,
    clock,
    transports,
    async stop() {
      for (const l of loops) l()
      clearInterval(saver)
      fleet.stop()
      clock.clearAll()
      await Promise.all([...transports.values()].map((t) => t.close()))
      save()
    },
  }
}
