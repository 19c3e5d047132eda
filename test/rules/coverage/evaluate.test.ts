import t from 'tap'
import { evaluateGridDay, type CoverageResult } from '../../../src/rules/coverage/evaluate.ts'
import type { CheckinRow } from '../../../src/rules/coverage/inputs.ts'
import { at, iso, plan, scan } from '../fixtures.ts'

// Shanghai, 6 h windows on 2024-06-01: w0 00–06, w1 06–12, w2 12–18, w3 18–24 (+08:00).
const D = '2024-06-01'
const L = (hhmm: string, date = D) => `${date}T${hhmm}:00+08:00`
const cellMap = (r: CoverageResult) => Object.fromEntries(r.cells.map((c) => [`${c.windowKey.slice(11)} ${c.checkpointId}`, `${c.status}${c.evidence.length ? ' ' + c.evidence.join(',') : ''}`]))
const gapList = (r: CoverageResult) =>
  r.gaps.map((g) => `${g.checkpointId} ${iso(g.from)}(${g.fromKind}${g.fromCheckinId ? ':' + g.fromCheckinId : ''})→${iso(g.to)}(${g.toKind}) ${g.minutes}m${g.final ? '' : ' provisional'}`)

t.test('met, missed and pending with evidence; coverage excludes pending', async (t) => {
  const rows = [scan(L('01:00'), 'tag-a', { id: 'a1' }), scan(L('07:00'), 'tag-a', { id: 'a2' }), scan(L('08:00'), 'tag-b', { id: 'b1' })]
  const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('13:00')) })
  t.same(cellMap(r), {
    '00:00-06:00 A': 'met a1',
    '00:00-06:00 B': 'missed',
    '06:00-12:00 A': 'met a2',
    '06:00-12:00 B': 'met b1',
    '12:00-18:00 A': 'pending',
    '12:00-18:00 B': 'pending',
    '18:00-00:00 A': 'pending',
    '18:00-00:00 B': 'pending',
  })
  t.same(r.summary, { required: 8, met: 3, missed: 1, pending: 4, coveragePct: 75 })
  t.same(gapList(r), [
    'B 2024-05-31T16:00:00.000Z(period_start)→2024-06-01T00:00:00.000Z(visit) 480m',
    'A 2024-05-31T17:00:00.000Z(visit:a1)→2024-05-31T23:00:00.000Z(visit) 360m',
    'A 2024-05-31T23:00:00.000Z(visit:a2)→2024-06-01T05:00:00.000Z(now) 360m provisional',
    'B 2024-06-01T00:00:00.000Z(visit:b1)→2024-06-01T05:00:00.000Z(now) 300m provisional',
  ])
})

t.test('grace: a window is pending until end + grace, then missed', async (t) => {
  const cases: Array<[string, string]> = [
    [L('06:00'), 'pending'],
    [L('06:29'), 'pending'],
    [L('06:30'), 'missed'],
  ]
  for (const [now, want] of cases) {
    const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: [], now: at(now) })
    t.equal(r.cells[0]?.status, want, `at ${now}`)
  }
  const none = evaluateGridDay({ plan: plan(), localDate: D, checkins: [], now: at(L('00:00')) })
  t.equal(none.summary.coveragePct, null, 'nothing decided yet')
  t.same(none.gaps, [], 'no gaps before the day starts')
})

t.test('late upload fills a miss: device time counts, not receipt time', async (t) => {
  const late = scan(L('03:00'), 'tag-b', { id: 'late', receivedAt: at(L('12:00')) })
  const before = evaluateGridDay({ plan: plan(), localDate: D, checkins: [], now: at(L('11:00')) })
  const after = evaluateGridDay({ plan: plan(), localDate: D, checkins: [late], now: at(L('12:30')) })
  t.equal(cellMap(before)['00:00-06:00 B'], 'missed')
  t.equal(cellMap(after)['00:00-06:00 B'], 'met late')
  t.equal(cellMap(after)['06:00-12:00 B'], 'missed', 'not credited to the window it arrived in')
})

