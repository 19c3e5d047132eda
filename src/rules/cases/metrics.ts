import type { Instant } from '../tz.ts'
import type { CaseState } from './workflow.ts'

/**
 * Published case metrics (DESIGN: closure rate and on-time closure rate per
 * grid, street and department). Definitions, for a reporting period [from, to)
 * evaluated as of `asOf`:
 *
 * - 应结案数 `due`: cases filed (立案 — the first `accepted` event) within
 *   [from, to), excluding cases that are `rejected` at `asOf` (a voided case
 *   was never a real one). Cases only reported, never accepted, are not due.
 * - 结案数 `closed`: of those, cases whose state at `asOf` is `closed`
 *   (a closed case reopened later is not closed until it closes again).
 * - 按期结案数 `closedOnTime`: of the closed, those whose last close is at or
 *   before their closure deadline (`dueAt`: every stage allowance chained from
 *   the report, categories.ts `closureDue`).
 * - 结案率 closureRate = closed / due; 按期结案率 onTimeClosureRate =
 *   closedOnTime / due; both as percentages with two decimals, null when due = 0.
 * - `overdueOpen`: due cases not closed at `asOf` whose `dueAt` has passed.
 *
 * Facts must be derived (`factsFromEvents`) as of the same `asOf` the metrics use.
 */
export interface CaseFacts {
  readonly key: string
  readonly gridId: string
  readonly streetId: string | null
  readonly department: string | null
  /** State as of `asOf`. */
  readonly state: CaseState
  /** First acceptance (立案), null if never accepted. */
  readonly acceptedAt: Instant | null
  /** Last close, null unless the state is closed. */
  readonly closedAt: Instant | null
  readonly dueAt: Instant
}

export interface ClosureMetrics {
  readonly group: string
  readonly due: number
  readonly closed: number
  readonly closedOnTime: number
  readonly overdueOpen: number
  readonly closureRate: number | null
  readonly onTimeClosureRate: number | null
}

export type MetricsGroup = 'grid' | 'street' | 'department'

/** Derives facts from a case's audit trail (sorted by time), as of `asOf`. */
export function factsFromEvents(
  base: Pick<CaseFacts, 'key' | 'gridId' | 'streetId' | 'department' | 'dueAt'>,
  events: ReadonlyArray<{ readonly to: CaseState; readonly at: Instant }>,
  asOf: Instant,
): CaseFacts {
  const seen = events.filter((e) => e.at <= asOf)
  const state = seen.at(-1)?.to ?? 'reported'
  const acceptedAt = seen.find((e) => e.to === 'accepted')?.at ?? null
  const closedAt = state === 'closed' ? (seen.at(-1)?.at ?? null) : null
  return { ...base, state, acceptedAt, closedAt }
}

export function closureMetrics(cases: readonly CaseFacts[], opts: { by: MetricsGroup; from: Instant; to: Instant; asOf: Instant }): ClosureMetrics[] {
  const groupOf = (c: CaseFacts) => (opts.by === 'grid' ? c.gridId : opts.by === 'street' ? c.streetId : c.department) ?? '(none)'
  const groups = new Map<string, { due: number; closed: number; onTime: number; overdue: number }>()
  for (const c of cases) {
    if (c.acceptedAt === null || c.acceptedAt < opts.from || c.acceptedAt >= opts.to || c.state === 'rejected') continue
    const g = groups.get(groupOf(c)) ?? { due: 0, closed: 0, onTime: 0, overdue: 0 }
    g.due++
    if (c.state === 'closed' && c.closedAt !== null && c.closedAt <= opts.asOf) {
      g.closed++
      if (c.closedAt <= c.dueAt) g.onTime++
    } else if (opts.asOf > c.dueAt) {
      g.overdue++
    }
    groups.set(groupOf(c), g)
  }
  const pct = (n: number, d: number) => (d === 0 ? null : Math.round((n / d) * 10_000) / 100)
  return [...groups.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([group, g]) => ({
      group,
      due: g.due,
      closed: g.closed,
      closedOnTime: g.onTime,
      overdueOpen: g.overdue,
      closureRate: pct(g.closed, g.due),
      onTimeClosureRate: pct(g.onTime, g.due),
    }))
}

/**
 * Overdue flags of one case at `now`: 'stage' when it waits past its stage
 * deadline, 'closure' when it is not closed (nor rejected) past its closure
 * deadline; both, one or none.
 */
export function overdueFlags(c: { readonly state: CaseState; readonly stageDueAtMs: number | null; readonly closureDueAtMs: number }, now: Instant): Array<'stage' | 'closure'> {
  const out: Array<'stage' | 'closure'> = []
  if (c.stageDueAtMs !== null && now > c.stageDueAtMs) out.push('stage')
  if (c.state !== 'closed' && c.state !== 'rejected' && now > c.closureDueAtMs) out.push('closure')
  return out
}
