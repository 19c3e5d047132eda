// Runs a scenario and writes down what really happened (the ground truth) so
// tests can compare what the system concluded with it.
import { encodeCommand, type Uplink } from '../firmware-protocol/index.ts'
import { VirtualClock, type Clock } from './clock.ts'
import type { Device, DeviceObserver } from './device.ts'
import { Fleet, defaultSecret } from './fleet.ts'
import { judgePlan, type TrueCoverage, type TrueGap, type TrueMiss, type TrueVisit, type TrueWindow } from './ground-truth.ts'
import { addDays, localToInstant, parseHhmm } from './local-time.ts'
import { MemoryNetwork, type NetMessage } from './memory-network.ts'
import { PatrolDevice, type Checkpoint } from './patrol.ts'
import { gridsOf, toRulesPlan, type Scenario, type ScenarioFault } from './scenario.ts'
import { Sensor } from './sensor.ts'
import type { Transport } from './transport.ts'

const MINUTE = 60_000

export interface TrueAlarm {
  deviceId: string
  kind: string
  seq: number
  trueTimeMs: number
  deviceTimeMs: number
  delivery: 'live' | 'batch' | 'undelivered'
  deliveredAtMs?: number
}

export interface TrueFault {
  kind: ScenarioFault['kind']
  deviceId: string
  trueTimeMs: number
  /** The device's clock at injection. */
  deviceTimeMs: number
  params: Record<string, unknown>
}

/** The ground-truth document (JSON). Times are Unix ms; "true" = simulation time. */
export interface GroundTruth {
  format: 'gridpatrol-ground-truth/1'
  scenario: string
  seed: number
  timeZone: string
  startMs: number
  endMs: number
  /** End of the drain period after endMs during which backlogs could upload. */
  drainedUntilMs: number
  /** The plans in the rules' input shape (feed to src/rules/plans parsePlan). */
  plans: Record<string, unknown>[]
  grids: { gridId: string; districtId: string; streetId: string; checkpointIds: string[] }[]
  devices: { deviceId: string; type: 'patrol' | 'sensor'; gridId?: string; bootCount: number; lastSeq: number; undelivered: number; clockErrorMs: number }[]
  visits: TrueVisit[]
  alarms: TrueAlarm[]
  windows: (TrueWindow & { gridId: string })[]
  misses: TrueMiss[]
  gaps: TrueGap[]
  coverage: TrueCoverage[]
  faults: TrueFault[]
  /** Device events: skipped checkpoints, lost visits, reboots, clock sets, dead batteries... */
  events: { deviceId: string; kind: string; trueTimeMs: number; detail?: Record<string, unknown> }[]
  totals: { envelopes: number; delivered: number; undelivered: number; serverMessages: number; batches: number; duplicateSends: number }
}

export interface RunOptions {
  /** Default: a VirtualClock (the fastest); give a RealClock for real-broker runs. */
  clock?: Clock
  /** Default: an in-memory network on the clock. */
  transportFor?: (deviceId: string, secret: string) => Transport
  /** Receives every message the in-memory server gets (e.g. to feed an ingest). */
  sink?: (m: NetMessage) => void
  /** Called about once per simulated hour (virtual) or per second (real). */
  onProgress?: (fraction: number, nowMs: number, fleet: Fleet) => void
  /** Sends a command to a device over the real broker (time_sync faults); memory runs need none. */
  sendCommand?: (deviceId: string, payload: Uint8Array) => void
}

function faultTime(s: Scenario, f: ScenarioFault): number {
  if (/^\d\d:\d\d$/.test(f.at)) return localToInstant(s.timeZone, addDays(s.start, f.day - 1), parseHhmm(f.at))
  return Date.parse(f.at)
}

export interface ScenarioRun {
  fleet: Fleet
  network: MemoryNetwork | undefined
  startMs: number
  endMs: number
  /** Runs to the end (plus drain) and returns the ground truth. */
  run(): Promise<GroundTruth>
}

