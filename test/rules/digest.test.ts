// materialDigest agrees with diffResults: equal digests exactly when nothing
// material changed (what lets a re-run skip reading the stored result).
import t from 'tap'
import { evaluateGridDay } from '../../src/rules/coverage/evaluate.ts'
import { diffResults, materialDigest } from '../../src/rules/revisions.ts'
import { at, plan, scan } from './fixtures.ts'

const D = '2024-06-01'
const L = (hhmm: string) => at(`${D}T${hhmm}:00+08:00`)
const p = plan()
const rows = [scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a1' }), scan(`${D}T07:00:00+08:00`, 'tag-a', { id: 'a2' }), scan(`${D}T07:02:00+08:00`, 'tag-a', { id: 'a3' })]
const late = scan(`${D}T03:00:00+08:00`, 'tag-b', { id: 'b-late', receivedAt: L('12:00') })

const cases = [
  ['same rows, other order', rows, [...rows].reverse(), L('10:00'), L('10:00')],
  ['a minute later (open gap grows)', rows, rows, L('10:00'), L('10:01')],
  ['time alone opens a gap', rows, rows, L('10:00'), L('11:01')],
  ['late upload', rows, [...rows, late], L('12:30'), L('12:30')],
  ['a rescan removed', rows, rows.slice(0, 2), L('10:00'), L('10:00')],
  ['window closes (pending → missed)', rows, rows, L('05:00'), L('23:59')],
] as const

for (const [name, a, b, na, nb] of cases) {
  t.test(name, async (t) => {
    const ra = evaluateGridDay({ plan: p, localDate: D, checkins: a, now: na })
    const rb = evaluateGridDay({ plan: p, localDate: D, checkins: b, now: nb })
    const same = diffResults(ra, rb).length === 0
    t.equal(materialDigest(ra) === materialDigest(rb), same, `digest equal ⇔ no material change (${same ? 'unchanged' : 'changed'})`)
  })
}

t.test('the digest survives a JSON round trip (as stored)', async (t) => {
  const r = evaluateGridDay({ plan: p, localDate: D, checkins: rows, now: L('10:00') })
  t.equal(materialDigest(JSON.parse(JSON.stringify(r))), materialDigest(r))
})
