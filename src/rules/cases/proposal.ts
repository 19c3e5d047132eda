import type { Instant } from '../tz.ts'
import { caseKey } from './dedup-key.ts'

export type CasePriority = 'normal' | 'urgent'

/**
 * What a rule asks the runner to open (or keep open): the runner upserts by
 * `key` in one transaction. A proposal that disappears on re-evaluation means
 * the condition no longer holds (see revisions.ts `diffProposals`).
 */
export interface CaseProposal {
  readonly key: string
  readonly rule: string
  readonly gridId: string
  readonly subject: string | null
  readonly window: string | null
  readonly category: string
  readonly priority: CasePriority
  readonly title: string
  readonly detectedAt: Instant
  /** Row ids (check-ins, telemetry, alarms) the case rests on. */
  readonly evidence: readonly string[]
  readonly detail: Readonly<Record<string, string | number | boolean | null>>
}

export function proposal(p: Omit<CaseProposal, 'key'>): CaseProposal {
  return { key: caseKey(p), ...p }
}

export function byKey(a: CaseProposal, b: CaseProposal): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}
