import type { Db, Queryable } from '../db.ts'
import type { CoverageQuery } from '../rules-types.ts'
import type { FraudSignal, VisitRef } from '../../rules/coverage/inputs.ts'
import { compactAggregates, type CompactAggregates } from '../../rules/coverage/compact.ts'
import { bySignal } from '../../rules/coverage/signals.ts'
import { offsetCut, offsetSlacks, offsetsCte, rowOffset } from './clock.ts'
import { aggregatesMany, groupSignal, pairSignal, scanBounds, spanStartOf, type GroupRow, type PairRow } from './coverage.ts'

/**
 * Stage A, exceptions only (rules/coverage/compact.ts), in SQL: one statement
 * per batch of grid-days, nothing per check-in or per met cell sent to Node.
 *
 * The rows of a batch (found as in coverage.ts: by checkpoint, by raw tag, by
 * device grid) are timed and judged once (CTE `s`). The credited rows then go
 * through ONE sort by (grid-day, checkpoint, period bucket, window bucket, at, id):
 * the buckets are `width_bucket(at, bounds)` over the grid-day's sorted window
 * and period bounds, monotonic in `at`, so every window function below —
 * per checkpoint (rescan chaining, previous visit, empty windows and periods),
 * per period (first, last, long gaps) and per cell (visit count, rank, who is
 * cited) — partitions a prefix of that one ordering and no re-sort happens.
 * A second sort, by (grid-day, device, at, id) over the plausible rows, gives
 * consecutive scans for rescan / impossible-travel signals. Figures are hash
 * aggregates. What comes back: short cells with their visits, ranges of empty
 * windows and periods, listed periods' first / last / gap visits, previous
 * visits of listed checkpoints, per-device and per-patroller figures, signals.
 *
 * Rows are read in full only from maxGap (plus the clock-offset slack) before the
 * span to the span's end (readBounds); the previous visit of a checkpoint with no
 * credited row in that stretch before the day is looked up by its tags.
 *
 * Grid-days the single sort cannot serve exactly — overlapping windows or
 * periods, a window across two periods, `previousVisitBefore` after the span
 * start, more than MAX_K visits required — are computed by the full stage A
 * (coverage.aggregatesMany) and compacted in Node: same answer, slower.
 */
const MAX_K = 16
/** Grid-days per statement (bounds the sort and CTE memory; PGlite has one connection). */
const CHUNK = 2_500
/** On the server: statements in flight on separate pool connections (cores). */
const PARALLEL = 2

export async function compactMany(db: Db, qs: readonly CoverageQuery[]): Promise<CompactAggregates[]> {
  const out: Array<CompactAggregates | undefined> = qs.map(() => undefined)
  const fast: number[] = []
  const slow: number[] = []
  for (const [i, q] of qs.entries()) {
    if (q.periods.length === 0) out[i] = compactAggregates(q, { cells: [], periods: [], previousVisits: [], devices: [], patrollers: [], signals: [] })
    else if (fastPathFits(q)) fast.push(i)
    else slow.push(i)
  }
  if (slow.length > 0) {
    const full = await aggregatesMany(db, slow.map((i) => qs[i] as CoverageQuery))
    for (const [j, i] of slow.entries()) out[i] = compactAggregates(qs[i] as CoverageQuery, full[j] as NonNullable<(typeof full)[number]>)
  }
  if (fast.length > 0) {
    const lanes = db.driver === 'pg' ? Math.min(PARALLEL, Math.ceil(fast.length / 500)) : 1
    const per = Math.ceil(fast.length / lanes)
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        const mine = fast.slice(lane * per, (lane + 1) * per)
        for (let k = 0; k < mine.length; k += CHUNK) {
          const part = mine.slice(k, k + CHUNK)
          const res = await compactBatch(db, part.map((i) => qs[i] as CoverageQuery))
          for (const [j, i] of part.entries()) out[i] = res[j]
        }
      }),
    )
  }
  return out as CompactAggregates[]
}

/** What the single-sort SQL assumes (always true of coverageQuery's output for valid plans without overlapping shifts). */
function fastPathFits(q: CoverageQuery): boolean {
  const ws = sortedWindows(q)
  const ps = [...q.periods].sort((a, b) => a.start - b.start)
  const spanStart = ps[0]?.start ?? 0
  if (q.previousVisitBefore !== undefined && q.previousVisitBefore > spanStart) return false
  for (let i = 1; i < ws.length; i++) if ((ws[i] as Win).start < (ws[i - 1] as Win).end) return false
  for (let i = 1; i < ps.length; i++) if ((ps[i] as Per).start < (ps[i - 1] as Per).end) return false
  if (ps.some((p) => !(p.end > p.start))) return false
  for (const w of ws) {
    if (!(w.end > w.start) || !Number.isInteger(w.evidenceLimit) || w.evidenceLimit < 1 || w.evidenceLimit > MAX_K) return false
    // each window inside one period (periods are the merged windows in coverageQuery)
    if (!ps.some((p) => p.start <= w.start && w.end <= p.end)) return false
  }
  return new Set(q.windows.map((w) => w.key)).size === q.windows.length
}

type Win = CoverageQuery['windows'][number]
type Per = CoverageQuery['periods'][number]
const sortedWindows = (q: CoverageQuery): Win[] => [...q.windows].sort((a, b) => a.start - b.start || a.end - b.end)
const sortedPeriods = (q: CoverageQuery): Per[] => [...q.periods].sort((a, b) => a.start - b.start)

