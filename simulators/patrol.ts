// A patrol device (guard-tour reader): walks rounds over checkpoints at walking
// speed, checks in by tag or GPS fix, drains its battery, raises alarms.
import type { ReadMethod } from '../firmware-protocol/index.ts'
import { Device, type DeviceOptions } from './device.ts'
import type { Rng } from './prng.ts'

export interface Checkpoint {
  id: string
  /** Tag id read at the checkpoint; for method 'gps' the check-in carries a fix instead. */
  tagId: string
  method: ReadMethod
  lat: number
  lon: number
}

export interface PlannedVisit {
  checkpoint: Checkpoint
  atMs: number
}

export interface PatrolOptions extends DeviceOptions {
  rng: Rng
  badgeId?: string
  /** Walking speed, m/s (default 1.2). */
  walkSpeedMps?: number
  /** Time spent at each checkpoint, s (default 20). */
  dwellS?: number
  /** Battery % per hour awake (default 2) and per check-in (default 0.02). */
  drainPerHour?: number
  drainPerCheckin?: number
}

const EARTH_M = 6_371_000
export function distanceM(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_M * Math.asin(Math.min(1, Math.sqrt(h)))
}

interface SkipRule {
  checkpointId: string | undefined
  fromMs: number
  toMs: number
}

export class PatrolDevice extends Device {
  readonly badgeId: string | undefined
  private readonly rng: Rng
  private readonly speed: number
  private readonly dwellMs: number
  private readonly drainPerHour: number
  private readonly drainPerCheckin: number
  private position: { lat: number; lon: number } | undefined
  private skips: SkipRule[] = []
  private batteryAtMs = 0
  private lowAlarmArmed = true
  readonly visits: { checkpointId: string; seq: number; trueMs: number }[] = []

  constructor(opts: PatrolOptions) {
    super(opts)
    this.rng = opts.rng
    this.badgeId = opts.badgeId
    this.speed = opts.walkSpeedMps ?? 1.2
    this.dwellMs = (opts.dwellS ?? 20) * 1000
    this.drainPerHour = opts.drainPerHour ?? 2
    this.drainPerCheckin = opts.drainPerCheckin ?? 0.02
  }

  protected override onStart(): void {
    this.batteryAtMs = this.clock.now()
  }

  /**
   * Walks `checkpoints` in order starting at `startMs` (true time): the time between
   * two checkpoints is their distance at walking speed plus the dwell. Schedules the
   * check-ins and returns the plan.
   */
  planRound(startMs: number, checkpoints: readonly Checkpoint[]): PlannedVisit[] {
    const plan: PlannedVisit[] = []
    let t = startMs
    let prev: Checkpoint | undefined
    for (const cp of checkpoints) {
      if (prev) t += (distanceM(prev, cp) / this.speed) * 1000 * (0.9 + 0.2 * this.rng.next()) + this.dwellMs
      plan.push({ checkpoint: cp, atMs: Math.round(t) })
      prev = cp
    }
    for (const v of plan) this.clock.setTimeout(() => this.arrive(v.checkpoint), v.atMs - this.clock.now())
    return plan
  }

  /** The patroller walks past `checkpointId` (all when undefined) without checking in during [from, to). */
  skipDuring(checkpointId: string | undefined, fromMs: number, toMs: number): void {
    this.skips.push({ checkpointId, fromMs, toMs })
  }

  /** Sets the battery level now (a fault, or a recharge). */
  setBattery(pct: number): void {
    this.drain(0)
    this.batteryPct = pct
    if (pct > this.lowBatteryPct + 5) this.lowAlarmArmed = true
    this.drain(0)
  }

  /** Arrival at a checkpoint: check in unless skipping or powered off. */
  arrive(cp: Checkpoint): void {
    const now = this.clock.now()
    if (!this.running) {
      this.event('visit_lost', { checkpointId: cp.id, reason: 'device off' })
      return
    }
    if (this.skips.some((s) => (s.checkpointId === undefined || s.checkpointId === cp.id) && now >= s.fromMs && now < s.toMs)) {
      this.event('skipped', { checkpointId: cp.id })
      return
    }
    this.checkIn(cp)
  }

  checkIn(cp: Checkpoint): void {
    this.position = { lat: cp.lat, lon: cp.lon }
    this.drain(this.drainPerCheckin)
    if (!this.running) return
    const gps = cp.method === 'gps'
    const fix = gps ? { lat: cp.lat + this.rng.normal(0, 3e-5), lon: cp.lon + this.rng.normal(0, 3e-5), accuracyM: 5 + Math.round(this.rng.next() * 10) } : undefined
    const env = this.emit({
      kind: 'checkin',
      checkin: {
        tagId: gps ? '' : cp.tagId,
        method: cp.method,
        ...(fix ? { fix } : {}),
        ...(this.badgeId ? { badgeId: this.badgeId } : {}),
        batteryPct: Math.max(0, Math.round(this.batteryPct)),
      },
    })
    this.visits.push({ checkpointId: cp.id, seq: env.seq, trueMs: this.clock.now() })
    this.event('visit', { checkpointId: cp.id, seq: env.seq, deviceTimeMs: env.deviceTimeMs })
  }

  alarm(kind: 'sos' | 'man_down' | 'tamper', detail?: string): void {
    if (!this.running) return
    this.raiseAlarm(kind, { ...(detail ? { detail } : {}), ...(this.badgeId ? { badgeId: this.badgeId } : {}), ...(this.position ?? {}) })
  }

  protected override statusExtras() {
    this.drain(0)
    return this.position ? { fix: { lat: this.position.lat, lon: this.position.lon, accuracyM: 10 } } : {}
  }

  /** Applies the hourly drain since the last update plus `extra` %, then the battery rules. */
  private drain(extra: number): void {
    const now = this.clock.now()
    this.batteryPct -= ((now - this.batteryAtMs) / 3_600_000) * this.drainPerHour + extra
    this.batteryAtMs = now
    if (this.batteryPct < this.lowBatteryPct && this.lowAlarmArmed && this.running && this.batteryPct > 0) {
      this.lowAlarmArmed = false
      this.raiseAlarm('low_battery', { detail: `battery ${Math.round(this.batteryPct)}%` })
    }
    if (this.batteryPct <= 0 && this.running) {
      this.batteryPct = 0
      this.event('battery_dead')
      this.stop()
    }
  }
}
