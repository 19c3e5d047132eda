import type { Store } from '../../store/types.ts'
import type { Instant } from '../tz.ts'
import { closureMetrics, factsFromEvents, type ClosureMetrics, type MetricsGroup } from './metrics.ts'

/**
 * Closure rate and on-time closure rate (结案率, 按期结案率) per grid, street or
 * department for cases filed in [from, to), as of `asOf` (metrics.ts has the
 * definitions). The store hands over the filed cases and their state changes;
 * the figures are computed by the pure metrics code.
 */
export async function caseStats(store: Pick<Store, 'cases'>, opts: { by: MetricsGroup; from: Instant; to: Instant; asOf: Instant }): Promise<ClosureMetrics[]> {
  const rows = await store.cases.closureRows({ acceptedFromMs: opts.from, acceptedToMs: opts.to })
  const facts = rows.map((r) =>
    factsFromEvents(
      { key: r.dedupKey, gridId: r.gridId, streetId: r.streetId, department: r.department, dueAt: r.closureDueAtMs },
      r.events.map((e) => ({ to: e.to, at: e.atMs })),
      opts.asOf,
    ),
  )
  return closureMetrics(facts, opts)
}