async function compactBatch(db: Db, qs: readonly CoverageQuery[]): Promise<CompactAggregates[]> {
  const kmax = Math.max(1, ...qs.flatMap((q) => q.windows.map((w) => w.evidenceLimit)))
  const rows = await db.transaction(async (tx) => {
    // Sort and CTE memory. Server: 8 MB, so the two sorts (≈ one row per check-in of the batch each) run
    // as external merges of cache-sized runs and the materialised CTEs spill to temp files — cheaper than
    // quicksorting and holding ≈ 60 MB in memory (10,000 grids, stage A server CPU 37.6–42.0 → 30.6–31.2 s
    // with 256 MB → 8 MB; 1,000 grids 3.64–3.86 → 3.18–3.24 s; 4 MB the same as 8). PGlite: in memory, as
    // its temp files cost more (1,000 grids, 256 MB → 8 MB: 4.8–5.0 → 5.5–5.7 s CPU).
    await tx.exec(db.driver === 'pg' ? "SET LOCAL work_mem = '8MB'" : "SET LOCAL work_mem = '256MB'")
    // No JIT: compiling this statement's many expressions costs more than it saves (server, one statement of
    // 500 grid-days, 116 k rows: 1.15 s CPU without, 1.33 s with JIT, 4.1 s with JIT optimisation + inlining).
    // The server's defaults turn these on at cost estimates of 100,000 / 500,000, which larger batches or
    // better-informed estimates reach. (PGlite has no JIT: no effect there.)
    await tx.exec('SET LOCAL jit = off')
    // the earliest stored device time (one index probe: with nothing stored below a grid-day's lookup
    // range — the first day of data — its previous visits need no look-up); how many grids
    const [off] = await tx.query<{ first: number | null; grids: number }>(
      `SELECT (SELECT (date_part('epoch', min(device_time)) * 1000)::int8 FROM check_ins) AS first,
              (SELECT count(*) FROM grids)::int AS grids`,
    )
    // each grid-day's scan slack: the largest |offset| that can time its rows (queries/clock.ts)
    const cuts = qs.map((q) => offsetCut(spanStartOf(q)))
    const slacks = await offsetSlacks(tx, cuts.map((cutMs) => ({ cutMs })))
    const first = off?.first ?? null
    const byIndex = readsByIndex(db.driver, new Set(qs.map((q) => q.gridId)).size, off?.grids ?? 0)
    // its joins are hash joins over the rows read (the planner, told the tag and grid arrays are short, would
    // otherwise probe the batch's tag table once per row)
    if (byIndex) await tx.exec('SET LOCAL enable_nestloop = off')
    await loadParams(tx, qs, slacks)
    const bounds = qs.map((q, i) => scanBounds(q, slacks[i] as number))
    const reads = qs.map((q, i) => readBounds(q, slacks[i] as number))
    const sql = compactSql({
      cut: Math.min(...cuts),
      lo: Math.min(...bounds.map((b) => b.lo)),
      hi: Math.max(...bounds.map((b) => b.hi)),
      from: Math.min(...reads.map((r) => r.from)),
      to: Math.max(...reads.map((r) => r.to)),
      spanStart: Math.min(...reads.map((r) => r.spanStart)),
      spanEnd: Math.max(...reads.map((r) => r.spanEnd)),
      first: first ?? Number.MAX_SAFE_INTEGER,
      lookups: first !== null && reads.some((r) => r.prevLo !== null && r.lookupHi > first),
      filterAfterJoin: db.driver === 'pglite',
      byIndex,
      kmax,
    })
    const result = await tx.query<OutRow>(sql)
    await tx.exec('DROP TABLE gp_cc_q, gp_cc_t, gp_cc_cp')
    return result
  })
  return assemble(qs, rows)
}

/**
 * Whether a batch reads its rows through the indexes (compactSql's byIndex): on the server, for a batch of at
 * most a quarter of the grids. A larger share is cheaper to read in one scan of the time range.
 */
export function readsByIndex(driver: Db['driver'], batchGrids: number, allGrids: number): boolean {
  return driver === 'pg' && batchGrids * 4 <= allGrids
}

/**
 * How far back a grid-day's rows are read in full. scanBounds reaches a day (plus the
 * clock-offset slack) before the span, for the exact previous visit; but only two kinds
 * of rows before the span matter:
 *   - rows in scope: plausible rows timed inside the span (device time ≥ span start −
 *     the largest |offset|) and implausible rows received inside it (any device time in
 *     scanBounds: read from before `from` only when received at or after the span start);
 *   - the previous visit (when previousVisitBefore is set): the last credited row timed
 *     before it. Credited rows timed in [prevLo, previousVisitBefore), prevLo =
 *     previousVisitBefore − maxGap, are read in full (device time ≥ prevLo − the largest
 *     |offset|); when a checkpoint has one, the last of them is its previous visit. Only
 *     a checkpoint with none there (no visit for longer than maxGap before the day: an
 *     over-long first gap or no previous visit at all) gets its previous visit looked up
 *     by its tags in the rest of scanBounds ([lo, prevLo), timed before prevLo).
 * Which rows are credited before the day and how the previous visit is used afterwards
 * (first gap, previous-day listing, citation) is unchanged: the rows below prevLo only
 * ever supplied the last of them. After the span likewise: rows timed at or after its end
 * are in scope only when implausible and received inside it, so device times from `to`
 * (span end + the largest |offset|) on are read only when received before the span end.
 */
function readBounds(q: CoverageQuery, maxOffset: number): { from: number; to: number; spanStart: number; spanEnd: number; prevLo: number | null; lookupHi: number } {
  const { lo, hi } = scanBounds(q, maxOffset)
  const spanStart = Math.min(...q.periods.map((p) => p.start))
  const spanEnd = Math.max(...q.periods.map((p) => p.end))
  const prevLo = q.previousVisitBefore === undefined ? null : q.previousVisitBefore - Math.max(0, Math.round(q.maxGapMs))
  const from = Math.max(lo, Math.min(spanStart, prevLo ?? spanStart) - maxOffset)
  // after the span the same holds: a row timed at or after the span end is in scope only when implausible and received inside it
  const to = Math.min(hi, spanEnd + maxOffset + 1)
  return { from, to, spanStart, spanEnd, prevLo, lookupHi: prevLo === null ? lo : Math.min(hi, prevLo + maxOffset + 1) }
}

/**
 * Consecutive scans further apart in time than this cannot be impossible travel:
 * an upper bound of the distance between two of the plan's checkpoints (meridian
 * then parallel at the latitude nearest the equator, ≥ the great circle) at
 * maxSpeedKmh, less the slack. The SQL skips the distance of such pairs.
 */
