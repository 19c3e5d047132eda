import { z } from 'zod'
import { episodeWindow } from './cases/dedup-key.ts'
import { byKey, proposal, type CaseProposal } from './cases/proposal.ts'
import type { Instant } from './tz.ts'

const MINUTE = 60_000
export const OFFLINE_RULE = 'device_offline'

export const offlineConfigSchema = z
  .object({
    offlineMinutes: z.number().positive().default(30).describe('A device silent longer than this is offline'),
    category: z.string().min(1).default('device_offline').describe('Case category'),
  })
  .prefault({})

export type OfflineConfig = z.output<typeof offlineConfigSchema>

/**
 * `lastSeenAt` is the server's receipt time of the device's last message of any
 * kind — never the device clock, which is exactly what cannot be trusted when a
 * device goes quiet. A device never seen counts from its registration.
 */
export interface DevicePresence {
  readonly deviceId: string
  readonly gridId: string
  readonly lastSeenAt: Instant | null
  readonly registeredAt: Instant
}

/** One case per offline spell: keyed by the last-seen instant, so a new spell is a new case. */
export function evaluateOffline(config: OfflineConfig, devices: readonly DevicePresence[], now: Instant): CaseProposal[] {
  const limit = config.offlineMinutes * MINUTE
  const out: CaseProposal[] = []
  for (const d of devices) {
    const since = d.lastSeenAt ?? d.registeredAt
    if (now - since <= limit) continue
    out.push(
      proposal({
        rule: OFFLINE_RULE,
        gridId: d.gridId,
        subject: d.deviceId,
        window: episodeWindow(since),
        category: config.category,
        priority: 'normal',
        // Stable for the whole spell: a title that counted minutes would make every check an 'update'.
        title: `Device ${d.deviceId} offline (silent for more than ${config.offlineMinutes} min)`,
        detectedAt: since + limit,
        evidence: [],
        detail: { lastSeenAt: d.lastSeenAt === null ? null : episodeWindow(d.lastSeenAt), neverSeen: d.lastSeenAt === null },
      }),
    )
  }
  return out.sort(byKey)
}
