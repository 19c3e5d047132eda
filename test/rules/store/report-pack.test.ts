// The compact stored form of a coverage result (store/queries/coverage.ts):
// packing then unpacking gives back the same result, key for key, and a
// stored row round-trips through both drivers unchanged.
import t from 'tap'
import { evaluateGridDay } from '../../../src/rules/coverage/evaluate.ts'
import { materialDigest } from '../../../src/rules/revisions.ts'
import { packResult, unpackResult } from '../../../src/store/queries/coverage.ts'
import { at, plan, scan } from '../fixtures.ts'
import { drivers, openRulesStore } from './open.ts'

const D = '2024-06-01'
const L = (hhmm: string) => at(`${D}T${hhmm}:00+08:00`)
const p = plan({ visitsPerWindow: 2 })
const rows = [
  scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a1' }),
  scan(`${D}T02:00:00+08:00`, 'tag-a', { id: 'a2' }),
  scan(`${D}T07:00:00+08:00`, 'tag-b', { id: 'b1' }),
]
// met, missed and pending cells, evidence of 0–2 ids
const result = evaluateGridDay({ plan: p, localDate: D, checkins: rows, now: L('13:00') })

t.test('pack → unpack is the identity (same JSON text)', async (t) => {
  t.strictSame(new Set(result.cells.map((c) => c.status)), new Set(['met', 'missed', 'pending']))
  const stored = JSON.parse(JSON.stringify(packResult(result))) as Record<string, unknown>
  t.notOk('cells' in stored, 'cells are stored packed')
  t.ok(JSON.stringify(stored).length < JSON.stringify(result).length)
  t.equal(JSON.stringify(unpackResult(stored)), JSON.stringify(result))
  t.equal(materialDigest(unpackResult(stored) as typeof result), materialDigest(result))
})

t.test('cells that are not the full grid in order are stored as they are', async (t) => {
  const holes = { ...result, cells: result.cells.slice(1) }
  t.equal(packResult(holes), holes)
  const swapped = { ...result, cells: [result.cells[1], result.cells[0], ...result.cells.slice(2)] }
  t.equal(packResult(swapped), swapped)
  const none = { ...result, cells: [] }
  t.equal(packResult(none), none)
  t.equal(unpackResult(result), result, 'an unpacked (older) row is read as it is')
})

for (const driver of drivers()) {
  t.test(`a saved report reads back equal (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const row = { gridId: 'G1', localDate: D, revision: 1, planVersion: 1, watermarkMs: L('12:00'), evaluatedAtMs: L('13:00'), coveragePct: result.summary.coveragePct, met: result.summary.met, missed: result.summary.missed, pending: result.summary.pending, result, changes: [], digest: materialDigest(result) }
    t.strictSame(await store.reports.saveMany([row]), [true])
    for (const got of [await store.reports.latest('G1', D), await store.reports.get('G1', D, 1), (await store.reports.latestMany([{ gridId: 'G1', localDate: D }]))[0]]) {
      t.equal(JSON.stringify(got?.result), JSON.stringify(result))
    }
  })
}