t.test('clock offset corrects device time; implausible clocks are not credited and are flagged', async (t) => {
  // D2 runs 10 minutes fast: 06:05 on its clock is 05:55 real time → window 00–06.
  const fast = scan(L('06:05'), 'tag-a', { id: 'fast', deviceId: 'D2', receivedAt: at(L('05:56')) })
  const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: [fast], offsets: [{ deviceId: 'D2', offsetMs: 600_000 }], now: at(L('13:00')) })
  t.equal(cellMap(r)['00:00-06:00 A'], 'met fast')
  t.equal(cellMap(r)['06:00-12:00 A'], 'missed')
  t.same(r.signals, [])

  // Without the offset the same row is 9 minutes ahead of its receipt: implausible (limit 5).
  const r2 = evaluateGridDay({ plan: plan(), localDate: D, checkins: [fast], now: at(L('13:00')) })
  t.equal(cellMap(r2)['00:00-06:00 A'], 'missed')
  t.equal(cellMap(r2)['06:00-12:00 A'], 'missed')
  t.same(
    r2.signals.map((s) => [s.kind, s.deviceId, s.checkinIds.join(','), s.detail]),
    [['clock_implausible', 'D2', 'fast', { worstSkewSeconds: 540 }]],
  )
  t.equal(r2.devices[0]?.clockImplausible, 1)

  // A clock reset to 1970 uploading today: far too early, flagged.
  const reset = scan('1970-01-01T00:10:00Z', 'tag-a', { id: 'reset', receivedAt: at(L('09:00')) })
  const r3 = evaluateGridDay({ plan: plan(), localDate: D, checkins: [reset], now: at(L('13:00')) })
  t.equal(r3.signals[0]?.kind, 'clock_implausible')
  t.equal(r3.signals[0]?.at, at(L('09:00')), 'flagged at its receipt time')
})

t.test('rescans chain into one visit and are flagged; evidence cites the first k visits', async (t) => {
  const rows = [
    scan(L('01:00'), 'tag-a', { id: 'x1' }),
    scan(L('01:02'), 'tag-a', { id: 'x2' }),
    scan(L('01:06'), 'tag-a', { id: 'x3' }), // 4 min after x2: chained, still the same visit
    scan(L('03:00'), 'tag-a', { id: 'x4' }),
    scan(L('04:00'), 'tag-a', { id: 'x5' }),
  ]
  const r = evaluateGridDay({ plan: plan({ visitsPerWindow: 2 }), localDate: D, checkins: rows, now: at(L('13:00')) })
  const a0 = r.cells.find((c) => c.checkpointId === 'A' && c.windowKey.endsWith('00:00-06:00'))
  t.same(a0, { checkpointId: 'A', windowKey: `${D}/00:00-06:00`, status: 'met', visits: 3, required: 2, evidence: ['x1', 'x4'] })
  t.same(
    r.signals.map((s) => `${s.kind} ${s.checkinIds.join(',')} ${JSON.stringify(s.detail)}`),
    ['rescan x1,x2 {"seconds":120}', 'rescan x2,x3 {"seconds":240}'],
  )
})

t.test('impossible travel between checkpoints with coordinates', async (t) => {
  // A and B are 0.01° of latitude apart ≈ 1112 m.
  const cases: Array<[string, string, boolean]> = [
    ['30 s apart: 133 km/h', L('01:00:30').replace(':00+', '+'), true],
    ['2 min apart: 33 km/h', L('01:02'), false],
  ]
  for (const [name, bTime, flagged] of cases) {
    const rows = [scan(L('01:00'), 'tag-a', { id: 'ta' }), scan(bTime, 'tag-b', { id: 'tb' })]
    const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('13:00')) })
    const s = r.signals.filter((x) => x.kind === 'impossible_travel')
    t.equal(s.length, flagged ? 1 : 0, name)
    if (flagged) t.same([s[0]?.checkpointIds, s[0]?.checkinIds, s[0]?.detail.meters], [['A', 'B'], ['ta', 'tb'], 1112])
  }
})

t.test('foreign devices are flagged; credit configurable; unknown tags flagged', async (t) => {
  const rows: CheckinRow[] = [
    scan(L('02:00'), 'tag-b', { id: 'f1', deviceId: 'D9', deviceGridId: 'G2', badge: 'P9' }),
    scan(L('02:10'), 'tag-z', { id: 'u1' }),
  ]
  const credit = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('13:00')) })
  t.equal(cellMap(credit)['00:00-06:00 B'], 'met f1')
  t.same(
    credit.signals.map((s) => `${s.kind} ${s.deviceId} ${s.checkinIds.join(',')} ${JSON.stringify(s.detail)}`),
    ['foreign_device D9 f1 {"assignedGrid":"G2"}', 'unknown_tag D1 u1 {"tagId":"tag-z"}'],
  )
  const noCredit = evaluateGridDay({
    plan: plan({ antiFraud: { rescanMinutes: 5, maxSpeedKmh: 60, travelSlackMeters: 30, creditForeignDevices: false } }),
    localDate: D,
    checkins: rows,
    now: at(L('13:00')),
  })
  t.equal(cellMap(noCredit)['00:00-06:00 B'], 'missed')
})

