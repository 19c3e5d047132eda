import { episodeWindow } from '../cases/dedup-key.ts'
import { byKey, proposal, type CaseProposal } from '../cases/proposal.ts'
import type { CoverageResult } from './evaluate.ts'

export const PATROL_MISS = 'patrol_miss'
export const PATROL_GAP = 'patrol_gap'

/**
 * Cases a coverage result raises: one per missed (checkpoint, window), one per
 * final over-long gap (keyed by the gap's start, so the same gap seen from two
 * days' reports is one case). Pending cells and provisional gaps raise nothing
 * yet: late uploads may still fill them.
 */
export function coverageCaseProposals(r: CoverageResult, categories = { miss: 'patrol_miss', gap: 'patrol_gap' }): CaseProposal[] {
  const out: CaseProposal[] = []
  const windows = new Map(r.windows.map((w) => [w.key, w]))
  for (const c of r.cells) {
    if (c.status !== 'missed') continue
    const w = windows.get(c.windowKey)
    out.push(
      proposal({
        rule: PATROL_MISS,
        gridId: r.gridId,
        subject: c.checkpointId,
        window: c.windowKey,
        category: categories.miss,
        priority: 'normal',
        title: `Checkpoint ${c.checkpointId} missed in window ${c.windowKey} (${c.visits}/${c.required} visits)`,
        detectedAt: w?.closesAt ?? r.evaluatedAt,
        evidence: c.evidence,
        detail: { visits: c.visits, required: c.required },
      }),
    )
  }
  for (const g of r.gaps) {
    if (!g.final) continue
    out.push(
      proposal({
        rule: PATROL_GAP,
        gridId: r.gridId,
        subject: g.checkpointId,
        window: episodeWindow(g.from),
        category: categories.gap,
        priority: 'normal',
        title: `Checkpoint ${g.checkpointId} unvisited for ${g.minutes} min`,
        detectedAt: g.to,
        evidence: [g.fromCheckinId, g.toCheckinId].filter((x): x is string => x !== null),
        detail: { minutes: g.minutes, from: episodeWindow(g.from), to: episodeWindow(g.to), fromKind: g.fromKind, toKind: g.toKind },
      }),
    )
  }
  return out.sort(byKey)
}
