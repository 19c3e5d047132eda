// Which clock offset times a row (clock.ts offsetLookup, inputs.ts: time basis): the
// device's first measurement at or after the row in seq order, else its latest, else 0.
import t from 'tap'
import { aggregateCheckins } from '../../../src/rules/coverage/aggregate.ts'
import { offsetLookup } from '../../../src/rules/coverage/clock.ts'
import type { ClockOffset } from '../../../src/rules/coverage/inputs.ts'
import { coverageQuery } from '../../../src/rules/coverage/query.ts'
import { at, plan, scan } from '../fixtures.ts'

const MIN = 60_000
const t1 = at('2024-05-10T09:00:00+08:00')
const t2 = at('2024-05-10T15:00:00+08:00')

t.test('offsetLookup: first sync at or after the row, else the latest, else 0', async (t) => {
  const cases: Array<{ name: string; offsets: ClockOffset[]; rows: Array<[string, number, number]> }> = [
    {
      name: 'two syncs',
      offsets: [
        { deviceId: 'D', offsetMs: 40 * MIN, seq: 10, measuredAt: t1 },
        { deviceId: 'D', offsetMs: -2000, seq: 20, measuredAt: t2 },
      ],
      rows: [['D', 1, 40 * MIN], ['D', 5, 40 * MIN], ['D', 10, 40 * MIN], ['D', 11, -2000], ['D', 20, -2000], ['D', 25, -2000], ['X', 5, 0]],
    },
    {
      name: 'unsorted input',
      offsets: [
        { deviceId: 'D', offsetMs: -2000, seq: 20, measuredAt: t2 },
        { deviceId: 'D', offsetMs: 7000, seq: 15, measuredAt: t1 + 3 * 60 * MIN },
        { deviceId: 'D', offsetMs: 40 * MIN, seq: 10, measuredAt: t1 },
      ],
      rows: [['D', 9, 40 * MIN], ['D', 10, 40 * MIN], ['D', 11, 7000], ['D', 15, 7000], ['D', 16, -2000], ['D', 21, -2000]],
    },
    {
      name: 'latest by measuredAt, not by array order',
      offsets: [
        { deviceId: 'D', offsetMs: -2000, seq: 20, measuredAt: t2 },
        { deviceId: 'D', offsetMs: 40 * MIN, seq: 10, measuredAt: t1 },
      ],
      rows: [['D', 21, -2000]],
    },
    {
      name: 'a measurement without seq serves only as the latest',
      offsets: [
        { deviceId: 'D', offsetMs: 40 * MIN, seq: 10, measuredAt: t1 },
        { deviceId: 'D', offsetMs: 500, seq: null, measuredAt: t2 },
        { deviceId: 'D', offsetMs: 900, measuredAt: t1 - MIN },
      ],
      rows: [['D', 3, 40 * MIN], ['D', 10, 40 * MIN], ['D', 11, 500], ['D', 999, 500]],
    },
    {
      name: 'without seq and measuredAt: the last given wins (as before)',
      offsets: [
        { deviceId: 'D', offsetMs: 100 },
        { deviceId: 'E', offsetMs: -300 },
        { deviceId: 'D', offsetMs: 200 },
      ],
      rows: [['D', 1, 200], ['D', 1_000_000, 200], ['E', 7, -300], ['F', 7, 0]],
    },
    {
      name: 'two devices do not mix',
      offsets: [
        { deviceId: 'D', offsetMs: 40 * MIN, seq: 10, measuredAt: t1 },
        { deviceId: 'E', offsetMs: 1234, seq: 3, measuredAt: t2 },
        { deviceId: 'E', offsetMs: -99, seq: 30, measuredAt: t2 + MIN },
        { deviceId: 'D', offsetMs: -2000, seq: 20, measuredAt: t2 },
      ],
      rows: [['D', 2, 40 * MIN], ['E', 2, 1234], ['E', 4, -99], ['D', 15, -2000], ['E', 31, -99], ['D', 31, -2000]],
    },
    { name: 'no measurement at all', offsets: [], rows: [['D', 1, 0]] },
  ]
  for (const c of cases) {
    const offsetFor = offsetLookup(c.offsets)
    t.strictSame(
      c.rows.map(([d, seq]) => [d, seq, offsetFor(d, seq)]),
      c.rows,
      c.name,
    )
  }
})

t.test('a morning visit keeps its true time after a later sync measures ≈0', async (t) => {
  // D1's clock runs 40 min ahead until a sync at 09:00 (ack seq 2) measures it; the device
  // steps its clock right; a sync at 15:00 (ack seq 5) measures -2 s.
  const D = '2024-06-01'
  const L = (hhmm: string) => at(`${D}T${hhmm}:00+08:00`)
  const p = plan()
  const rows = [
    scan(`${D}T07:40:00+08:00`, 'tag-a', { id: 'D1:1', seq: 1, receivedAt: L('07:00') + 1000 }),
    scan(`${D}T09:59:58+08:00`, 'tag-b', { id: 'D1:3', seq: 3, receivedAt: L('10:00') + 1000 }),
    scan(`${D}T13:59:58+08:00`, 'tag-a', { id: 'D1:4', seq: 4, receivedAt: L('14:00') + 1000 }),
    scan(`${D}T16:59:58+08:00`, 'tag-b', { id: 'D1:6', seq: 6, receivedAt: L('17:00') + 1000 }),
  ]
  const offsets: ClockOffset[] = [
    { deviceId: 'D1', offsetMs: 40 * MIN, seq: 2, measuredAt: L('09:00') },
    { deviceId: 'D1', offsetMs: -2000, seq: 5, measuredAt: L('15:00') },
  ]
  const { query } = coverageQuery(p, D)
  const r = aggregateCheckins(query, rows, offsets)
  const cells = r.cells.map((c) => [c.windowKey.slice(11), c.checkpointId, c.evidence.map((e) => [e.checkinId, e.at])])
  t.strictSame(cells, [
    ['06:00-12:00', 'A', [['D1:1', L('07:00')]]],
    ['06:00-12:00', 'B', [['D1:3', L('10:00')]]],
    ['12:00-18:00', 'A', [['D1:4', L('14:00')]]],
    ['12:00-18:00', 'B', [['D1:6', L('17:00')]]],
  ])
  t.strictSame(r.signals.filter((s) => s.kind === 'clock_implausible'), [], 'no row is out of clock')
  // The old rule (every row timed with the latest, -2 s) puts the morning scan 40 min after its
  // receipt: not credited, a clock_implausible signal.
  const old = aggregateCheckins(query, rows, offsets.map(({ deviceId, offsetMs, measuredAt }) => ({ deviceId, offsetMs, measuredAt })))
  t.notOk(old.cells.some((c) => c.checkpointId === 'A' && c.windowKey.slice(11) === '06:00-12:00'), 'latest-only: the morning visit is lost')
  t.strictSame(old.signals.filter((s) => s.kind === 'clock_implausible').map((s) => s.checkinIds), [['D1:1']])
})