t.test('check-ins without a tag placed at no checkpoint (GPS fixes in no geofence): outside_geofence, the nearest checkpoint', async (t) => {
  // A at 31.23, B at 31.24 (lon 121.47). A GPS check-in has an empty tag and its fix; the ingest left it unresolved.
  const gps = (hhmm: string, id: string, fix: { lat: number; lon: number } | null, over: Partial<CheckinRow> = {}) =>
    scan(L(hhmm), '', { id, ...(fix ? fix : {}), ...over })
  const sig = (r: CoverageResult) => r.signals.map((s) => `${s.kind} ${s.deviceId} ${iso(s.at).slice(11, 16)} ${s.checkinIds.join(',')} [${s.checkpointIds.join(',')}] ${JSON.stringify(s.detail)}`)
  const cases: Array<[string, ReturnType<typeof plan>, CheckinRow[], string[]]> = [
    ['a fix 145 m north of B', plan(), [gps('02:00', 'g1', { lat: 31.2413, lon: 121.47 })],
      ['outside_geofence D1 18:00 g1 [] {"lat":31.2413,"lon":121.47,"nearestCheckpoint":"B","meters":145}']],
    ['per device: the first fix, every check-in cited; the lead is the first check-in', plan(),
      [gps('02:00', 'g1', null), gps('02:05', 'g2', { lat: 31.229, lon: 121.469 }), gps('02:10', 'g3', { lat: 31.2413, lon: 121.47 }), gps('03:00', 'g4', { lat: 31.2405, lon: 121.4712 }, { deviceId: 'D2' })],
      [
        'outside_geofence D1 18:00 g1,g2,g3 [] {"lat":31.229,"lon":121.469,"nearestCheckpoint":"A","meters":146}',
        'outside_geofence D2 19:00 g4 [] {"lat":31.2405,"lon":121.4712,"nearestCheckpoint":"B","meters":127}',
      ]],
    ['no fix: no position (not an unknown tag)', plan(), [gps('02:00', 'g1', null), { ...gps('02:01', 'g2', null), lat: null, lon: null }],
      ['outside_geofence D1 18:00 g1,g2 [] {}']],
    ['no checkpoint of the plan has coordinates: the fix only', plan({ checkpoints: [{ id: 'A', tagIds: ['tag-a'] }] }), [gps('02:00', 'g1', { lat: 31.5, lon: 121.9 })],
      ['outside_geofence D1 18:00 g1 [] {"lat":31.5,"lon":121.9}']],
    ['equally near: the smaller checkpoint id', plan({ checkpoints: [{ id: 'B', lat: 31.24, lon: 121.47 }, { id: 'A', lat: 31.24, lon: 121.47 }] }), [gps('02:00', 'g1', { lat: 31.2413, lon: 121.47 })],
      ['outside_geofence D1 18:00 g1 [] {"lat":31.2413,"lon":121.47,"nearestCheckpoint":"A","meters":145}']],
    ['an unregistered tag, even with a position, stays unknown_tag', plan(), [scan(L('02:00'), 'tag-z', { id: 'u1', lat: 31.2413, lon: 121.47 }), gps('02:30', 'g1', { lat: 31.2413, lon: 121.47 })],
      ['unknown_tag D1 18:00 u1 [] {"tagId":"tag-z"}', 'outside_geofence D1 18:30 g1 [] {"lat":31.2413,"lon":121.47,"nearestCheckpoint":"B","meters":145}']],
    ['resolved by the ingest (to a checkpoint of the plan): a visit, no signal', plan(), [gps('02:00', 'g1', { lat: 31.2401, lon: 121.47 }, { checkpointId: 'B' })], []],
  ]
  for (const [name, p, rows, want] of cases) {
    const r = evaluateGridDay({ plan: p, localDate: D, checkins: rows, now: at(L('13:00')) })
    t.same(sig(r), want, name)
  }
})

