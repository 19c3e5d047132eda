import t from 'tap'
import { coverageCaseProposals } from '../../src/rules/coverage/cases.ts'
import { evaluateGridDay } from '../../src/rules/coverage/evaluate.ts'
import { diffProposals, nextRevision } from '../../src/rules/revisions.ts'
import { at, plan, scan } from './fixtures.ts'

const D = '2024-06-01'
const L = (hhmm: string, date = D) => at(`${date}T${hhmm}:00+08:00`)
const p = plan()
const early = [scan(`${D}T01:00:00+08:00`, 'tag-a', { id: 'a1' }), scan(`${D}T07:00:00+08:00`, 'tag-a', { id: 'a2' })]
const late = scan(`${D}T03:00:00+08:00`, 'tag-b', { id: 'b-late', receivedAt: L('12:00') })

t.test('first report is revision 1; same data later is the same revision', async (t) => {
  const r1 = evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('10:00') })
  const first = nextRevision(undefined, r1, L('10:00'))
  t.same([first.report.revision, first.changed], [1, true])
  const same = nextRevision(first.report, evaluateGridDay({ plan: p, localDate: D, checkins: [...early].reverse(), now: L('10:00') }), L('10:00'))
  t.same([same.report.revision, same.changed], [1, false], 'same data, same instant')
  // A minute later on the same rows: B's open gap grows, nothing material changes.
  const again = nextRevision(first.report, evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('10:01') }), L('10:01'))
  t.same([again.report.revision, again.changed, again.changes], [1, false, []])
  t.equal(again.report.watermark, L('10:00'), 'unchanged report keeps its watermark')
  // Time alone can change a verdict: at 11:01 A has been unvisited for 241 min > 240.
  const later = nextRevision(first.report, evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('11:01') }), L('11:01'))
  t.same([later.report.revision, later.changes.map((c) => c.kind)], [2, ['gap_opened']])
})

t.test('a late upload bumps the revision and says what changed', async (t) => {
  const r1 = evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('11:00') })
  const rep1 = nextRevision(undefined, r1, L('11:00')).report
  const r2 = evaluateGridDay({ plan: p, localDate: D, checkins: [...early, late], now: L('12:10') })
  const { report, changes } = nextRevision(rep1, r2, L('12:05'))
  t.same([report.revision, report.watermark], [2, L('12:05')])
  const kinds = changes.map((c) => (c.kind === 'cell' ? `cell ${c.checkpointId} ${c.windowKey} ${c.from}→${c.to} +${c.evidenceAdded.join(',')}` : c.kind))
  t.ok(kinds.includes(`cell B ${D}/00:00-06:00 missed→met +b-late`), kinds.join('\n'))
  t.ok(kinds.includes('gap_closed') || kinds.includes('gap_changed'), 'B gap from the day start is shortened')
  t.ok(kinds.includes('coverage'))

  // Cases: the miss of B in window 00–06 is resolved by the late row.
  const before = coverageCaseProposals(r1)
  const after = coverageCaseProposals(r2)
  const d = diffProposals(before, after)
  t.same(d.resolved.map((x) => x.key), [`patrol_miss|G1|B|${encodeURIComponent(`${D}/00:00-06:00`)}`])
  t.same(d.opened, [], "B's gap since the late visit is still open (provisional): no case yet")
})

t.test('coverage case proposals: misses and final gaps only', async (t) => {
  const r = evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('11:00') })
  const props = coverageCaseProposals(r)
  t.same(
    props.map((x) => `${x.rule} ${x.subject} ${x.window} [${x.evidence.join(',')}]`),
    ['patrol_gap A 2024-05-31T17:00:00.000Z [a1,a2]', `patrol_miss B ${D}/00:00-06:00 []`],
    "B's gap since the day start is still open: provisional, no case",
  )
  const endOfDay = coverageCaseProposals(evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('00:30', '2024-06-02') }))
  t.same(
    endOfDay.filter((x) => x.rule === 'patrol_gap').map((x) => `${x.subject} ${x.window} ${x.detail.minutes} ${x.detail.toKind}`),
    ['A 2024-05-31T17:00:00.000Z 360 visit', 'A 2024-05-31T23:00:00.000Z 1020 period_end', 'B 2024-05-31T16:00:00.000Z 1440 period_end'],
  )
  t.same(coverageCaseProposals(evaluateGridDay({ plan: p, localDate: D, checkins: early, now: L('11:00') })), props, 'idempotent')
})
