// reports.saveMany({ replaceProvisional }): a revision stored replaces the earlier
// provisional revisions (pending cells) of its own grid-day only; complete
// revisions and other days stay; a revision refused (stored already) deletes
// nothing; without the option every revision stays.
import t from 'tap'
import type { NewCoverageReport } from '../../../src/store/rules-types.ts'
import { drivers, openRulesStore } from './open.ts'

const AT = Date.parse('2024-06-01T13:00:00+08:00')
const report = (g: string, d: string, revision: number, pending: number): NewCoverageReport => ({
  gridId: g, localDate: d, revision, planVersion: 1, watermarkMs: AT, evaluatedAtMs: AT + revision, coveragePct: 50, met: 1, missed: 1, pending,
  result: { gridId: g, localDate: d, revision }, changes: [], digest: `${g}-${d}-${revision}`,
})

for (const driver of drivers()) {
  t.test(`provisional revisions replaced (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const kept = async (g: string, d: string) => (await store.reports.revisions(g, d)).map((r) => r.revision)
    const replace = { replaceProvisional: true }

    // Another grid and another day of the same grid, each with a provisional revision.
    t.strictSame(await store.reports.saveMany([report('P2', '2024-06-01', 1, 3), report('P1', '2024-05-31', 1, 2)], replace), [true, true])
    t.strictSame(await store.reports.saveMany([report('P1', '2024-06-01', 1, 5)], replace), [true])
    t.strictSame(await store.reports.saveMany([report('P1', '2024-06-01', 2, 4)], replace), [true])
    t.strictSame(await kept('P1', '2024-06-01'), [2], 'a provisional revision replaces the one before')
    t.strictSame(await store.reports.saveMany([report('P1', '2024-06-01', 3, 0)], replace), [true])
    t.strictSame(await kept('P1', '2024-06-01'), [3], 'the complete revision replaces the last provisional one')
    t.strictSame(await store.reports.saveMany([report('P1', '2024-06-01', 4, 0), report('P2', '2024-06-01', 2, 1)], replace), [true, true])
    t.strictSame(await kept('P1', '2024-06-01'), [3, 4], 'complete revisions stay')
    t.strictSame(await kept('P2', '2024-06-01'), [2])
    t.strictSame(await kept('P1', '2024-05-31'), [1], "another day's provisional revision stays")
    t.equal((await store.reports.latest('P1', '2024-06-01'))?.digest, 'P1-2024-06-01-4')

    // Refused (a concurrent runner stored revision 3 first): nothing deleted for it.
    t.strictSame(await store.reports.saveMany([report('P3', '2024-06-01', 1, 2), report('P3', '2024-06-01', 2, 1)]), [true, true])
    t.strictSame(await store.reports.saveMany([report('P3', '2024-06-01', 2, 0)], replace), [false])
    t.strictSame(await kept('P3', '2024-06-01'), [1, 2], 'without the option (and for a refused revision) every revision stays')
    t.strictSame(await store.reports.saveMany([report('P3', '2024-06-01', 3, 0)], replace), [true])
    t.strictSame(await kept('P3', '2024-06-01'), [3])

    t.strictSame((await store.reports.ofDate('2024-06-01')).map((r) => [r.gridId, r.revision]), [['P1', 4], ['P2', 2], ['P3', 3]], 'ofDate: the latest revision of each grid')
    if (driver === 'embedded') t.equal(await store.analyze(), true, 'ANALYZE and VACUUM of the replaced rows run on the embedded driver')
  })
}