t.test('scans the ingest resolved to a checkpoint not in the plan (another grid\'s): unplanned_checkpoint, per device per checkpoint', async (t) => {
  // The plan has A and B (G1). E and F are registered to G2; K to G1 (a geofence its plan does not list: the
  // ingest matches a GPS fix against the device's grid's geofences only); X was resolved but is in no registry now.
  const sig = (r: CoverageResult) => r.signals.map((s) => `${s.kind} ${s.deviceId} ${iso(s.at).slice(11, 16)} ${s.checkinIds.join(',')} [${s.checkpointIds.join(',')}] ${JSON.stringify(s.detail)}`)
  const of = (checkpointId: string, checkpointGridId?: string) => ({ checkpointId, ...(checkpointGridId ? { checkpointGridId } : {}) })
  const gps = (hhmm: string, id: string, over: Partial<CheckinRow> = {}) => scan(L(hhmm), '', { id, lat: 31.3, lon: 121.4, ...over })
  const cases: Array<[string, CheckinRow[], string[]]> = [
    ['a tag read of another grid\'s checkpoint: its id and grid, not an unknown tag', [scan(L('02:00'), 'tag-e', { id: 'n1', ...of('E', 'G2') })],
      ['unplanned_checkpoint D1 18:00 n1 [] {"checkpointId":"E","gridId":"G2"}']],
    ['a GPS check-in the ingest placed in a geofence the plan does not have: not outside_geofence', [gps('02:00', 'g1', of('K', 'G1'))],
      ['unplanned_checkpoint D1 18:00 g1 [] {"checkpointId":"K","gridId":"G1"}']],
    ['per device per checkpoint, tags and GPS alike; the lead is the first check-in', [
      scan(L('02:00'), 'tag-e', { id: 'n1', ...of('E', 'G2') }), gps('02:05', 'g1', of('K', 'G1')), scan(L('02:10'), 'tag-f', { id: 'n2', ...of('F', 'G2') }),
      scan(L('02:15'), 'tag-k', { id: 'n3', ...of('K', 'G1') }), scan(L('02:20'), 'tag-e', { id: 'n4', ...of('E', 'G2') }),
      scan(L('02:30'), 'tag-e', { id: 'n5', deviceId: 'D2', ...of('E', 'G2') }),
    ], [
      'unplanned_checkpoint D1 18:00 n1,n4 [] {"checkpointId":"E","gridId":"G2"}',
      'unplanned_checkpoint D1 18:05 g1,n3 [] {"checkpointId":"K","gridId":"G1"}',
      'unplanned_checkpoint D1 18:10 n2 [] {"checkpointId":"F","gridId":"G2"}',
      'unplanned_checkpoint D2 18:30 n5 [] {"checkpointId":"E","gridId":"G2"}',
    ]],
    ['a checkpoint in no registry (removed since): its id only', [scan(L('02:00'), 'tag-x', { id: 'n1', ...of('X') })],
      ['unplanned_checkpoint D1 18:00 n1 [] {"checkpointId":"X"}']],
    ['unresolved rows keep their kinds, next to a resolved one', [
      scan(L('02:00'), 'tag-e', { id: 'u1' }), gps('02:10', 'g1'), scan(L('02:20'), 'tag-e', { id: 'n1', ...of('E', 'G2') }),
    ], [
      'unknown_tag D1 18:00 u1 [] {"tagId":"tag-e"}',
      'outside_geofence D1 18:10 g1 [] {"lat":31.3,"lon":121.4,"nearestCheckpoint":"B","meters":9422}',
      'unplanned_checkpoint D1 18:20 n1 [] {"checkpointId":"E","gridId":"G2"}',
    ]],
    ['resolved to a checkpoint of the plan: a visit, no signal', [scan(L('02:00'), 'tag-b', { id: 'b1', ...of('B', 'G1') })], []],
  ]
  for (const [name, rows, want] of cases) {
    const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('13:00')) })
    t.same(sig(r), want, name)
    // unknownTagScans: the check-ins the plan places at no checkpoint, whatever the ingest made of them
    const unplaced = new Set(['unknown_tag', 'outside_geofence', 'unplanned_checkpoint'])
    for (const d of r.devices) {
      const cited = r.signals.filter((s) => s.deviceId === d.deviceId && unplaced.has(s.kind)).reduce((n, s) => n + s.checkinIds.length, 0)
      t.equal(d.unknownTagScans, cited, `${name}: ${d.deviceId} unknownTagScans`)
    }
  }
  const other = evaluateGridDay({ plan: plan(), localDate: D, checkins: [scan(L('02:00'), 'tag-e', { id: 'n1', ...of('E', 'G2') })], now: at(L('13:00')) })
  t.equal(other.cells.filter((c) => c.status === 'met').length, 0, 'not credited to the grid')
})