/** Builds the fleet, schedules rounds and faults; `run()` simulates and judges. */
export function prepareScenario(s: Scenario, opts: RunOptions = {}): ScenarioRun {
  const startMs = localToInstant(s.timeZone, s.start, 0)
  const endMs = localToInstant(s.timeZone, addDays(s.start, s.days), 0)
  const drainedUntilMs = endMs + s.drainMinutes * MINUTE
  const clock = opts.clock ?? new VirtualClock(startMs)
  const network = opts.transportFor ? undefined : new MemoryNetwork(clock, { latencyMs: s.latencyMs, ...(opts.sink ? { sink: opts.sink } : {}) })
  const grids = gridsOf(s)
  const checkpoints = new Map<string, { gridId: string; cp: Checkpoint }>()
  for (const { grid } of grids)
    for (const c of grid.checkpoints) checkpoints.set(c.id, { gridId: grid.id, cp: { id: c.id, tagId: c.tagId ?? '', method: c.method, lat: c.lat, lon: c.lon } })

  // --- the recorder (DeviceObserver) ---
  const created = new Map<string, Uplink>()
  const visits: TrueVisit[] = []
  const visitByKey = new Map<string, TrueVisit>()
  const alarms: TrueAlarm[] = []
  const alarmByKey = new Map<string, TrueAlarm>()
  const events: GroundTruth['events'] = []
  let delivered = 0
  let envelopes = 0
  const key = (d: Device, seq: number) => `${d.id}\u0000${seq}`
  const observer: DeviceObserver = {
    created(d, env, trueMs) {
      envelopes++
      if (env.kind === 'checkin') created.set(key(d, env.seq), env)
      if (env.kind === 'alarm') {
        const a: TrueAlarm = { deviceId: d.id, kind: env.alarm.kind, seq: env.seq, trueTimeMs: trueMs, deviceTimeMs: env.deviceTimeMs, delivery: 'undelivered' }
        alarms.push(a)
        alarmByKey.set(key(d, env.seq), a)
      }
    },
    delivered(d, env, via, trueMs) {
      delivered++
      const r = visitByKey.get(key(d, env.seq)) ?? alarmByKey.get(key(d, env.seq))
      if (r && r.delivery === 'undelivered') {
        r.delivery = via
        r.deliveredAtMs = trueMs
      }
    },
    event(d, kind, trueMs, detail) {
      if (kind === 'visit' && detail) {
        const seq = detail.seq as number
        const env = created.get(key(d, seq))
        created.delete(key(d, seq))
        const where = checkpoints.get(detail.checkpointId as string)!
        const v: TrueVisit = { deviceId: d.id, gridId: where.gridId, checkpointId: where.cp.id, tagId: where.cp.tagId, trueTimeMs: trueMs, deviceTimeMs: env?.deviceTimeMs ?? 0, seq, delivery: 'undelivered' }
        visits.push(v)
        visitByKey.set(key(d, seq), v)
        return
      }
      if (kind === 'online' || kind === 'offline' || kind === 'command') return
      events.push({ deviceId: d.id, kind, trueTimeMs: trueMs, ...(detail ? { detail } : {}) })
    },
  }

  const fleet = new Fleet({
    clock,
    seed: s.seed,
    observer,
    transportFor: opts.transportFor ?? ((id) => network!.transport(id)),
  })
  for (const d of s.devices) {
    const common = { id: d.id, secret: d.secret ?? defaultSecret(d.id), clockDriftPpm: d.clock.driftPpm, clockOffsetMs: d.clock.offsetMs, heartbeatIntervalS: d.heartbeatIntervalS }
    if (d.type === 'patrol') {
      fleet.addPatrol({ ...common, ...(d.badgeId ? { badgeId: d.badgeId } : {}), walkSpeedMps: d.route.walkSpeedMps, dwellS: d.route.dwellS, drainPerHour: d.battery.drainPerHour, batteryPct: d.battery.startPct })
    } else {
      fleet.addSensor({ ...common, metric: d.metric, reportIntervalS: d.reportIntervalS, driftPerDay: d.driftPerDay })
    }
  }

  const faults: TrueFault[] = []
  let cmdSeq = 0
  const sendCommand = (id: string, payload: Uint8Array) => (network ? network.sendCommand(id, payload) : opts.sendCommand?.(id, payload))
  const inject = (f: ScenarioFault) => {
    const dev = fleet.get(f.device)!
    const { device: _d, at: _a, day: _y, kind, ...params } = f
    faults.push({ kind, deviceId: dev.id, trueTimeMs: clock.now(), deviceTimeMs: dev.deviceClock.now(), params })
    const later = (minutes: number, fn: () => void) => clock.setTimeout(fn, minutes * MINUTE)
    switch (f.kind) {
      case 'offline':
        dev.setNetwork(false)
        return later(f.durationMinutes, () => dev.setNetwork(true))
      case 'skip':
        return (dev as PatrolDevice).skipDuring(f.checkpointId, clock.now(), clock.now() + f.durationMinutes * MINUTE)
      case 'clock_drift':
        dev.deviceClock.set(dev.deviceClock.now())
        dev.deviceClock.driftPpm = f.ppm
        return
      case 'clock_reset':
        return dev.deviceClock.set(f.toMs)
      case 'time_sync':
        return sendCommand(dev.id, encodeCommand({ commandId: `sync-${++cmdSeq}`, issuedMs: clock.now(), expiresMs: 0, kind: 'time_sync', timeSync: { serverTimeMs: clock.now() } }))
      case 'duplicate':
        return dev.duplicateSends(f.count)
      case 'ack_loss':
        return network?.loseAcks(dev.id, f.count)
      case 'reboot':
        return dev.reboot(f.durationMinutes * MINUTE)
      case 'power_off':
        dev.stop()
        if (f.durationMinutes)
          later(f.durationMinutes, () => {
            dev.setNetwork(true)
            dev.start()
          })
        return
      case 'low_battery':
        return (dev as PatrolDevice).setBattery(f.pct)
      case 'sos':
      case 'man_down':
      case 'tamper':
        return (dev as PatrolDevice).alarm(f.kind, 'scenario fault')
      case 'anomaly':
        return (dev as Sensor).injectAnomaly(f.value, f.durationMinutes * MINUTE)
    }
  }

  const at = (ms: number, fn: () => void) => clock.setTimeout(fn, ms - clock.now())
  at(startMs, () => {
    fleet.start()
    for (const d of s.devices) {
      if (d.type !== 'patrol') continue
      const dev = fleet.get(d.id) as PatrolDevice
      const grid = grids.find((g) => g.grid.id === d.gridId)!.grid
      const route = (d.route.checkpointIds ?? grid.checkpoints.map((c) => c.id)).map((id) => checkpoints.get(id)!.cp)
      for (let day = 0; day < s.days; day++)
        for (const r of d.route.rounds) {
          const t = localToInstant(s.timeZone, addDays(s.start, day), parseHhmm(r))
          at(t, () => dev.planRound(t, route))
        }
    }
  })
  for (const f of s.faults) at(faultTime(s, f), () => inject(f))

  const run = async (): Promise<GroundTruth> => {
    const total = drainedUntilMs - clock.now()
    const from = clock.now()
    if (clock instanceof VirtualClock) {
      // An hour at a time, yielding to the event loop so progress can be shown.
      while (clock.now() < drainedUntilMs) {
        clock.runUntil(Math.min(drainedUntilMs, clock.now() + 3_600_000))
        opts.onProgress?.((clock.now() - from) / total, clock.now(), fleet)
        await new Promise((r) => setImmediate(r))
      }
    } else {
      while (clock.now() < drainedUntilMs) {
        await new Promise((r) => setTimeout(r, 1000))
        opts.onProgress?.(Math.min(1, (clock.now() - from) / total), clock.now(), fleet)
      }
    }
    fleet.stop()
    return judge()
  }

  const judge = (): GroundTruth => {
    const truth: GroundTruth = {
      format: 'gridpatrol-ground-truth/1',
      scenario: s.name,
      seed: s.seed,
      timeZone: s.timeZone,
      startMs,
      endMs,
      drainedUntilMs,
      plans: s.plans.map((p) => toRulesPlan(s, p)),
      grids: grids.map((g) => ({ gridId: g.grid.id, districtId: g.districtId, streetId: g.streetId, checkpointIds: g.grid.checkpoints.map((c) => c.id) })),
      devices: [...fleet.devices.values()].map((d) => ({
        deviceId: d.id,
        type: d instanceof PatrolDevice ? ('patrol' as const) : ('sensor' as const),
        ...(s.devices.find((x) => x.id === d.id)?.gridId ? { gridId: s.devices.find((x) => x.id === d.id)!.gridId! } : {}),
        bootCount: d.state.bootCount,
        lastSeq: d.state.nextSeq - 1,
        undelivered: d.backlog,
        clockErrorMs: d.deviceClock.error(),
      })),
      visits: visits.filter((v) => v.trueTimeMs < endMs),
      alarms,
      windows: [],
      misses: [],
      gaps: [],
      coverage: [],
      faults,
      events,
      totals: {
        envelopes,
        delivered,
        undelivered: [...fleet.devices.values()].reduce((n, d) => n + d.backlog, 0),
        serverMessages: network?.received ?? 0,
        batches: fleet.stats().batches,
        duplicateSends: fleet.stats().duplicates,
      },
    }
    for (const p of s.plans) {
      const grid = grids.find((g) => g.grid.id === p.gridId)!.grid
      const ids = p.checkpointIds ?? grid.checkpoints.map((c) => c.id)
      const r = judgePlan(p, ids, truth.visits, s.start, s.days)
      truth.windows.push(...r.windows.map((w) => ({ ...w, gridId: p.gridId })))
      truth.misses.push(...r.misses)
      truth.gaps.push(...r.gaps)
      truth.coverage.push(...r.coverage)
    }
    return truth
  }

  return { fleet, network, startMs, endMs, run }
}

/** Runs `s` on a virtual clock (unless told otherwise) and returns the ground truth. */
export async function runScenario(s: Scenario, opts: RunOptions = {}): Promise<GroundTruth> {
  return prepareScenario(s, opts).run()
}