function travelDtMs(q: CoverageQuery): number {
  const pos = q.checkpoints.filter((c) => c.lat !== undefined && c.lon !== undefined) as Array<{ lat: number; lon: number }>
  if (pos.length < 2) return 0
  const lats = pos.map((c) => c.lat)
  const lons = pos.map((c) => c.lon)
  const rad = Math.PI / 180
  const lo = Math.min(...lats)
  const hi = Math.max(...lats)
  const maxCos = lo <= 0 && hi >= 0 ? 1 : Math.cos(Math.min(Math.abs(lo), Math.abs(hi)) * rad)
  const meters = 6_371_008.8 * rad * (hi - lo + Math.min(180, Math.max(...lons) - Math.min(...lons)) * maxCos)
  if (!(q.maxSpeedKmh > 0)) return Number.MAX_SAFE_INTEGER
  return Math.max(0, (((meters * 1.001 + 1 - q.travelSlackMeters) / (q.maxSpeedKmh / 3.6)) * 1000)) + 1000
}

async function loadParams(tx: Queryable, qs: readonly CoverageQuery[], slacks: readonly number[]): Promise<void> {
  const col = <T>(f: (q: CoverageQuery, i: number) => T) => qs.map(f)
  const arr = (xs: readonly number[]) => `{${xs.join(',')}}`
  await tx.query(
    `CREATE TEMP TABLE gp_cc_q ON COMMIT DROP AS
     SELECT qi, grid_id, span_start, span_end, lo, hi, rescan, max_gap, max_ahead, max_delay, credit_foreign, prev_before, max_speed, slack, rcv_upto,
            wb::int8[] AS wb, need::int[] AS need, pbnd::int8[] AS pbnd, nwin, nper, travel_dt, prev_lo, lk_hi,
            to_timestamp(lo::float8 / 1000) - interval '1 ms' AS lo_ts, to_timestamp(lk_hi::float8 / 1000) + interval '1 ms' AS lk_hi_ts
     FROM unnest($1::int[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::bool[],
                 $12::int8[], $13::float8[], $14::float8[], $15::int8[], $16::text[], $17::text[], $18::text[], $19::int[], $20::int[], $21::float8[],
                 $22::int8[], $23::int8[])
       AS q(qi, grid_id, span_start, span_end, lo, hi, rescan, max_gap, max_ahead, max_delay, credit_foreign, prev_before, max_speed, slack, rcv_upto,
            wb, need, pbnd, nwin, nper, travel_dt, prev_lo, lk_hi)`,
    [
      qs.map((_, i) => i),
      col((q) => q.gridId),
      col((q) => Math.min(...q.periods.map((p) => p.start))),
      col((q) => Math.max(...q.periods.map((p) => p.end))),
      col((q, i) => scanBounds(q, slacks[i] as number).lo),
      col((q, i) => scanBounds(q, slacks[i] as number).hi),
      col((q) => Math.round(q.rescanMs)),
      col((q) => Math.round(q.maxGapMs)),
      col((q) => Math.round(q.maxAheadMs)),
      col((q) => Math.round(q.maxDelayMs)),
      col((q) => q.creditForeignDevices),
      col((q) => q.previousVisitBefore ?? null),
      col((q) => q.maxSpeedKmh),
      col((q) => q.travelSlackMeters),
      col((q) => q.receivedUpTo ?? null),
      col((q) => arr(sortedWindows(q).flatMap((w) => [w.start, w.end]))),
      col((q) => arr(sortedWindows(q).map((w) => w.evidenceLimit))),
      col((q) => arr(sortedPeriods(q).flatMap((p) => [p.start, p.end]))),
      col((q) => q.windows.length),
      col((q) => q.periods.length),
      col(travelDtMs),
      col((q, i) => readBounds(q, slacks[i] as number).prevLo),
      col((q, i) => readBounds(q, slacks[i] as number).lookupHi),
    ],
  )
  // tag → checkpoint exactly as the reference resolves it (checkpoint id first, then its tags; later wins), with the checkpoint's position.
  const t: [number[], string[], string[], Array<number | null>, Array<number | null>] = [[], [], [], [], []]
  const c: [number[], string[]] = [[], []]
  for (const [i, q] of qs.entries()) {
    const byTag = new Map<string, string>()
    const pos = new Map<string, { lat: number | null; lon: number | null }>()
    for (const cp of q.checkpoints) {
      byTag.set(cp.id, cp.id)
      for (const tag of cp.tagIds) byTag.set(tag, cp.id)
      pos.set(cp.id, cp.lat !== undefined && cp.lon !== undefined ? { lat: cp.lat, lon: cp.lon } : { lat: null, lon: null })
      c[0].push(i)
      c[1].push(cp.id)
    }
    for (const [tag, cp] of byTag) {
      t[0].push(i)
      t[1].push(tag)
      t[2].push(cp)
      t[3].push(pos.get(cp)?.lat ?? null)
      t[4].push(pos.get(cp)?.lon ?? null)
    }
  }
  await tx.query('CREATE TEMP TABLE gp_cc_t ON COMMIT DROP AS SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::float8[], $5::float8[]) AS t(qi, tag, cp, lat, lon)', t)
  await tx.query('CREATE TEMP TABLE gp_cc_cp ON COMMIT DROP AS SELECT DISTINCT * FROM unnest($1::int[], $2::text[]) AS c(qi, cp)', c)
  await tx.exec('CREATE INDEX ON gp_cc_t (tag); ANALYZE gp_cc_q; ANALYZE gp_cc_t; ANALYZE gp_cc_cp')
}

/** Result columns: one shape for every kind of row (k), unused columns NULL. */
const COLS = {
  k: 'text', qi: 'int', cp: 'text', n1: 'int8', n2: 'int8', n3: 'int8', n4: 'int8', n5: 'int8', n6: 'int8',
  id: 'text', dev: 'text', badge: 'text', at: 'int8', id2: 'text', dev2: 'text', badge2: 'text', at2: 'int8', ids: 'text[]', cps: 'text[]', s1: 'text',
} as const
type Col = keyof typeof COLS
const branch = (kind: string, cols: Partial<Record<Col, string>>, rest: string) =>
  `SELECT '${kind}'::text AS k, ${(Object.keys(COLS) as Col[])
    .filter((c) => c !== 'k')
    .map((c) => `${cols[c] ?? 'NULL'}::${COLS[c]} AS ${c}`)
    .join(', ')} ${rest}`

