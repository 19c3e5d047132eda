// Contract: the store's SQL compact stage A (coverage.compactMany) equals the
// pure reference compactAggregates(q, aggregateCheckins(q, rows, offsets)) on
// the same rows — many grid-days in one call, on the embedded driver always and
// on the server driver when DATABASE_URL is set. Also: receivedUpTo is honoured
// by the pure aggregate, the SQL aggregates and compactMany.
import t from 'tap'
import { aggregateCheckins } from '../../../src/rules/coverage/aggregate.ts'
import { compactAggregates, type CompactAggregates } from '../../../src/rules/coverage/compact.ts'
import type { CheckinRow, CoverageQuery } from '../../../src/rules/coverage/inputs.ts'
import { coverageQuery } from '../../../src/rules/coverage/query.ts'
import { parsePlan, type PatrolPlan } from '../../../src/rules/plans/schema.ts'
import { scanBounds } from '../../../src/store/queries/coverage.ts'
import { readsByIndex } from '../../../src/store/queries/coverage-compact.ts'
import { generate, SYNC_SEQ, T0, type Generated } from './generate.ts'
import { drivers, loadGenerated, openRulesStore, plain } from './open.ts'

/**
 * The generator's two grids plus plans of our own over the same tags (so the same
 * rows serve several grid-days): Asia/Kolkata (+05:30, no DST) interval windows
 * that end before midnight, touching shifts with a lunch break and one visit
 * each, and overlapping shifts (served by the full stage A, then compacted).
 */
function extraPlans(seed: number, p: (s: string) => string): PatrolPlan[] {
  const cps = [
    { id: p('A'), tagIds: [p('tag-a'), p('tag-a2')], lat: 31.23, lon: 121.47 },
    { id: p('B'), tagIds: [p('tag-b')], lat: 31.2305, lon: 121.4702 },
    { id: p('E'), tagIds: [p('tag-e')], lat: 31.3, lon: 121.4 },
    { id: p('Z'), tagIds: [p('tag-never')] },
  ]
  return [
    parsePlan({
      gridId: p('G3'),
      timeZone: 'Asia/Kolkata',
      checkpoints: cps,
      windows: { kind: 'every', every: '3h', start: '04:00', end: '22:00' },
      visitsPerWindow: 1,
      maxGapMinutes: 60,
      antiFraud: { rescanMinutes: 3, maxSpeedKmh: 20, travelSlackMeters: 10, creditForeignDevices: seed % 2 === 1 },
    }),
    parsePlan({
      gridId: p('G4'),
      timeZone: 'Asia/Kolkata',
      checkpoints: cps.slice(0, 3),
      windows: { kind: 'shifts', shifts: [{ name: 'early', start: '06:00', end: '09:00', visits: 3 }, { name: 'late', start: '09:00', end: '12:00', visits: 4 }, { name: 'pm', start: '13:00', end: '23:30' }] },
      maxGapMinutes: 45,
    }),
    // edges of the first period's listing, crafted rows (edgeRows): previous-day continuation and 1 ms either side of maxGap
    parsePlan({
      gridId: p('G6'),
      checkpoints: ['P', 'Q', 'R', 'S', 'T'].map((x) => ({ id: p(x), tagIds: [p(`tag-${x.toLowerCase()}`)] })),
      windows: { kind: 'every', every: '4h', start: '00:00' },
      maxGapMinutes: 180,
    }),
    // the bounded read before the day (coverage-compact.ts readBounds), crafted rows (boundRows)
    parsePlan({
      gridId: p('G7'),
      checkpoints: ['U', 'V', 'W', 'X', 'Y', 'K', 'J', 'O', 'N'].map((x) => ({ id: p(x), tagIds: [p(`tag7-${x.toLowerCase()}`)] })),
      windows: { kind: 'every', every: '4h', start: '00:00' },
      maxGapMinutes: 180,
      clock: { maxAheadMinutes: 5, maxUploadDelayHours: 6 },
    }),
    parsePlan({
      gridId: p('G5'),
      checkpoints: cps.slice(1, 3),
      windows: { kind: 'shifts', shifts: [{ name: 'x', start: '06:00', end: '14:00' }, { name: 'y', start: '12:00', end: '20:00' }] },
      maxGapMinutes: 90,
    }),
  ]
}

const MIN = 60_000

