import { z } from 'zod'
import { episodeWindow } from './cases/dedup-key.ts'
import { byKey, proposal, type CaseProposal } from './cases/proposal.ts'
import type { Instant } from './tz.ts'

export const BATTERY_RULE = 'low_battery'

export const batteryConfigSchema = z
  .object({
    lowPercent: z.number().min(0).max(100).default(20).describe('At or below this the battery is low'),
    recoverPercent: z.number().min(0).max(100).default(25).describe('At or above this a low battery counts as recovered (hysteresis)'),
    criticalPercent: z.number().min(0).max(100).default(5).describe('At or below this the case is urgent'),
    category: z.string().min(1).default('low_battery').describe('Case category'),
  })
  .prefault({})
  .refine((c) => c.recoverPercent >= c.lowPercent, { message: 'must be at least lowPercent', path: ['recoverPercent'] })
  .refine((c) => c.criticalPercent <= c.lowPercent, { message: 'must be at most lowPercent', path: ['criticalPercent'] })

export type BatteryConfig = z.output<typeof batteryConfigSchema>

export interface BatteryReading {
  readonly id: string
  readonly deviceId: string
  readonly gridId: string
  readonly percent: number
  readonly at: Instant
}

/**
 * A case for each device whose latest low-battery spell is still going: keyed by
 * the spell's first low reading, so the same spell re-seen is the same case and
 * a recharge followed by a new spell is a new one. Readings after `now` are ignored.
 */
export function evaluateBattery(config: BatteryConfig, readings: readonly BatteryReading[], now: Instant): CaseProposal[] {
  const byDevice = new Map<string, BatteryReading[]>()
  for (const r of readings) {
    if (r.at > now) continue
    byDevice.set(r.deviceId, [...(byDevice.get(r.deviceId) ?? []), r])
  }
  const out: CaseProposal[] = []
  for (const list of byDevice.values()) {
    list.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    let start: BatteryReading | undefined
    for (const r of list) {
      if (!start && r.percent <= config.lowPercent) start = r
      else if (start && r.percent >= config.recoverPercent) start = undefined
    }
    const last = list[list.length - 1]
    if (!start || !last) continue
    out.push(
      proposal({
        rule: BATTERY_RULE,
        gridId: last.gridId,
        subject: last.deviceId,
        window: episodeWindow(start.at),
        category: config.category,
        priority: last.percent <= config.criticalPercent ? 'urgent' : 'normal',
        title: `Device ${last.deviceId} battery low (${last.percent}%)`,
        detectedAt: start.at,
        evidence: [...new Set([start.id, last.id])],
        detail: { percent: last.percent, lowSince: episodeWindow(start.at) },
      }),
    )
  }
  return out.sort(byKey)
}