interface OutRow {
  k: 'E' | 'R' | 'T' | 'L' | 'V' | 'N' | 'M' | 'DF' | 'BF' | 'X' | 'G'
  qi: number
  cp: string | null
  n1: number | null
  n2: number | null
  n3: number | null
  n4: number | null
  n5: number | null
  n6: number | null
  id: string | null
  dev: string | null
  badge: string | null
  at: number | null
  id2: string | null
  dev2: string | null
  badge2: string | null
  at2: number | null
  ids: string[] | null
  cps: string[] | null
  s1: string | null
}

const ts = (ms: number) => `'${new Date(ms).toISOString()}'::timestamptz`

/**
 * lo / hi: the batch's scanBounds; [from, to): the device times read in full (readBounds),
 * rows before `from` only when received at or after spanStart (the batch's earliest span start),
 * rows from `to` on only when received before spanEnd (the batch's latest span end);
 * first: the earliest device time stored (a grid-day whose look-up range ends at or before it
 * looks nothing up); lookups: whether any grid-day may need a previous visit looked up.
 */
function compactSql(o: {
  cut: number
  lo: number
  hi: number
  from: number
  to: number
  spanStart: number
  spanEnd: number
  first: number
  lookups: boolean
  filterAfterJoin: boolean
  byIndex: boolean
  kmax: number
}): string {
  const { lo, hi, from, to, spanStart, spanEnd, kmax } = o
  const terms = (n: number, f: (j: number) => string) => Array.from({ length: n }, (_, j) => f(j + 1))
  const sum = (n: number, f: (j: number) => string) => (n <= 0 ? '0' : terms(n, (j) => `coalesce(${f(j)}, 0)`).join(' + '))
  const any = (n: number, f: (j: number) => string) => (n <= 0 ? 'false' : terms(n, (j) => `coalesce(${f(j)}, false)`).join(' OR '))
  const outside = [
    ...(from > lo ? [`(c.device_time >= ${ts(from)} OR c.received_at >= ${ts(spanStart)})`] : []),
    ...(to < hi ? [`(c.device_time < ${ts(to)} OR c.received_at < ${ts(spanEnd)})`] : []),
  ]
  // On the server (statistics) the rows outside [from, to) are dropped as they are scanned. PGlite has no
  // statistics: these clauses would only lower its row estimates and turn the joins below into nested loops
  // and a hash over check_ins (1,000 grids, 1 day stored: ≈ +0.3 s CPU of ≈ 4.2), so there they apply after the joins.
  const range = [`c.device_time >= ${ts(lo)} AND c.device_time < ${ts(hi)}`, ...(o.filterAfterJoin ? [] : outside)].join(' AND ')
  const rawFilter = o.filterAfterJoin && outside.length > 0 ? outside.join(' AND ') : undefined
  // byIndex (server, a batch of at most a quarter of the grids): each branch reads only its batch's rows,
  // through the (checkpoint_id, device_time) and (grid_id, device_time) indexes (bitmaps of the batch's tags /
  // grids), instead of every row in the scan bounds filtered by a hash join — a batch of 1,250 grids out of
  // 10,000 read the whole day twice (10,000 grids, one statement of 625: 3.0–3.8 → 1.9–2.2 s). The arrays come
  // from an InitPlan, so the planner sizes them at a few elements and picks the bitmap index scans. For a batch
  // of half the grids the plain scan is cheaper (1,000 grids, two lanes of 500).
  const { byIndex } = o
  // the lookup's rows of one (grid-day, checkpoint) by its tags, as raw reads them (index range from the row's grid-day)
  const lookupRange = 'c.device_time >= q.lo_ts AND c.device_time < q.lk_hi_ts'
  const lookupCtes = !o.lookups
    ? ''
    : `-- checkpoints with no credited row in [prev_lo, previousVisitBefore): their previous visit, if any,
-- is timed before prev_lo; looked up by their tags over the rest of the scan bounds (readBounds)
lk_need AS (
  SELECT c.qi, c.cp FROM gp_cc_cp c JOIN gp_cc_q q ON q.qi = c.qi WHERE q.prev_before IS NOT NULL AND q.lk_hi > ${o.first}
  EXCEPT
  SELECT qi, cp FROM s WHERE credited AND at < prev_before
),
lk AS (
  SELECT DISTINCT ON (qi, cp) qi, cp, 0 AS pb, 0 AS b, at, id, dev, badge, NULL::int AS k, NULL::int8 AS ps, pbnd[1] AS pe,
         nwin, nper, span_start, rescan, prev_before, max_gap, false AS in_span
  FROM (
    SELECT q.qi, n.cp, c.device_id || ':' || c.seq AS id, c.device_id AS dev, c.badge_id AS badge, q.pbnd, q.nwin, q.nper, q.span_start, q.rescan,
           q.prev_before, q.max_gap, q.prev_lo, q.lo, q.hi, q.max_ahead, q.max_delay, q.rcv_upto,
           (date_part('epoch', c.device_time) * 1000)::int8 - ${rowOffset('o', 'c.seq')} AS at,
           (date_part('epoch', c.received_at) * 1000)::int8 AS rcv,
           (date_part('epoch', c.device_time) * 1000)::int8 AS dt,
           q.credit_foreign OR NOT (c.grid_id IS NOT NULL AND c.grid_id <> q.grid_id) AS creditable
    FROM lk_need n JOIN gp_cc_q q ON q.qi = n.qi JOIN gp_cc_t t ON t.qi = n.qi AND t.cp = n.cp
    CROSS JOIN LATERAL (
      SELECT c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id FROM check_ins c WHERE c.checkpoint_id = t.tag AND ${lookupRange}
      UNION ALL
      SELECT c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id FROM check_ins c WHERE c.checkpoint_id IS NULL AND c.tag_id = t.tag AND ${lookupRange}
    ) c
    LEFT JOIN off o ON o.device_id = c.device_id
    OFFSET 0
  ) r
  WHERE creditable AND at < prev_lo AND dt >= lo AND dt < hi AND (rcv_upto IS NULL OR rcv <= rcv_upto)
    AND at - rcv <= max_ahead AND rcv - at <= max_delay
  ORDER BY qi, cp, at DESC, id COLLATE "C" DESC
),
`
  return `
WITH ${offsetsCte(o.cut)},
-- lat / lon: the checkpoint's position (travel), or, for a row the plan places at no checkpoint, the row's own fix (outside_geofence);
-- rcp: for a row the plan places at no checkpoint, its checkpoint as the ingest resolved it (unplanned_checkpoint), else NULL
raw AS (${rawFilter ? '\n  SELECT * FROM (' : ''}
  SELECT t.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, t.cp, t.lat, t.lon, NULL::text AS rcp
  FROM gp_cc_t t JOIN check_ins c ON c.checkpoint_id = t.tag WHERE ${range}${byIndex ? "\n    AND c.checkpoint_id = ANY((SELECT array_agg(DISTINCT tag) FROM gp_cc_t)::text[])" : ''}
  UNION ALL
  SELECT t.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, t.cp, t.lat, t.lon, NULL::text
  FROM gp_cc_t t JOIN check_ins c ON c.checkpoint_id IS NULL AND c.tag_id = t.tag WHERE ${range}
  UNION ALL
  SELECT q.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, NULL::text, c.lat, c.lon, c.checkpoint_id
  FROM gp_cc_q q JOIN check_ins c ON c.grid_id = q.grid_id
  WHERE ${range}${byIndex ? ' AND c.grid_id = ANY((SELECT array_agg(DISTINCT grid_id) FROM gp_cc_q)::text[])' : ''} AND NOT EXISTS (SELECT 1 FROM gp_cc_t t WHERE t.qi = q.qi AND t.tag = coalesce(c.checkpoint_id, c.tag_id))${rawFilter ? `\n  OFFSET 0) c WHERE ${rawFilter}` : ''}
),
timed AS (
  SELECT r.qi, r.device_id || ':' || r.seq AS id, r.device_id AS dev, r.badge_id AS badge, r.grid_id AS dgrid, r.tag_id, r.cp, r.lat, r.lon, r.rcp,
         (date_part('epoch', r.device_time) * 1000)::int8 - ${rowOffset('o', 'r.seq')} AS at,
         (date_part('epoch', r.received_at) * 1000)::int8 AS rcv,
         (date_part('epoch', r.device_time) * 1000)::int8 AS dt,
         r.grid_id IS NOT NULL AND r.grid_id <> q.grid_id AS fgn,
         q.span_start, q.span_end, q.lo, q.hi, q.rescan, q.max_gap, q.max_ahead, q.max_delay, q.credit_foreign, q.prev_before, q.max_speed, q.slack,
         q.rcv_upto, q.wb, q.need, q.pbnd, q.nwin, q.nper, q.travel_dt, q.prev_lo
  FROM raw r JOIN gp_cc_q q ON q.qi = r.qi LEFT JOIN off o ON o.device_id = r.device_id
  OFFSET 0 -- (a fence: each level's expressions are computed once per row, not inlined into every use)
),
judged AS (
  SELECT t.*, t.at - t.rcv <= t.max_ahead AND t.rcv - t.at <= t.max_delay AS plausible,
         width_bucket(t.at, t.wb) AS b, width_bucket(t.at, t.pbnd) AS pb
  FROM timed t WHERE t.dt >= t.lo AND t.dt < t.hi AND (t.rcv_upto IS NULL OR t.rcv <= t.rcv_upto)
  OFFSET 0
),
-- every row in scope of a grid-day, and the credited rows in [prev_lo, previousVisitBefore); no arrays kept
s AS MATERIALIZED (
  SELECT qi, id, dev, badge, dgrid, tag_id, cp, lat, lon, rcp, at, rcv, plausible, fgn,
         plausible AND at >= span_start AND at < span_end AS in_span,
         CASE WHEN plausible THEN at ELSE rcv END >= span_start AND CASE WHEN plausible THEN at ELSE rcv END < span_end AS in_scope,
         plausible AND cp IS NOT NULL AND (credit_foreign OR NOT fgn) AS credited,
         b, pb, CASE WHEN b % 2 = 1 THEN need[(b + 1) / 2] END AS k, pbnd[pb] AS ps, pbnd[pb + 1] AS pe,
         nwin, nper, span_start, rescan, prev_before, max_gap, max_speed, slack, travel_dt
  FROM judged
  WHERE CASE WHEN plausible THEN at ELSE rcv END >= span_start AND CASE WHEN plausible THEN at ELSE rcv END < span_end
     OR (plausible AND cp IS NOT NULL AND (credit_foreign OR NOT fgn) AND at < prev_before AND at >= prev_lo)
),
${lookupCtes}-- THE sort: credited rows by (qi, cp, pb, b, at, id). Every window function below uses
-- this one window (a): rows of one period, and of one cell (window), are contiguous in it.
m1 AS (
  SELECT qi, cp, pb, b, at, id, dev, badge, k, ps, pe, nwin, nper, span_start, rescan, prev_before, max_gap, in_span,
         lag(at) OVER a AS l_at, lead(at) OVER a AS n_at
  FROM (
    SELECT qi, cp, pb, b, at, id, dev, badge, k, ps, pe, nwin, nper, span_start, rescan, prev_before, max_gap, in_span
    FROM s WHERE credited AND (in_span OR at < prev_before)${o.lookups ? '\n    UNION ALL\n    SELECT * FROM lk' : ''}
  ) y
  WINDOW a AS (PARTITION BY qi, cp ORDER BY pb, b, at, id COLLATE "C")
),
-- visits (rescan chaining) and the previous visit (last credited row before previousVisitBefore)
m2 AS (
  SELECT x.*,
         lag(at) OVER a AS al_at, lag(id) OVER a AS al_id, lag(dev) OVER a AS al_dev, lag(badge) OVER a AS al_badge,
         coalesce(lag(is_prev) OVER a, false) AS al_prev, coalesce(lag(b) OVER a, 0) AS al_b, coalesce(lag(pb) OVER a, 0) AS al_pb,
         lead(pb) OVER a AS an_pb,
         -- visits of the same cell before this one (capped at kmax) and after it (capped at kmax - 1)
         ${sum(kmax, (j) => `(lag(b, ${j}) OVER a = b)::int`)} AS before_c,
         ${sum(kmax - 1, (j) => `(lead(b, ${j}) OVER a = b)::int`)} AS after_c,
         ${any(kmax - 1, (j) => `(lag(b, ${j}) OVER a = b AND lag(dev, ${j}) OVER a = dev)`)} AS dup_dev,
         ${any(kmax - 1, (j) => `(lag(b, ${j}) OVER a = b AND lag(badge, ${j}) OVER a = badge)`)} AS dup_badge
  FROM (
    SELECT y.*, in_span AND (l_at IS NULL OR l_at < span_start OR at - l_at >= rescan) AS visit,
           coalesce(at < prev_before AND (n_at IS NULL OR n_at >= prev_before), false) AS is_prev
    FROM m1 y
  ) x
  WHERE visit OR is_prev
  WINDOW a AS (PARTITION BY qi, cp ORDER BY pb, b, at, id COLLATE "C")
),
m3 AS MATERIALIZED (
  SELECT m2.*, before_c + 1 AS wr, before_c + 1 + after_c AS wn, al_pb <> pb AS p_first, an_pb IS DISTINCT FROM pb AS p_last,
         visit AND pb % 2 = 1 AND al_pb = pb AND at - al_at > max_gap AS gap,
         visit AND pb % 2 = 1 AND al_pb <> pb AND at - CASE WHEN pb = 1 AND al_prev THEN al_at ELSE ps END > max_gap AS first_long,
         visit AND pb % 2 = 1 AND an_pb IS DISTINCT FROM pb AND pe - at > max_gap AS last_long
  FROM m2
),
-- the rows the per-row results below come from (a small part of m3)
x3 AS MATERIALIZED (
  -- a (checkpoint, period) with a visit is listed when it can hold an over-long gap (compact.ts: periods);
  -- every row deciding that is in this subset, so the flag is a window over the subset only
  SELECT *, bool_or(gap OR first_long OR last_long) OVER (PARTITION BY qi, cp, pb) AS p_listed FROM m3
  WHERE (visit AND (b % 2 = 1 AND wn < k OR p_first OR p_last OR gap OR (al_b + 1) / 2 + 1 <= b / 2 OR (al_pb + 1) / 2 + 1 <= pb / 2))
     OR (is_prev AND an_pb IS DISTINCT FROM 1)
),
-- consecutive plausible scans per device (the second sort)
d AS (
  SELECT qi, dev, badge, cp, id, at, lat, lon, rescan, max_speed, slack, travel_dt,
         lag(cp) OVER dw AS a_cp, lag(id) OVER dw AS a_id, lag(at) OVER dw AS a_at, lag(lat) OVER dw AS a_lat, lag(lon) OVER dw AS a_lon
  FROM s WHERE in_scope AND plausible
  WINDOW dw AS (PARTITION BY qi, dev ORDER BY at, id COLLATE "C")
),
f1 AS MATERIALIZED (
  SELECT qi, dev, badge, cp, count(*) AS n, count(*) FILTER (WHERE NOT plausible) AS ni, count(*) FILTER (WHERE fgn) AS nf,
         bool_or(plausible) AS pl, min(at) FILTER (WHERE plausible) AS fa, max(at) FILTER (WHERE plausible) AS la
  FROM s WHERE in_scope GROUP BY qi, dev, badge, cp
)
${[
  // visits of short cells (fewer visits than required), in rank order
  branch('E', { qi: 'qi', cp: 'cp', n1: '(b + 1) / 2', n3: 'wr', id: 'id', dev: 'dev', badge: 'badge', at: 'at' }, 'FROM x3 WHERE visit AND b % 2 = 1 AND wn < k'),
  // windows / periods with no visit between this visit and the one before
  branch('R', { qi: 'qi', cp: 'cp', n1: '(al_b + 1) / 2 + 1', n2: 'b / 2', n3: '(al_pb + 1) / 2 + 1', n4: 'pb / 2' },
    'FROM x3 WHERE visit AND ((al_b + 1) / 2 + 1 <= b / 2 OR (al_pb + 1) / 2 + 1 <= pb / 2)'),
  // ... and after the last visit
  branch('T', { qi: 'qi', cp: 'cp', n1: '(b + 1) / 2 + 1', n2: 'nwin', n3: '(pb + 1) / 2 + 1', n4: 'nper' },
    'FROM x3 WHERE visit AND an_pb IS NULL AND ((b + 1) / 2 + 1 <= nwin OR (pb + 1) / 2 + 1 <= nper)'),
  // listed periods: first, last, and each visit ending a long gap (with the visit before it)
  branch('L', { qi: 'qi', cp: 'cp', n1: '(pb + 1) / 2', n2: 'p_first::int', n3: 'p_last::int', n4: 'gap::int', id: 'id', dev: 'dev', badge: 'badge', at: 'at',
    id2: 'al_id', dev2: 'al_dev', badge2: 'al_badge', at2: 'al_at' }, 'FROM x3 WHERE visit AND pb % 2 = 1 AND (p_first OR p_last OR gap) AND p_listed'),
  // previous visit of a checkpoint listed in the first period: cited by that period's first visit ...
  branch('V', { qi: 'qi', cp: 'cp', id: 'al_id', dev: 'al_dev', badge: 'al_badge', at: 'al_at' }, 'FROM x3 WHERE visit AND pb = 1 AND p_first AND al_prev AND p_listed'),
  // ... or, when the first period has no visit, by itself
  branch('V', { qi: 'qi', cp: 'cp', id: 'id', dev: 'dev', badge: 'badge', at: 'at' }, 'FROM x3 WHERE is_prev AND an_pb IS DISTINCT FROM 1'),
  // checkpoints with no visit at all
  branch('N', { qi: 'qi', cp: 'cp' },
    `FROM (SELECT qi, cp FROM gp_cc_cp EXCEPT ALL SELECT qi, cp FROM x3 WHERE visit AND p_first AND (al_prev OR al_at IS NULL)) c`),
  // met cells per grid-day, visits and cited cells per device and per patroller, in one pass
  branch('M', { qi: 'qi', s1: 'CASE WHEN GROUPING(dev) = 0 THEN \'d\' WHEN GROUPING(badge) = 0 THEN \'b\' ELSE \'q\' END', dev: 'dev', badge: 'badge',
    n1: 'count(*)', n2: 'count(*) FILTER (WHERE b % 2 = 1 AND wr = 1 AND wn >= k)',
    n3: 'count(*) FILTER (WHERE b % 2 = 1 AND wr <= k AND NOT dup_dev)', n4: 'count(*) FILTER (WHERE b % 2 = 1 AND wr <= k AND NOT dup_badge)' },
    "FROM m3 WHERE visit GROUP BY GROUPING SETS ((qi), (qi, dev), (qi, badge))"),
  branch('DF', { qi: 'qi', dev: 'dev', n1: 'sum(n)', n2: 'sum(ni)', n3: 'sum(nf)', n4: 'coalesce(sum(n) FILTER (WHERE cp IS NULL), 0)',
    n5: 'count(DISTINCT cp) FILTER (WHERE pl)', n6: 'min(fa)', at: 'max(la)' }, 'FROM f1 GROUP BY qi, dev'),
  branch('BF', { qi: 'qi', badge: 'badge', n1: 'sum(n)', n5: 'count(DISTINCT cp) FILTER (WHERE pl)', n6: 'min(fa)', at: 'max(la)', ids: 'array_agg(DISTINCT dev)' },
    "FROM f1 WHERE badge <> '' GROUP BY qi, badge"),
  // rescans (exact) and travel candidates (generous pre-filter; decided in Node with the reference's haversine)
  branch('X', { qi: 'qi', dev: 'dev', badge: 'badge', cp: 'cp', s1: 'a_cp', id: 'id', id2: 'a_id', at: 'at', n1: 'at - a_at' },
    `FROM d WHERE cp IS NOT NULL AND a_cp IS NOT NULL AND (
       (a_cp = cp AND at - a_at < rescan)
       OR (a_cp <> cp AND at - a_at < travel_dt AND lat IS NOT NULL AND lon IS NOT NULL AND a_lat IS NOT NULL AND a_lon IS NOT NULL AND
           2 * 6371008.8 * asin(least(1, sqrt(power(sin(radians(lat - a_lat) / 2), 2)
             + cos(radians(a_lat)) * cos(radians(lat)) * power(sin(radians(lon - a_lon) / 2), 2))))
           > max_speed / 3.6 * ((at - a_at) / 1000.0) + slack - 1))`),
  // per device: foreign scans, untimeable scans, and the scans placed at no checkpoint: per checkpoint the ingest
  // resolved them to (unplanned_checkpoint; dev2: its grid in the registry, looked up once per signal), else per
  // unknown tag, else without a tag (outside_geofence: its first fix as 'lat lon'; lat / lon of a row with cp NULL
  // are its own, see raw); lead = first by (at, id)
  branch('G', { qi: 'qi', s1: 'kind', dev: 'dev', badge: '(array_agg(badge ORDER BY at, id COLLATE "C"))[1]',
    at: '(array_agg(CASE WHEN plausible THEN at ELSE rcv END ORDER BY at, id COLLATE "C"))[1]', ids: 'array_agg(id ORDER BY at, id COLLATE "C")',
    cps: 'array_agg(DISTINCT cp) FILTER (WHERE cp IS NOT NULL)',
    id2: `CASE kind WHEN 'foreign_device' THEN (array_agg(dgrid ORDER BY at, id COLLATE "C"))[1] WHEN 'clock_implausible' THEN max(abs(at - rcv))::text
            WHEN 'outside_geofence' THEN (array_agg(lat::text || ' ' || lon::text ORDER BY at, id COLLATE "C")
                                          FILTER (WHERE kind = 'outside_geofence' AND lat IS NOT NULL AND lon IS NOT NULL))[1]
            ELSE tagk END`,
    dev2: `CASE kind WHEN 'unplanned_checkpoint' THEN (SELECT k.grid_id FROM checkpoints k WHERE k.id = tagk) END` },
    `FROM (
       SELECT s.*, 'foreign_device' AS kind, '' AS tagk FROM s WHERE in_scope AND fgn
       UNION ALL SELECT s.*, 'clock_implausible', '' FROM s WHERE in_scope AND NOT plausible
       UNION ALL SELECT s.*, CASE WHEN rcp IS NOT NULL THEN 'unplanned_checkpoint' WHEN tag_id = '' THEN 'outside_geofence' ELSE 'unknown_tag' END,
                        coalesce(rcp, tag_id) FROM s WHERE in_scope AND cp IS NULL
     ) x GROUP BY qi, kind, dev, tagk`),
].join('\nUNION ALL\n')}`
}