/**
 * Rows for G6 on 2024-05-10 (Asia/Shanghai), device assigned to G6: Q listed only
 * because its last visit is maxGap + 1 ms before the period end, P (the same but
 * exactly maxGap) not listed, R visited only the evening before (empty period,
 * previous visit cited), S listed only because its first visit is maxGap + 1 ms
 * after the previous day's last, T scanned 2 min before the day and 1 min into it
 * (a visit: rescan chaining does not reach across the day's start).
 */
function edgeRows(g: Generated, p: (s: string) => string): void {
  const dayStart = Date.parse('2024-05-10T00:00:00+08:00')
  const dayEnd = dayStart + 1440 * MIN
  const series = (prev: number, first: number, last: number) => {
    const out = [prev, first]
    for (let t = first; t + 179 * MIN < last; ) out.push((t += 179 * MIN))
    return [...out, last]
  }
  const plan: Record<string, number[]> = {
    q: series(dayStart - 120 * MIN, dayStart + 60 * MIN, dayEnd - 180 * MIN - 1),
    p: series(dayStart - 120 * MIN, dayStart + 60 * MIN, dayEnd - 180 * MIN),
    r: [dayStart - 60 * MIN],
    s: series(dayStart - 120 * MIN - 1, dayStart + 60 * MIN, dayEnd - 180 * MIN),
    t: [dayStart - 2 * MIN, dayStart + MIN],
  }
  const deviceId = p('D6')
  let seq = 0
  for (const [x, times] of Object.entries(plan)) {
    for (const at of times) {
      seq++
      const tagId = p(`tag-${x}`)
      g.records.push({ kind: 'checkin', deviceId, seq, deviceTimeMs: at, receivedAtMs: at + 2000, clockFuture: false, clockAncient: false, tagId, method: 'nfc', checkpointId: null, gridId: p('G6'), badgeId: p('P6') })
      g.rows.push({ id: `${deviceId}:${seq}`, deviceId, seq, tagId, checkpointId: null, deviceTime: at, receivedAt: at + 2000, badge: p('P6'), deviceGridId: p('G6') })
    }
  }
}

/**
 * Rows for G7 on 2024-05-10 around the bound below which compactMany reads only what it
 * looks up: L = day start − maxGap (180 min). First visits at the day start unless said.
 * U: previous visit L − 1 ms (looked up; first gap maxGap + 1 ms: listed, cited), V: at L and
 * first visit 1 ms into the day (read; gap maxGap + 1 ms: listed, cited), W: the same 1 ms later
 * (gap exactly maxGap: not listed), X: last visit 23 h before the day
 * (looked up, listed), Y: 3 days before (outside the scan bounds: no previous visit, first gap
 * from the period start), K: scans chained across L (L − 2 min, L + 1 min: the later one is the
 * previous visit), J: chained just below L (L − 2 min, L − 1 ms: the lookup returns the last,
 * not the chain's first), O: device clock 30 min behind, scanned at device time L − 20 min =
 * L + 10 min (read through the offset slack; first visit 170 min into the day: listed only
 * with that previous visit), N: device clock 30 min ahead, device time L + 10 min = L − 20 min
 * (looked up above L in device time), and 10 min before the day's end (device time after it,
 * uploaded after it: read through the offset slack after the span). Also implausible scans 20 h before and after the day,
 * uploaded 1 h into it / 1 h before its end (in scope, outside the device times read in full)
 * and 1 h before / after the day (not in scope).
 */
