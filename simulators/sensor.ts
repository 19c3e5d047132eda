// A component sensor: periodic telemetry with noise, slow drift and anomalies.
import { Device, type DeviceOptions } from './device.ts'
import type { Rng } from './prng.ts'
import type { TimerId } from './clock.ts'

export type SensorMetric = 'water_level' | 'tilt' | 'smoke' | 'temperature'

interface Model {
  unit: string
  base: number
  noise: number
  /** Daily swing amplitude (temperature). */
  diurnal?: number
}

export const SENSOR_MODELS: Record<SensorMetric, Model> = {
  water_level: { unit: 'm', base: 1.2, noise: 0.01 },
  tilt: { unit: 'deg', base: 0.5, noise: 0.1 },
  smoke: { unit: 'ppm', base: 4, noise: 1 },
  temperature: { unit: 'C', base: 18, noise: 0.3, diurnal: 6 },
}

export interface SensorOptions extends DeviceOptions {
  rng: Rng
  metric: SensorMetric
  reportIntervalS?: number
  /** Value drift per day (sensor ageing), in the metric's unit. */
  driftPerDay?: number
}

export class Sensor extends Device {
  readonly metric: SensorMetric
  private readonly model: Model
  private readonly rng: Rng
  private readonly driftPerDay: number
  private startedAtMs = 0
  private timer: TimerId | undefined
  private anomaly: { value: number; untilMs: number } | undefined

  constructor(opts: SensorOptions) {
    super(opts)
    this.metric = opts.metric
    this.model = SENSOR_MODELS[opts.metric]
    this.rng = opts.rng
    this.driftPerDay = opts.driftPerDay ?? 0
    this.reportIntervalS = opts.reportIntervalS ?? 300
    this.heartbeatIntervalS = opts.heartbeatIntervalS ?? 3600
  }

  protected override onStart(): void {
    this.startedAtMs = this.clock.now()
    this.schedule()
  }

  protected override onStop(): void {
    this.clock.clearTimeout(this.timer)
  }

  protected override onConfig(): void {
    this.schedule()
  }

  /** Holds the reading at `value` (plus noise) for `durationMs`: a flood, a lifted cover, a fire. */
  injectAnomaly(value: number, durationMs: number): void {
    this.anomaly = { value, untilMs: this.clock.now() + durationMs }
    this.event('anomaly', { metric: this.metric, value, durationMs })
  }

  /** The value the sensor reads now. */
  read(): number {
    const now = this.clock.now()
    const m = this.model
    let v = m.base + this.driftPerDay * ((now - this.startedAtMs) / 86_400_000)
    if (m.diurnal) v += m.diurnal * Math.sin(((now / 3_600_000 - 9) / 24) * 2 * Math.PI)
    if (this.anomaly && now < this.anomaly.untilMs) v = this.anomaly.value
    v += this.rng.normal(0, m.noise)
    return Math.round(v * 1000) / 1000
  }

  report(): void {
    this.emit({ kind: 'telemetry', telemetry: { readings: [{ metric: this.metric, value: this.read(), unit: this.model.unit }] } })
  }

  private schedule(): void {
    this.clock.clearTimeout(this.timer)
    // Sensors start at a random phase so a fleet does not report in lock-step.
    const first = this.rng.next() * this.reportIntervalS * 1000
    const tick = () => {
      if (!this.running) return
      this.report()
      this.timer = this.clock.setTimeout(tick, this.reportIntervalS * 1000)
    }
    this.timer = this.clock.setTimeout(tick, first)
  }
}
