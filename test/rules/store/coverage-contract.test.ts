// Contract: the store's SQL stage A (coverage.aggregates) equals the pure
// reference aggregateCheckins on the same rows — on the embedded driver always,
// on the server driver when DATABASE_URL is set.
import t from 'tap'
import { aggregateCheckins } from '../../../src/rules/coverage/aggregate.ts'
import { coverageQuery } from '../../../src/rules/coverage/query.ts'
import { scanBounds } from '../../../src/store/queries/coverage.ts'
import { generate } from './generate.ts'
import { drivers, loadGenerated, openRulesStore, plain } from './open.ts'

for (const driver of drivers()) {
  t.test(`SQL aggregate equals the reference (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const gens = [1, 2, 3].map((seed) => ({ seed, prefix: `s${seed}-`, g: generate(seed, '2024-05-10', `s${seed}-`) }))
    for (const { g, prefix } of gens) await loadGenerated(store, g, prefix)
    // what the store knows of clocks is what the reference gets
    const offsets = gens.flatMap(({ g }) => g.offsets)
    const maxOffset = Math.max(...offsets.map((o) => Math.abs(o.offsetMs)))
    const queries = gens.flatMap(({ g, seed }) =>
      g.plans.flatMap((plan) => ['2024-05-09', '2024-05-10', '2024-05-11'].map((date) => ({ seed, g, plan, date, query: coverageQuery(plan, date).query }))),
    )
    const many = await store.coverage.aggregatesMany(queries.map((q) => q.query))
    let kinds = new Set<string>()
    for (const [i, q] of queries.entries()) {
      const b = scanBounds(q.query, maxOffset)
      const tags = new Set(q.plan.checkpoints.flatMap((c) => [c.id, ...c.tagIds]))
      const rows = q.g.rows.filter((r) => r.deviceTime >= b.lo && r.deviceTime < b.hi && (tags.has(r.checkpointId ?? r.tagId) || r.deviceGridId === q.plan.gridId))
      const ref = aggregateCheckins(q.query, rows, offsets)
      t.strictSame(plain(many[i]), plain(ref), `seed ${q.seed} ${q.plan.gridId} ${q.date}: batched`)
      if (q.date === '2024-05-10') t.strictSame(plain(await store.coverage.aggregates(q.query)), plain(ref), `seed ${q.seed} ${q.plan.gridId}: single`)
      kinds = new Set([...kinds, ...ref.signals.map((s) => s.kind)])
      // GPS check-ins in no geofence (generate.ts, gpsRows): with the nearest checkpoint, and without a fix
      if (ref.signals.some((s) => s.kind === 'outside_geofence' && s.detail['nearestCheckpoint'] !== undefined)) kinds.add('outside_geofence_nearest')
      if (ref.signals.some((s) => s.kind === 'outside_geofence' && s.detail['lat'] === undefined)) kinds.add('outside_geofence_no_fix')
      // scans of checkpoints not in the plan (generate.ts, unplannedRows): registered (with its grid), and not
      if (ref.signals.some((s) => s.kind === 'unplanned_checkpoint' && s.detail['gridId'] !== undefined)) kinds.add('unplanned_checkpoint_grid')
      if (ref.signals.some((s) => s.kind === 'unplanned_checkpoint' && s.detail['gridId'] === undefined)) kinds.add('unplanned_checkpoint_no_grid')
      if (ref.previousVisits.length > 0) kinds.add('previous_visits')
      if (ref.periods.some((p) => p.longGaps.length > 0)) kinds.add('long_gaps')
    }
    // the generated data exercises every part of the contract
    t.strictSame([...kinds].sort(), ['clock_implausible', 'foreign_device', 'impossible_travel', 'long_gaps', 'outside_geofence', 'outside_geofence_nearest', 'outside_geofence_no_fix', 'previous_visits', 'rescan', 'unknown_tag',
      'unplanned_checkpoint', 'unplanned_checkpoint_grid', 'unplanned_checkpoint_no_grid'])
  })
}
