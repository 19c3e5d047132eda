import { z } from 'zod'
import { episodeWindow } from './cases/dedup-key.ts'
import { byKey, proposal, type CaseProposal } from './cases/proposal.ts'
import type { Instant } from './tz.ts'

const MINUTE = 60_000
export const THRESHOLD_RULE = 'sensor_threshold'

export const thresholdConfigSchema = z
  .object({
    metric: z.string().min(1).describe('Telemetry metric this rule watches (e.g. water_level_cm)'),
    above: z.number().optional().describe('Breach when the value is above this'),
    below: z.number().optional().describe('Breach when the value is below this'),
    forMinutes: z.number().min(0).default(10).describe('A breach must hold this long (first to last breaching reading)'),
    maxSampleGapMinutes: z
      .number()
      .positive()
      .default(15)
      .describe('Readings further apart than this break a run (no data is not proof of a breach)'),
    category: z.string().min(1).default('sensor_threshold').describe('Case category'),
    priority: z.enum(['normal', 'urgent']).default('normal').describe('Case priority'),
  })
  .refine((c) => c.above !== undefined || c.below !== undefined, { message: 'set above and/or below', path: ['above'] })

export type ThresholdConfig = z.output<typeof thresholdConfigSchema>

export interface SensorReading {
  readonly id: string
  readonly sensorId: string
  readonly gridId: string
  readonly metric: string
  readonly value: number
  readonly at: Instant
}

/**
 * One case per run of breaching readings held at least `forMinutes`, keyed by
 * the run's first reading. Evidence: the first, the peak and the last reading.
 */
export function evaluateThreshold(config: ThresholdConfig, readings: readonly SensorReading[], now: Instant): CaseProposal[] {
  const breach = (v: number) => (config.above !== undefined && v > config.above) || (config.below !== undefined && v < config.below)
  const excess = (v: number) => Math.max(config.above !== undefined ? v - config.above : 0, config.below !== undefined ? config.below - v : 0)
  const bySensor = new Map<string, SensorReading[]>()
  for (const r of readings) {
    if (r.metric !== config.metric || r.at > now) continue
    bySensor.set(r.sensorId, [...(bySensor.get(r.sensorId) ?? []), r])
  }
  const out: CaseProposal[] = []
  for (const list of bySensor.values()) {
    list.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const latest = list[list.length - 1]
    let run: SensorReading[] = []
    const flush = () => {
      const first = run[0]
      const last = run[run.length - 1]
      if (!first || !last || last.at - first.at < config.forMinutes * MINUTE) return
      const peak = run.reduce((p, r) => (excess(r.value) > excess(p.value) ? r : p), first)
      const reached = run.find((r) => r.at - first.at >= config.forMinutes * MINUTE) ?? last
      out.push(
        proposal({
          rule: THRESHOLD_RULE,
          gridId: first.gridId,
          subject: first.sensorId,
          window: `${config.metric}/${episodeWindow(first.at)}`,
          category: config.category,
          priority: config.priority,
          title: `Sensor ${first.sensorId} ${config.metric} beyond threshold for ${Math.floor((last.at - first.at) / MINUTE)} min`,
          detectedAt: reached.at,
          evidence: [...new Set([first.id, peak.id, last.id])],
          detail: { metric: config.metric, peak: peak.value, minutes: Math.floor((last.at - first.at) / MINUTE), ongoing: last === latest },
        }),
      )
    }
    for (const r of list) {
      const prev = run[run.length - 1]
      if (!breach(r.value) || (prev && r.at - prev.at > config.maxSampleGapMinutes * MINUTE)) {
        flush()
        run = []
      }
      if (breach(r.value)) run.push(r)
    }
    flush()
  }
  return out.sort(byKey)
}
