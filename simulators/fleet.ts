// Many devices in one process on one clock, with one seeded PRNG: a run is
// reproducible from (scenario, seed). Transports are injected: memory for
// virtual-time runs, mqtt.js for real brokers.
import type { Clock } from './clock.ts'
import type { Device, DeviceObserver, DeviceQuirks, DeviceState } from './device.ts'
import { PatrolDevice } from './patrol.ts'
import { createRng, type Rng } from './prng.ts'
import { Sensor, type SensorMetric } from './sensor.ts'
import type { Transport } from './transport.ts'

export interface FleetOptions {
  clock: Clock
  seed: number
  transportFor(deviceId: string, secret: string): Transport
  observer?: DeviceObserver
  /** Device states to restore (seq counters survive process restarts), by device id. */
  states?: Map<string, DeviceState>
  persist?: (state: DeviceState) => void
}

interface Common {
  id: string
  /** Default: `secret-{id}`. */
  secret?: string
  clockDriftPpm?: number
  clockOffsetMs?: number
  heartbeatIntervalS?: number
  quirks?: DeviceQuirks
}

export interface PatrolSpec extends Common {
  badgeId?: string
  walkSpeedMps?: number
  dwellS?: number
  drainPerHour?: number
  batteryPct?: number
}

export interface SensorSpec extends Common {
  metric: SensorMetric
  reportIntervalS?: number
  driftPerDay?: number
}

export const defaultSecret = (id: string) => `secret-${id}`

export class Fleet {
  readonly devices = new Map<string, Device>()
  readonly rng: Rng

  constructor(private readonly opts: FleetOptions) {
    this.rng = createRng(opts.seed)
  }

  private common(spec: Common) {
    const o = this.opts
    const state = o.states?.get(spec.id)
    return {
      clock: o.clock,
      deviceId: spec.id,
      transport: o.transportFor(spec.id, spec.secret ?? defaultSecret(spec.id)),
      rng: this.rng.fork(spec.id),
      ...(state ? { state } : {}),
      ...(o.observer ? { observer: o.observer } : {}),
      ...(o.persist ? { persist: o.persist } : {}),
      ...(spec.quirks ? { quirks: spec.quirks } : {}),
      ...(spec.heartbeatIntervalS ? { heartbeatIntervalS: spec.heartbeatIntervalS } : {}),
      clockDriftPpm: spec.clockDriftPpm ?? 0,
      clockOffsetMs: spec.clockOffsetMs ?? 0,
    }
  }

  addPatrol(spec: PatrolSpec): PatrolDevice {
    const d = new PatrolDevice({
      ...this.common(spec),
      ...(spec.badgeId ? { badgeId: spec.badgeId } : {}),
      ...(spec.walkSpeedMps ? { walkSpeedMps: spec.walkSpeedMps } : {}),
      ...(spec.dwellS !== undefined ? { dwellS: spec.dwellS } : {}),
      ...(spec.drainPerHour !== undefined ? { drainPerHour: spec.drainPerHour } : {}),
    })
    if (spec.batteryPct !== undefined) d.batteryPct = spec.batteryPct
    this.devices.set(spec.id, d)
    return d
  }

  addSensor(spec: SensorSpec): Sensor {
    const d = new Sensor({ ...this.common(spec), metric: spec.metric, ...(spec.reportIntervalS ? { reportIntervalS: spec.reportIntervalS } : {}), driftPerDay: spec.driftPerDay ?? 0 })
    this.devices.set(spec.id, d)
    return d
  }

  get(id: string): Device | undefined {
    return this.devices.get(id)
  }

  start(): void {
    for (const d of this.devices.values()) d.start()
  }

  stop(): void {
    for (const d of this.devices.values()) d.stop()
  }

  /** Totals over every device. */
  stats() {
    const t = { devices: this.devices.size, online: 0, backlog: 0, created: 0, published: 0, acked: 0, failed: 0, batches: 0, commands: 0, duplicates: 0 }
    for (const d of this.devices.values()) {
      if (d.online) t.online++
      t.backlog += d.backlog
      for (const k of ['created', 'published', 'acked', 'failed', 'batches', 'commands', 'duplicates'] as const) t[k] += d.stats[k]
    }
    return t
  }
}
