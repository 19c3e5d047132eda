import { z } from 'zod'
import { episodeWindow } from './cases/dedup-key.ts'
import { byKey, proposal, type CaseProposal } from './cases/proposal.ts'
import type { Instant } from './tz.ts'

export const ALARM_RULE = 'alarm'

export const alarmConfigSchema = z
  .object({
    kinds: z
      .array(z.string().min(1))
      .min(1)
      .default(['sos', 'tamper', 'man_down'])
      .describe('Alarm kinds that raise an urgent case; others are ignored'),
    mergeSeconds: z
      .number()
      .min(0)
      .default(300)
      .describe('Alarms of one kind from one device closer than this to the previous join the same case'),
    category: z.string().min(1).default('alarm').describe('Case category'),
  })
  .prefault({})

export type AlarmConfig = z.output<typeof alarmConfigSchema>

export interface AlarmRow {
  readonly id: string
  readonly deviceId: string
  readonly gridId: string
  readonly kind: string
  readonly at: Instant
  readonly lat?: number | null
  readonly lon?: number | null
}

/** One urgent case per burst of alarms (kind, device), keyed by the burst's first alarm. */
export function evaluateAlarms(config: AlarmConfig, alarms: readonly AlarmRow[], now: Instant): CaseProposal[] {
  const groups = new Map<string, AlarmRow[]>()
  for (const a of alarms) {
    if (a.at > now || !config.kinds.includes(a.kind)) continue
    const k = `${a.deviceId}\u0000${a.kind}`
    groups.set(k, [...(groups.get(k) ?? []), a])
  }
  const out: CaseProposal[] = []
  for (const list of groups.values()) {
    list.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    let burst: AlarmRow[] = []
    const flush = () => {
      const first = burst[0]
      const last = burst[burst.length - 1]
      if (!first || !last) return
      out.push(
        proposal({
          rule: ALARM_RULE,
          gridId: first.gridId,
          subject: first.deviceId,
          window: `${first.kind}/${episodeWindow(first.at)}`,
          category: config.category,
          priority: 'urgent',
          title: `${first.kind.toUpperCase()} alarm from device ${first.deviceId}`,
          detectedAt: first.at,
          evidence: burst.map((a) => a.id),
          detail: { kind: first.kind, count: burst.length, lastAt: episodeWindow(last.at), lat: last.lat ?? null, lon: last.lon ?? null },
        }),
      )
    }
    for (const a of list) {
      const prev = burst[burst.length - 1]
      if (prev && a.at - prev.at >= config.mergeSeconds * 1000) {
        flush()
        burst = []
      }
      burst.push(a)
    }
    flush()
  }
  return out.sort(byKey)
}