function boundRows(g: Generated, p: (s: string) => string): void {
  const dayStart = Date.parse('2024-05-10T00:00:00+08:00')
  const dayEnd = dayStart + 1440 * MIN
  const L = dayStart - 180 * MIN
  const day = (first: number) => {
    const out = [first]
    for (let t = first; t + 179 * MIN < dayEnd - 180 * MIN; ) out.push((t += 179 * MIN))
    return [...out, dayEnd - 180 * MIN]
  }
  const dev = { D7: 0, D8: -30 * MIN, D9: 30 * MIN }
  // measured long before, acknowledged with a seq above their rows' (as loadGenerated writes them, after this)
  g.offsets.push({ deviceId: p('D8'), offsetMs: dev.D8, seq: SYNC_SEQ, measuredAt: T0 }, { deviceId: p('D9'), offsetMs: dev.D9, seq: SYNC_SEQ, measuredAt: T0 })
  const rows: Array<[string, keyof typeof dev, number, number?]> = [
    ...[L - 1, ...day(dayStart)].map((at): [string, 'D7', number] => ['u', 'D7', at]),
    ...[L, ...day(dayStart + 1)].map((at): [string, 'D7', number] => ['v', 'D7', at]),
    ...[L + 1, ...day(dayStart + 1)].map((at): [string, 'D7', number] => ['w', 'D7', at]),
    ...[dayStart - 23 * 60 * MIN, ...day(dayStart)].map((at): [string, 'D7', number] => ['x', 'D7', at]),
    ...[dayStart - 72 * 60 * MIN, ...day(dayStart)].map((at): [string, 'D7', number] => ['y', 'D7', at]),
    ...[L - 2 * MIN, L + MIN, ...day(dayStart)].map((at): [string, 'D7', number] => ['k', 'D7', at]),
    ...[L - 2 * MIN, L - 1, ...day(dayStart)].map((at): [string, 'D7', number] => ['j', 'D7', at]),
    ['o', 'D8', L + 10 * MIN],
    ...day(dayStart + 170 * MIN).map((at): [string, 'D7', number] => ['o', 'D7', at]),
    ['n', 'D9', L - 20 * MIN],
    ...day(dayStart).map((at): [string, 'D7', number] => ['n', 'D7', at]),
    ['v', 'D7', dayStart - 20 * 60 * MIN, dayStart + 60 * MIN],
    ['w', 'D7', dayStart - 20 * 60 * MIN, dayStart - 60 * MIN],
    ['o', 'D9', dayEnd - 10 * MIN, dayEnd + 30 * MIN],
    ['v', 'D7', dayEnd + 20 * 60 * MIN, dayEnd - 60 * MIN],
    ['w', 'D7', dayEnd + 20 * 60 * MIN, dayEnd + 60 * MIN],
  ]
  const seq = new Map<string, number>()
  for (const [x, d, at, received] of rows) {
    const deviceId = p(d)
    const s = (seq.get(deviceId) ?? 0) + 1
    seq.set(deviceId, s)
    const deviceTime = at + dev[d]
    const receivedAt = received ?? at + 2000
    const tagId = p(`tag7-${x}`)
    g.records.push({ kind: 'checkin', deviceId, seq: s, deviceTimeMs: deviceTime, receivedAtMs: receivedAt, clockFuture: false, clockAncient: false, tagId, method: 'nfc', checkpointId: null, gridId: p('G7'), badgeId: p('P7') })
    g.rows.push({ id: `${deviceId}:${s}`, deviceId, seq: s, tagId, checkpointId: null, deviceTime, receivedAt, badge: p('P7'), deviceGridId: p('G7') })
  }
}

interface Case {
  seed: number
  g: Generated
  plan: PatrolPlan
  date: string
  query: CoverageQuery
}

function cases(): { gens: Array<{ seed: number; prefix: string; g: Generated }>; list: Case[] } {
  const gens = [1, 2, 3].map((seed) => {
    const prefix = `c${seed}-`
    const g = generate(seed, '2024-05-10', prefix)
    const extra = extraPlans(seed, (s) => `${prefix}${s}`)
    const all = { ...g, plans: [...g.plans, ...extra] }
    edgeRows(all, (s) => `${prefix}${s}`)
    boundRows(all, (s) => `${prefix}${s}`)
    return { seed, prefix, g: all }
  })
  const list = gens.flatMap(({ g, seed }) =>
    g.plans.flatMap((plan) => ['2024-05-09', '2024-05-10', '2024-05-11'].map((date) => ({ seed, g, plan, date, query: coverageQuery(plan, date).query }))),
  )
  return { gens, list }
}

function rowsFor(c: Case, maxOffset: number): CheckinRow[] {
  const b = scanBounds(c.query, maxOffset)
  const tags = new Set(c.plan.checkpoints.flatMap((x) => [x.id, ...x.tagIds]))
  return c.g.rows.filter((r) => r.deviceTime >= b.lo && r.deviceTime < b.hi && (tags.has(r.checkpointId ?? r.tagId) || r.deviceGridId === c.plan.gridId))
}