t.test('the first gap reaches back to the previous day when patrol time continues', async (t) => {
  const rows = [scan(L('22:00', '2024-05-31'), 'tag-a', { id: 'prev' }), scan(L('03:00'), 'tag-a', { id: 'a1' })]
  const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('04:00')) })
  t.same(gapList(r).filter((g) => g.startsWith('A')), ['A 2024-05-31T14:00:00.000Z(visit:prev)→2024-05-31T19:00:00.000Z(visit) 300m'])

  // A shift plan does not continue across midnight: gaps start at each period.
  const shifts = plan({ windows: { kind: 'shifts', shifts: [{ name: 'am', start: '08:00', end: '12:00' }, { name: 'pm', start: '14:00', end: '18:00' }] }, maxGapMinutes: 180 })
  const r2 = evaluateGridDay({ plan: shifts, localDate: D, checkins: [...rows, scan(L('08:30'), 'tag-a', { id: 'a2' }), scan(L('11:45'), 'tag-a', { id: 'a3' })], now: at(L('20:00')) })
  t.same(gapList(r2), [
    'B 2024-06-01T00:00:00.000Z(period_start)→2024-06-01T04:00:00.000Z(period_end) 240m',
    'A 2024-06-01T00:30:00.000Z(visit:a2)→2024-06-01T03:45:00.000Z(visit) 195m',
    'A 2024-06-01T06:00:00.000Z(period_start)→2024-06-01T10:00:00.000Z(period_end) 240m',
    'B 2024-06-01T06:00:00.000Z(period_start)→2024-06-01T10:00:00.000Z(period_end) 240m',
  ])
})

t.test('per-device and per-patroller figures', async (t) => {
  const rows = [
    scan(L('01:00'), 'tag-a', { id: 'p1', deviceId: 'D1', badge: 'P1' }),
    scan(L('01:30'), 'tag-b', { id: 'p2', deviceId: 'D1', badge: 'P1' }),
    scan(L('07:00'), 'tag-a', { id: 'p3', deviceId: 'D2', badge: 'P1' }),
    scan(L('07:01'), 'tag-a', { id: 'p4', deviceId: 'D3', badge: 'P2' }), // chained into p3's visit
  ]
  const r = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now: at(L('13:00')) })
  t.same(
    r.devices.map((d) => [d.deviceId, d.scans, d.visits, d.checkpoints, d.cellsCredited, d.signals]),
    [
      ['D1', 2, 2, 2, 2, 0],
      ['D2', 1, 1, 1, 1, 0],
      ['D3', 1, 0, 1, 0, 0],
    ],
  )
  t.same(
    r.patrollers.map((p) => [p.badge, p.scans, p.visits, p.cellsCredited, p.devices]),
    [
      ['P1', 3, 3, 3, ['D1', 'D2']],
      ['P2', 1, 0, 0, ['D3']],
    ],
  )
})

t.test('DST day in Berlin: scans land in wall-clock windows', async (t) => {
  const p = plan({ timeZone: 'Europe/Berlin', windows: { kind: 'every', every: '2h', start: '00:00', end: '06:00' }, checkpoints: [{ id: 'A', tagIds: ['tag-a'] }] })
  const rows = [scan('2024-03-31T01:30:00Z', 'tag-a', { id: 'cest' })] // 03:30 CEST
  const r = evaluateGridDay({ plan: p, localDate: '2024-03-31', checkins: rows, now: at('2024-04-01T00:00:00Z') })
  t.same(r.cells.map((c) => `${c.windowKey} ${c.status}`), ['2024-03-31/00:00-02:00 missed', '2024-03-31/02:00-04:00 met', '2024-03-31/04:00-06:00 missed'])
})

t.test('inactive day: no cells, no gaps', async (t) => {
  const r = evaluateGridDay({ plan: plan({ activeDays: { weekdays: ['mon'] } }), localDate: D, checkins: [scan(L('01:00'), 'tag-a')], now: at(L('23:00')) })
  t.same([r.cells, r.gaps, r.summary.coveragePct], [[], [], null])
})

t.test('deterministic: input order does not matter', async (t) => {
  const rows = [
    scan(L('01:00'), 'tag-a', { id: 'r1' }),
    scan(L('01:00'), 'tag-b', { id: 'r2', deviceId: 'D2' }),
    scan(L('01:00'), 'tag-a', { id: 'r0', deviceId: 'D3' }),
    scan(L('09:00'), 'tag-b', { id: 'r3', deviceGridId: 'G7' }),
    scan(L('09:01'), 'tag-b', { id: 'r4' }),
    scan(L('09:02'), 'tag-z', { id: 'r5' }),
  ]
  const now = at(L('20:00'))
  const a = evaluateGridDay({ plan: plan(), localDate: D, checkins: rows, now })
  const b = evaluateGridDay({ plan: plan(), localDate: D, checkins: [...rows].reverse(), now })
  const c = evaluateGridDay({ plan: plan(), localDate: D, checkins: [rows[3], rows[0], rows[5], rows[1], rows[4], rows[2]].filter((x): x is CheckinRow => !!x), now })
  t.same(b, a)
  t.same(c, a)
  t.equal(cellMap(a)['00:00-06:00 A'], 'met r0', 'ties on time broken by check-in id')
})