function assemble(qs: readonly CoverageQuery[], rows: readonly OutRow[]): CompactAggregates[] {
  interface Acc {
    short: Map<string, { checkpointId: string; windowKey: string; visits: number; evidence: VisitRef[] }>
    met: number
    listed: Map<string, { checkpointId: string; periodStart: number; first: VisitRef | null; last: VisitRef | null; longGaps: Array<{ from: VisitRef; to: VisitRef }>; gapAt: number[] }>
    prev: Map<string, VisitRef>
    devices: Map<string, { deviceId: string; scans: number; visits: number; checkpoints: number; firstAt: number | null; lastAt: number | null; clockImplausible: number; foreignScans: number; unknownTagScans: number; cellsCredited: number }>
    devVisits: Map<string, [number, number]>
    patrollers: Map<string, { badge: string; scans: number; visits: number; checkpoints: number; firstAt: number | null; lastAt: number | null; devices: string[]; cellsCredited: number }>
    badgeVisits: Map<string, [number, number]>
    signals: FraudSignal[]
  }
  const accs: Acc[] = qs.map(() => ({
    short: new Map(), met: 0, listed: new Map(), prev: new Map(), devices: new Map(), devVisits: new Map(), patrollers: new Map(), badgeVisits: new Map(), signals: [],
  }))
  const wins = qs.map(sortedWindows)
  const pers = qs.map(sortedPeriods)
  const ref = (id: string | null, at: number | null, dev: string | null, badge: string | null): VisitRef => ({ checkinId: id ?? '', at: at ?? 0, deviceId: dev ?? '', badge })
  const shortCell = (qi: number, wi: number, cp: string) => {
    const a = accs[qi] as Acc
    const w = (wins[qi] as Win[])[wi - 1] as Win
    const key = `${w.key}\u0000${cp}`
    let c = a.short.get(key)
    if (!c) a.short.set(key, (c = { checkpointId: cp, windowKey: w.key, visits: 0, evidence: [] }))
    return c
  }
  const emptyPeriod = (qi: number, pi: number, cp: string) => {
    const p = (pers[qi] as Per[])[pi - 1] as Per
    ;(accs[qi] as Acc).listed.set(`${p.start}\u0000${cp}`, { checkpointId: cp, periodStart: p.start, first: null, last: null, longGaps: [], gapAt: [] })
  }
  const empties = (qi: number, cp: string, wlo: number, whi: number, plo: number, phi: number) => {
    for (let wi = wlo; wi <= whi; wi++) shortCell(qi, wi, cp)
    for (let pi = plo; pi <= phi; pi++) emptyPeriod(qi, pi, cp)
  }
  const num = (x: number | null) => x ?? 0
  for (const r of rows) {
    const a = accs[r.qi] as Acc
    const cp = r.cp ?? ''
    switch (r.k) {
      case 'E': {
        const c = shortCell(r.qi, num(r.n1), cp)
        c.visits++
        c.evidence[num(r.n3) - 1] = ref(r.id, r.at, r.dev, r.badge)
        break
      }
      case 'R':
      case 'T':
        empties(r.qi, cp, num(r.n1), num(r.n2), num(r.n3), num(r.n4))
        break
      case 'N':
        empties(r.qi, cp, 1, (wins[r.qi] as Win[]).length, 1, (pers[r.qi] as Per[]).length)
        break
      case 'L': {
        const p = (pers[r.qi] as Per[])[num(r.n1) - 1] as Per
        const key = `${p.start}\u0000${cp}`
        let e = a.listed.get(key)
        if (!e) a.listed.set(key, (e = { checkpointId: cp, periodStart: p.start, first: null, last: null, longGaps: [], gapAt: [] }))
        const v = ref(r.id, r.at, r.dev, r.badge)
        if (r.n2 === 1) e.first = v
        if (r.n3 === 1) e.last = v
        if (r.n4 === 1) {
          e.longGaps.push({ from: ref(r.id2, r.at2, r.dev2, r.badge2), to: v })
          e.gapAt.push(num(r.at))
        }
        break
      }
      case 'V':
        a.prev.set(cp, ref(r.id, r.at, r.dev, r.badge))
        break
      case 'M':
        if (r.s1 === 'q') a.met = num(r.n2)
        else if (r.s1 === 'd') a.devVisits.set(r.dev ?? '', [num(r.n1), num(r.n3)])
        else if (r.badge !== null) a.badgeVisits.set(r.badge, [num(r.n1), num(r.n4)])
        break
      case 'DF':
        a.devices.set(r.dev ?? '', {
          deviceId: r.dev ?? '', scans: num(r.n1), visits: 0, checkpoints: num(r.n5), firstAt: r.n6, lastAt: r.at,
          clockImplausible: num(r.n2), foreignScans: num(r.n3), unknownTagScans: num(r.n4), cellsCredited: 0,
        })
        break
      case 'BF':
        a.patrollers.set(r.badge ?? '', {
          badge: r.badge ?? '', scans: num(r.n1), visits: 0, checkpoints: num(r.n5), firstAt: r.n6, lastAt: r.at, devices: [...(r.ids ?? [])].sort(cmp), cellsCredited: 0,
        })
        break
      case 'X': {
        const pair: PairRow = { qi: r.qi, deviceId: r.dev ?? '', badge: r.badge, aCp: r.s1 ?? '', bCp: cp, aId: r.id2 ?? '', bId: r.id ?? '', at: num(r.at), dt: num(r.n1) }
        const s = pairSignal(qs[r.qi] as CoverageQuery, pair)
        if (s) a.signals.push(s)
        break
      }
      case 'G': {
        const g: GroupRow = { qi: r.qi, kind: r.s1 as GroupRow['kind'], deviceId: r.dev ?? '', badge: r.badge, at: num(r.at), ids: r.ids ?? [], cps: r.cps, detail: r.id2 ?? '', grid: r.dev2 }
        a.signals.push(groupSignal(qs[r.qi] as CoverageQuery, g))
        break
      }
    }
  }
  return accs.map((a, qi) => {
    const firstStart = (pers[qi] as Per[])[0]?.start
    const periods = [...a.listed.values()]
      .map(({ gapAt, ...p }) => ({ ...p, longGaps: p.longGaps.map((g, i) => ({ g, at: gapAt[i] ?? 0 })).sort((x, y) => x.at - y.at).map((x) => x.g) }))
      .sort((x, y) => x.periodStart - y.periodStart || cmp(x.checkpointId, y.checkpointId))
    const listedFirst = new Set(periods.filter((p) => p.periodStart === firstStart).map((p) => p.checkpointId))
    for (const [id, d] of a.devices) {
      const [visits, cells] = a.devVisits.get(id) ?? [0, 0]
      d.visits = visits
      d.cellsCredited = cells
    }
    for (const [badge, p] of a.patrollers) {
      const [visits, cells] = a.badgeVisits.get(badge) ?? [0, 0]
      p.visits = visits
      p.cellsCredited = cells
    }
    return {
      shortCells: [...a.short.values()].sort((x, y) => cmp(x.windowKey, y.windowKey) || cmp(x.checkpointId, y.checkpointId)),
      metCells: a.met,
      periods,
      previousVisits: [...a.prev]
        .filter(([cp]) => listedFirst.has(cp))
        .map(([checkpointId, visit]) => ({ checkpointId, visit }))
        .sort((x, y) => cmp(x.checkpointId, y.checkpointId)),
      devices: [...a.devices.values()].sort((x, y) => cmp(x.deviceId, y.deviceId)),
      patrollers: [...a.patrollers.values()].sort((x, y) => cmp(x.badge, y.badge)),
      signals: a.signals.sort(bySignal),
    }
  })
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