for (const driver of drivers()) {
  t.test(`SQL compact stage A equals the reference (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const { gens, list } = cases()
    for (const { g, prefix } of gens) await loadGenerated(store, g, prefix)
    const offsets = gens.flatMap(({ g }) => g.offsets)
    const maxOffset = Math.max(...offsets.map((o) => Math.abs(o.offsetMs)))
    const many = await store.coverage.compactMany(list.map((c) => c.query))
    t.equal(many.length, list.length)
    const seen = new Set<string>()
    for (const [i, c] of list.entries()) {
      const ref = compactAggregates(c.query, aggregateCheckins(c.query, rowsFor(c, maxOffset), offsets))
      t.strictSame(plain(many[i]), plain(ref), `seed ${c.seed} ${c.plan.gridId} ${c.date}`)
      features(ref, seen)
      if (c.plan.gridId.endsWith('G6') && c.date === '2024-05-10') t.equal(ref.periods.find((x) => x.checkpointId.endsWith('T'))?.first?.at, Date.parse('2024-05-10T00:01:00+08:00'))
      if (c.plan.gridId.endsWith('G6') && c.date === '2024-05-10') {
        const p = c.plan.gridId.slice(0, -2)
        t.strictSame(ref.periods.map((x) => [x.checkpointId, x.first === null, x.longGaps.length]), [[`${p}Q`, false, 0], [`${p}R`, true, 0], [`${p}S`, false, 0], [`${p}T`, false, 0]], 'G6 edges')
        t.strictSame(ref.previousVisits.map((x) => x.checkpointId), [`${p}Q`, `${p}R`, `${p}S`, `${p}T`], 'G6 previous visits')
      }
      if (c.plan.gridId.endsWith('G7') && c.date === '2024-05-10') {
        const p = c.plan.gridId.slice(0, -2)
        const L = Date.parse('2024-05-10T00:00:00+08:00') - 180 * MIN
        const first = ref.periods.filter((x) => x.periodStart === L + 180 * MIN)
        t.strictSame(first.map((x) => x.checkpointId), ['J', 'N', 'O', 'U', 'V', 'X'].map((x) => `${p}${x}`), 'G7: listed in the first period')
        t.strictSame(ref.previousVisits.map((x) => [x.checkpointId, x.visit.at]), [['J', L - 1], ['N', L - 20 * MIN], ['O', L + 10 * MIN], ['U', L - 1], ['V', L], ['X', L + 180 * MIN - 23 * 60 * MIN]].map(([x, at]) => [`${p}${x}`, at]), 'G7: previous visits')
        t.ok(ref.signals.some((x) => x.kind === 'clock_implausible' && x.deviceId === `${p}D7` && x.checkinIds.length === 2), 'G7: the implausible scans received in the day are in scope')
      }
    }
    // one date per call (the batch's read bounds are its own day's, not the earliest of three)
    for (const date of ['2024-05-09', '2024-05-10', '2024-05-11']) {
      const day = list.filter((c) => c.date === date)
      const res = await store.coverage.compactMany(day.map((c) => c.query))
      for (const [i, c] of day.entries()) t.strictSame(plain(res[i]), plain(many[list.indexOf(c)]), `seed ${c.seed} ${c.plan.gridId} ${c.date} alone`)
    }
    // every grid-day alone, and in batches of five, gives the same answer as in the batch (on the server a
    // batch of at most a quarter of the grids reads its rows through the indexes: coverage-compact.ts byIndex)
    const grids = new Set(list.map((c) => c.plan.gridId)).size
    t.ok(readsByIndex('pg', 1, grids) && readsByIndex('pg', 5, grids) && !readsByIndex('pg', grids, grids) && !readsByIndex('pglite', 1, grids), 'the server batches below read by index')
    for (const one of list) {
      t.strictSame(plain((await store.coverage.compactMany([one.query]))[0]), plain(many[list.indexOf(one)]), `single grid-day ${one.plan.gridId} ${one.date}`)
    }
    for (const date of ['2024-05-09', '2024-05-10', '2024-05-11']) {
      const day = list.filter((c) => c.date === date)
      for (let k = 0; k < day.length; k += 5) {
        const part = day.slice(k, k + 5)
        const res = await store.coverage.compactMany(part.map((c) => c.query))
        for (const [i, c] of part.entries()) t.strictSame(plain(res[i]), plain(many[list.indexOf(c)]), `seed ${c.seed} ${c.plan.gridId} ${c.date} in fives`)
      }
    }
    t.strictSame(await store.coverage.compactMany([]), [], 'no grid-days')
    // the generated data exercises every part of the contract
    t.strictSame([...seen].sort(), [
      'cells_credited', 'clock_implausible', 'empty_period', 'foreign_device', 'gap_period', 'impossible_travel', 'met', 'multi_visit_short',
      'outside_geofence', 'outside_geofence_nearest', 'outside_geofence_no_fix', 'previous_visits', 'rescan', 'short_unvisited', 'short_visited', 'unknown_tag',
      'unplanned_checkpoint', 'unplanned_checkpoint_grid', 'unplanned_checkpoint_no_grid',
    ])
  })

  t.test(`receivedUpTo: only rows received by then count (${driver})`, async (t) => {
    const store = await openRulesStore(t, driver)
    if (!store) return
    const { gens, list: all } = cases()
    for (const { g, prefix } of gens) await loadGenerated(store, g, prefix)
    const offsets = gens.flatMap(({ g }) => g.offsets)
    const maxOffset = Math.max(...offsets.map((o) => Math.abs(o.offsetMs)))
    const upTo = Date.parse('2024-05-10T13:30:00+08:00')
    const list = all.filter((c) => c.date === '2024-05-10').map((c) => ({ ...c, query: { ...c.query, receivedUpTo: upTo } }))
    const full = await store.coverage.aggregatesMany(list.map((c) => c.query))
    const compact = await store.coverage.compactMany(list.map((c) => c.query))
    let differs = 0
    for (const [i, c] of list.entries()) {
      const rows = rowsFor(c, maxOffset)
      const ref = aggregateCheckins(c.query, rows, offsets)
      // the pure aggregate honours it: same as leaving the later rows out
      t.strictSame(ref, aggregateCheckins({ ...c.query, receivedUpTo: undefined }, rows.filter((r) => r.receivedAt <= upTo), offsets), `${c.plan.gridId}: pure`)
      if (JSON.stringify(ref) !== JSON.stringify(aggregateCheckins({ ...c.query, receivedUpTo: undefined }, rows, offsets))) differs++
      t.strictSame(plain(full[i]), plain(ref), `${c.plan.gridId}: aggregatesMany`)
      t.strictSame(plain(compact[i]), plain(compactAggregates(c.query, ref)), `${c.plan.gridId}: compactMany`)
    }
    t.equal(differs, list.length, 'every grid-day has rows received later')
    t.strictSame(plain(await store.coverage.aggregates(list[0]!.query)), plain(full[0]), 'aggregates (single) honours it too')
  })
}

function features(c: CompactAggregates, seen: Set<string>): void {
  if (c.metCells > 0) seen.add('met')
  if (c.shortCells.some((s) => s.visits === 0)) seen.add('short_unvisited')
  if (c.shortCells.some((s) => s.visits > 0)) seen.add('short_visited')
  if (c.shortCells.some((s) => s.visits > 1)) seen.add('multi_visit_short')
  if (c.periods.some((p) => p.first === null)) seen.add('empty_period')
  if (c.periods.some((p) => p.longGaps.length > 0)) seen.add('gap_period')
  if (c.previousVisits.length > 0) seen.add('previous_visits')
  if (c.devices.some((d) => d.cellsCredited > 0) && c.patrollers.some((p) => p.cellsCredited > 0)) seen.add('cells_credited')
  for (const s of c.signals) seen.add(s.kind)
  // GPS check-ins in no geofence (generate.ts, gpsRows): with the nearest checkpoint, and without a fix
  if (c.signals.some((s) => s.kind === 'outside_geofence' && s.detail['nearestCheckpoint'] !== undefined)) seen.add('outside_geofence_nearest')
  if (c.signals.some((s) => s.kind === 'outside_geofence' && s.detail['lat'] === undefined)) seen.add('outside_geofence_no_fix')
  // scans of checkpoints not in the plan (generate.ts, unplannedRows): registered (with its grid), and not
  if (c.signals.some((s) => s.kind === 'unplanned_checkpoint' && s.detail['gridId'] !== undefined)) seen.add('unplanned_checkpoint_grid')
  if (c.signals.some((s) => s.kind === 'unplanned_checkpoint' && s.detail['gridId'] === undefined)) seen.add('unplanned_checkpoint_no_grid')
}
