import type { Db, Queryable } from '../db.ts'
import type { CoverageAggregates, CoverageQuery, CoverageReportRow, RulesRepositories } from '../rules-types.ts'
import type { CellAggregate, DeviceAggregate, FraudSignal, PatrollerAggregate, PeriodAggregate, VisitRef } from '../../rules/coverage/inputs.ts'
import { bySignal, haversineMeters, outsideGeofenceDetail } from '../../rules/coverage/signals.ts'
import { MAX_OFFSET_SLACK_MS, offsetCut, offsetSlacks, offsetsCte, resyncedCte, rowOffset } from './clock.ts'
import { compactMany } from './coverage-compact.ts'

const DAY = 86_400_000
/** touched(): measurements from this long before the rows' receipt time the device's offsets (firstAtMs). */
const TOUCHED_CUT_MS = 14 * DAY

/** The earliest span start of a grid-day (its periods'). */
export const spanStartOf = (q: CoverageQuery): number => Math.min(...q.periods.map((p) => p.start))

/**
 * Rows of check_ins a grid-day's aggregate considers, by raw device time
 * (chunk pruning on the hypertable): [span start − 1 day − slack, span end + 1 day + slack)
 * with slack = the largest |clock offset| that can time a row of it (≤ 2 days;
 * queries/clock.ts offsetSlacks: every device's latest and every measurement
 * since offsetCut(span start)). Every plausible row of
 * the day and every previous visit of the day before lies inside; an implausible
 * row (untimeable) is seen only when its raw clock falls inside too.
 * The contract test feeds the reference aggregate exactly these rows.
 */
export function scanBounds(q: CoverageQuery, maxAbsOffsetMs: number): { lo: number; hi: number } {
  const slack = DAY + Math.min(Math.abs(maxAbsOffsetMs), MAX_OFFSET_SLACK_MS)
  const start = Math.min(...q.periods.map((p) => p.start))
  const end = Math.max(...q.periods.map((p) => p.end))
  return { lo: start - slack, hi: end + slack }
}

const EMPTY: CoverageAggregates = { cells: [], periods: [], previousVisits: [], devices: [], patrollers: [], signals: [] }

export function coverageQueries(db: Db): RulesRepositories['coverage'] {
  const many = (qs: readonly CoverageQuery[]) => aggregatesMany(db, qs)
  return {
    aggregates: async (q) => (await many([q]))[0] ?? EMPTY,
    aggregatesMany: many,
    compactMany: (qs) => compactMany(db, qs),
    async touched(sinceMs, untilMs) {
      // uplink_seen carries received_at (BRIN, migration 041: appended in receipt order, so
      // the block ranges since the last watermark are read, not the table); grouped by the
      // tag (or the ingest-resolved checkpoint) and the device's grid, which is what a plan
      // matches on. PGlite has no autovacuum to summarise completed ranges: an unsummarised
      // range is always read, so the embedded store summarises the new ones first (to_regclass:
      // NULL, nothing to do, before migration 041).
      if (db.driver === 'pglite') await db.query("SELECT brin_summarize_new_values(to_regclass('uplink_seen_received_brin'))")
      // Also the check-ins a clock offset measured then re-times: its device's rows recorded after the
      // device's previous sync (by seq; all its rows when there is none), of the last TOUCHED_CUT_MS.
      // firstAtMs: the earliest of them timed as stage A times them (device time less the offset of
      // the device's first time sync after the row, else its latest: queries/clock.ts; measurements
      // from TOUCHED_CUT_MS before sinceMs, of the devices touched); a re-timed row counts with the
      // earlier of its new and its old time (it may have left a window that has ended).
      return db.query<{ tag: string; deviceGridId: string | null; fromMs: number; toMs: number; firstAtMs: number }>(
        `WITH rcv AS (
           SELECT coalesce(c.checkpoint_id, c.tag_id) AS tag, c.grid_id, c.device_id, c.seq, c.device_time, NULL::int8 AS old_off
           FROM uplink_seen u
           JOIN check_ins c ON c.device_id = u.device_id AND c.seq = u.seq AND c.device_time = u.device_time
           WHERE u.kind = 'checkin' AND u.received_at > to_timestamp($1::float8 / 1000) AND u.received_at <= to_timestamp($2::float8 / 1000)
         ), ${resyncedCte('to_timestamp($1::float8 / 1000)', 'to_timestamp($2::float8 / 1000)')}, r AS (
           SELECT * FROM rcv
           UNION ALL
           SELECT coalesce(c.checkpoint_id, c.tag_id), c.grid_id, c.device_id, c.seq, c.device_time, coalesce(s.old_off, 0)
           FROM synced s JOIN check_ins c ON c.device_id = s.device_id
           WHERE (s.after_seq IS NULL OR c.seq > s.after_seq) AND c.device_time >= to_timestamp($3::float8 / 1000)
         ),
         ${offsetsCte(sinceMs - TOUCHED_CUT_MS, 'off', 'SELECT device_id FROM r')}
         SELECT r.tag, r.grid_id AS "deviceGridId",
                (extract(epoch FROM min(r.device_time)) * 1000)::int8 AS "fromMs", (extract(epoch FROM max(r.device_time)) * 1000)::int8 AS "toMs",
                min((extract(epoch FROM r.device_time) * 1000)::int8 - greatest(${rowOffset('off', 'r.seq')}, coalesce(r.old_off, ${rowOffset('off', 'r.seq')}))) AS "firstAtMs"
         FROM r LEFT JOIN off ON off.device_id = r.device_id
         GROUP BY 1, 2 ORDER BY 1, 2`,
        [sinceMs, untilMs, sinceMs - TOUCHED_CUT_MS],
      )
    },
    async changedSince(items, untilMs) {
      if (items.length === 0) return []
      const sinceMs = Math.min(...items.map((x) => x.sinceMs))
      if (untilMs <= sinceMs) untilMs = sinceMs
      // The widest scan bounds any offset could give (rows of re-synced devices are looked for in it).
      const wide = items.map((x) => scanBounds(x.query, MAX_OFFSET_SLACK_MS))
      const fromMs = Math.min(...wide.map((w) => w.lo))
      const toMs = Math.max(...wide.map((w) => w.hi))
      if (db.driver === 'pglite') await db.query("SELECT brin_summarize_new_values(to_regclass('uplink_seen_received_brin'))")
      const rows = await db.query<{ tag: string; deviceGridId: string | null; fromMs: number; toMs: number; lastMs: number }>(
        `WITH rcv AS (
           SELECT coalesce(c.checkpoint_id, c.tag_id) AS tag, c.grid_id AS g, c.device_time AS dt, u.received_at AS last
           FROM uplink_seen u
           JOIN check_ins c ON c.device_id = u.device_id AND c.seq = u.seq AND c.device_time = u.device_time
           WHERE u.kind = 'checkin' AND u.received_at > to_timestamp($1::float8 / 1000) AND u.received_at <= to_timestamp($2::float8 / 1000)
         ), ${resyncedCte('to_timestamp($1::float8 / 1000)', 'to_timestamp($2::float8 / 1000)')}, shifted AS (
           SELECT coalesce(c.checkpoint_id, c.tag_id) AS tag, c.grid_id AS g, c.device_time AS dt, s.last
           FROM synced s JOIN check_ins c ON c.device_id = s.device_id
           WHERE c.device_time >= to_timestamp($3::float8 / 1000) AND c.device_time < to_timestamp($4::float8 / 1000)
             AND (s.after_seq IS NULL OR c.seq > s.after_seq)
         )
         SELECT tag, g AS "deviceGridId", (extract(epoch FROM min(dt)) * 1000)::int8 AS "fromMs", (extract(epoch FROM max(dt)) * 1000)::int8 AS "toMs",
                (extract(epoch FROM max(last)) * 1000)::int8 AS "lastMs"
         FROM (SELECT * FROM rcv UNION ALL SELECT * FROM shifted) x
         GROUP BY 1, 2 ORDER BY 1, 2`,
        [sinceMs, untilMs, fromMs, toMs],
      )
      // Each grid-day's scan slack (queries/clock.ts, as stage A computes it) now and at its sinceMs:
      // where it moved, the scan bounds (and the previous visit) may have.
      const cuts = items.map((x) => offsetCut(spanStartOf(x.query)))
      const both = await offsetSlacks(db, [...cuts.map((cutMs) => ({ cutMs })), ...items.map((x, i) => ({ cutMs: cuts[i] as number, asOfMs: x.sinceMs }))])
      const now = both.slice(0, items.length)
      const then = both.slice(items.length)
      const byTag = new Map<string, typeof rows>()
      const byGrid = new Map<string, typeof rows>()
      for (const r of rows) {
        byTag.set(r.tag, [...(byTag.get(r.tag) ?? []), r])
        if (r.deviceGridId !== null) byGrid.set(r.deviceGridId, [...(byGrid.get(r.deviceGridId) ?? []), r])
      }
      // What stage A reads for a grid-day: rows by its checkpoint ids and tags, and rows of its
      // devices, with a raw device time inside its scan bounds.
      return items.map(({ query: q, sinceMs: since }, i) => {
        if (now[i] !== then[i]) return true
        const b = scanBounds(q, now[i] as number)
        const hit = (rs: typeof rows | undefined) => (rs ?? []).some((r) => Number(r.lastMs) > since && Number(r.toMs) >= b.lo && Number(r.fromMs) < b.hi)
        return hit(byGrid.get(q.gridId)) || q.checkpoints.some((c) => hit(byTag.get(c.id)) || c.tagIds.some((t) => hit(byTag.get(t))))
      })
    },
  }
}

export async function aggregatesMany(db: Db, qs: readonly CoverageQuery[]): Promise<CoverageAggregates[]> {
  const live = qs.map((q, i) => ({ q, i })).filter((x) => x.q.periods.length > 0)
  if (live.length === 0) return qs.map(() => EMPTY)
  return db.transaction(async (tx) => {
    // The sorts below (≈ one row per check-in of the batch) stay in memory.
    await tx.exec("SET LOCAL work_mem = '64MB'")
    const cuts = live.map((x) => offsetCut(spanStartOf(x.q)))
    const slacks = await offsetSlacks(tx, cuts.map((cutMs) => ({ cutMs })))
    await loadParams(tx, live, slacks)
    const bounds = live.map((x, j) => scanBounds(x.q, slacks[j] as number))
    await tx.exec(scansSql(Math.min(...bounds.map((b) => b.lo)), Math.max(...bounds.map((b) => b.hi)), Math.min(...cuts)))
    const [cells, periods, prev, devices, patrollers, pairs, groups] = [
      await tx.query<CellRow>(CELLS_SQL),
      await tx.query<PeriodRow>(PERIODS_SQL),
      await tx.query<PrevRow>(PREV_SQL),
      await tx.query<FigRow & { deviceId: string; clockImplausible: number; foreignScans: number; unknownTagScans: number }>(DEVICES_SQL),
      await tx.query<FigRow & { badge: string; devices: string[] }>(PATROLLERS_SQL),
      await tx.query<PairRow>(PAIRS_SQL),
      await tx.query<GroupRow>(GROUPS_SQL),
    ]
    await tx.exec('DROP VIEW gp_cov_visits; DROP TABLE gp_cov_q, gp_cov_t, gp_cov_pos, gp_cov_w, gp_cov_p, gp_cov_scans')
    const out = qs.map(() => ({
      cells: [] as CellAggregate[],
      periods: [] as PeriodAggregate[],
      previousVisits: [] as Array<{ checkpointId: string; visit: VisitRef }>,
      devices: [] as DeviceAggregate[],
      patrollers: [] as PatrollerAggregate[],
      signals: [] as FraudSignal[],
    }))
    const at = (qi: number) => out[qi] as (typeof out)[number]
    let cell: { qi: number; c: { checkpointId: string; windowKey: string; visits: number; evidence: VisitRef[] } } | undefined
    for (const c of cells) {
      if (!cell || cell.qi !== c.qi || cell.c.windowKey !== c.key || cell.c.checkpointId !== c.cp) {
        cell = { qi: c.qi, c: { checkpointId: c.cp, windowKey: c.key, visits: c.n, evidence: [] } }
        at(c.qi).cells.push(cell.c)
      }
      cell.c.evidence.push(ref(c))
    }
    let period: { qi: number; p: { checkpointId: string; periodStart: number; first: VisitRef; last: VisitRef; longGaps: Array<{ from: VisitRef; to: VisitRef }> } } | undefined
    for (const p of periods) {
      if (p.is_first) {
        period = { qi: p.qi, p: { checkpointId: p.cp, periodStart: p.ps, first: ref(p), last: ref(p), longGaps: [] } }
        at(p.qi).periods.push(period.p)
      }
      if (!period) continue
      if (p.ends_gap) period.p.longGaps.push({ from: { checkinId: p.p_id as string, at: p.p_at as number, deviceId: p.p_dev as string, badge: p.p_badge }, to: ref(p) })
      if (p.is_last) period.p.last = ref(p)
    }
    for (const p of prev) at(p.qi).previousVisits.push({ checkpointId: p.cp, visit: ref(p) })
    for (const { qi, ...d } of devices) at(qi).devices.push(d)
    for (const { qi, ...p } of patrollers) at(qi).patrollers.push({ ...p, devices: [...p.devices].sort(cmp) })
    for (const p of pairs) {
      const q = qs[p.qi]
      const s = pairSignal(q as CoverageQuery, p)
      if (s) at(p.qi).signals.push(s)
    }
    for (const g of groups) at(g.qi).signals.push(groupSignal(qs[g.qi] as CoverageQuery, g))
    for (const o of out) {
      o.cells.sort((a, b) => cmp(a.windowKey, b.windowKey) || cmp(a.checkpointId, b.checkpointId))
      o.periods.sort((a, b) => a.periodStart - b.periodStart || cmp(a.checkpointId, b.checkpointId))
      o.previousVisits.sort((a, b) => cmp(a.checkpointId, b.checkpointId))
      o.devices.sort((a, b) => cmp(a.deviceId, b.deviceId))
      o.patrollers.sort((a, b) => cmp(a.badge, b.badge))
      o.signals.sort(bySignal)
    }
    return out
  })
}

/** Parameters as temp tables (unnest of arrays: one round trip each, any number of grids). */
async function loadParams(tx: Queryable, live: ReadonlyArray<{ q: CoverageQuery; i: number }>, slacks: readonly number[]): Promise<void> {
  const col = <T>(f: (x: { q: CoverageQuery; i: number }, j: number) => T) => live.map(f)
  await tx.query(
    `CREATE TEMP TABLE gp_cov_q ON COMMIT DROP AS
     SELECT * FROM unnest($1::int[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::bool[], $12::int8[], $13::float8[], $14::float8[], $15::int8[])
       AS q(qi, grid_id, span_start, span_end, lo, hi, rescan, max_gap, max_ahead, max_delay, credit_foreign, prev_before, max_speed, slack, rcv_upto)`,
    [
      col((x) => x.i),
      col((x) => x.q.gridId),
      col((x) => Math.min(...x.q.periods.map((p) => p.start))),
      col((x) => Math.max(...x.q.periods.map((p) => p.end))),
      col((x, j) => scanBounds(x.q, slacks[j] as number).lo),
      col((x, j) => scanBounds(x.q, slacks[j] as number).hi),
      col((x) => Math.round(x.q.rescanMs)),
      col((x) => Math.round(x.q.maxGapMs)),
      col((x) => Math.round(x.q.maxAheadMs)),
      col((x) => Math.round(x.q.maxDelayMs)),
      col((x) => x.q.creditForeignDevices),
      col((x) => x.q.previousVisitBefore ?? null),
      col((x) => x.q.maxSpeedKmh),
      col((x) => x.q.travelSlackMeters),
      col((x) => x.q.receivedUpTo ?? null),
    ],
  )
  // tag → checkpoint exactly as the reference resolves it (checkpoint id first, then its tags; later wins).
  const t: [number[], string[], string[]] = [[], [], []]
  for (const { q, i } of live) {
    const byTag = new Map<string, string>()
    for (const c of q.checkpoints) {
      byTag.set(c.id, c.id)
      for (const tag of c.tagIds) byTag.set(tag, c.id)
    }
    for (const [tag, cp] of byTag) {
      t[0].push(i)
      t[1].push(tag)
      t[2].push(cp)
    }
  }
  await tx.query('CREATE TEMP TABLE gp_cov_t ON COMMIT DROP AS SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) AS t(qi, tag, cp)', t)
  await tx.exec('CREATE INDEX ON gp_cov_t (tag); ANALYZE gp_cov_q; ANALYZE gp_cov_t')
  const pos: [number[], string[], number[], number[]] = [[], [], [], []]
  for (const { q, i } of live) {
    for (const c of q.checkpoints) {
      if (c.lat === undefined || c.lon === undefined) continue
      pos[0].push(i)
      pos[1].push(c.id)
      pos[2].push(c.lat)
      pos[3].push(c.lon)
    }
  }
  await tx.query('CREATE TEMP TABLE gp_cov_pos ON COMMIT DROP AS SELECT * FROM unnest($1::int[], $2::text[], $3::float8[], $4::float8[]) AS p(qi, cp, lat, lon)', pos)
  const w: [number[], string[], number[], number[], number[]] = [[], [], [], [], []]
  const p: [number[], number[], number[]] = [[], [], []]
  for (const { q, i } of live) {
    for (const x of q.windows) {
      w[0].push(i)
      w[1].push(x.key)
      w[2].push(x.start)
      w[3].push(x.end)
      w[4].push(x.evidenceLimit)
    }
    for (const x of q.periods) {
      p[0].push(i)
      p[1].push(x.start)
      p[2].push(x.end)
    }
  }
  await tx.query('CREATE TEMP TABLE gp_cov_w ON COMMIT DROP AS SELECT * FROM unnest($1::int[], $2::text[], $3::int8[], $4::int8[], $5::int[]) AS w(qi, key, s, e, k)', w)
  await tx.query('CREATE TEMP TABLE gp_cov_p ON COMMIT DROP AS SELECT * FROM unnest($1::int[], $2::int8[], $3::int8[]) AS p(qi, s, e)', p)
}

/*
 * Every row in scope of a grid-day, timed (inputs.ts: time basis). A row joins a
 * query when its tag (or ingest-resolved checkpoint) is one of the plan's, or when
 * its device is assigned to the grid; one row may serve two grids. Device time is
 * bounded per query (scanBounds) so TimescaleDB prunes chunks.
 */
// The bounds as constants (not parameters): the planner sees how much of the table the range holds.
const ts = (ms: number) => `'${new Date(ms).toISOString()}'::timestamptz`
const scansSql = (lo: number, hi: number, cut: number) => `
CREATE TEMP TABLE gp_cov_scans ON COMMIT DROP AS
WITH ${offsetsCte(cut)},
-- A batch's rows, found through the indexes (by checkpoint, by raw tag when the
-- ingest left the checkpoint unresolved, by device grid): a batch reads its own
-- rows, not the whole day. coalesce(checkpoint_id, tag_id) = tag, split so each
-- part can use an index. fix_lat / fix_lon: the position of a row the plan places at
-- no checkpoint (an outside_geofence signal's fix), rcp: its checkpoint as the ingest
-- resolved it (one not in the plan: unplanned_checkpoint); NULL for the others.
raw AS (
  SELECT t.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, t.cp, NULL::float8 AS fix_lat, NULL::float8 AS fix_lon, NULL::text AS rcp
  FROM gp_cov_t t JOIN check_ins c ON c.checkpoint_id = t.tag
  WHERE c.device_time >= ${ts(lo)} AND c.device_time < ${ts(hi)}
  UNION ALL
  SELECT t.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, t.cp, NULL::float8, NULL::float8, NULL::text
  FROM gp_cov_t t JOIN check_ins c ON c.checkpoint_id IS NULL AND c.tag_id = t.tag
  WHERE c.device_time >= ${ts(lo)} AND c.device_time < ${ts(hi)}
  UNION ALL
  SELECT q.qi, c.device_id, c.seq, c.device_time, c.received_at, c.grid_id, c.badge_id, c.tag_id, NULL::text, c.lat, c.lon, c.checkpoint_id
  FROM gp_cov_q q JOIN check_ins c ON c.grid_id = q.grid_id
  WHERE c.device_time >= ${ts(lo)} AND c.device_time < ${ts(hi)}
    AND NOT EXISTS (SELECT 1 FROM gp_cov_t t WHERE t.qi = q.qi AND t.tag = coalesce(c.checkpoint_id, c.tag_id))
),
timed AS (
  SELECT r.qi, r.device_id || ':' || r.seq AS id, r.device_id, r.badge_id AS badge, r.grid_id AS device_grid, r.tag_id, r.cp, r.fix_lat, r.fix_lon, r.rcp,
         (date_part('epoch', r.device_time) * 1000)::int8 - ${rowOffset('o', 'r.seq')} AS at,
         (date_part('epoch', r.received_at) * 1000)::int8 AS rcv,
         (date_part('epoch', r.device_time) * 1000)::int8 AS dt,
         q.span_start, q.span_end, q.credit_foreign, q.max_ahead, q.max_delay, q.lo, q.hi, q.rescan, q.rcv_upto,
         r.grid_id IS NOT NULL AND r.grid_id <> q.grid_id AS foreign_dev
  FROM raw r JOIN gp_cov_q q ON q.qi = r.qi LEFT JOIN off o ON o.device_id = r.device_id
),
judged AS (
  SELECT *, (at - rcv <= max_ahead AND rcv - at <= max_delay) AS plausible FROM timed WHERE dt >= lo AND dt < hi AND (rcv_upto IS NULL OR rcv <= rcv_upto)
)
SELECT qi, id, device_id, badge, device_grid, tag_id, cp, fix_lat, fix_lon, rcp, at, rcv, plausible, foreign_dev, in_scope, credited, in_span,
       -- a visit: a credited scan in the span not closer than rescanMs to the previous one of its checkpoint
       credited AND in_span AND coalesce(at - lag(at) OVER (PARTITION BY qi, cp, credited AND in_span ORDER BY at, id COLLATE "C") >= rescan, true) AS visit
FROM (
  SELECT *,
         (CASE WHEN plausible THEN at ELSE rcv END) >= span_start AND (CASE WHEN plausible THEN at ELSE rcv END) < span_end AS in_scope,
         plausible AND cp IS NOT NULL AND (credit_foreign OR NOT foreign_dev) AS credited,
         plausible AND at >= span_start AND at < span_end AS in_span
  FROM judged
) s;
ANALYZE gp_cov_scans;
-- Visits: credited scans chained by rescanMs to the previous credited scan of their checkpoint.
CREATE TEMP VIEW gp_cov_visits AS SELECT qi, id, device_id, badge, cp, at FROM gp_cov_scans WHERE visit;
`

/** One row per cited visit (the first k of the cell), with the cell's visit count. */
const CELLS_SQL = `
SELECT qi, cp, key, n::int AS n, id, at, device_id AS dev, badge FROM (
  SELECT v.qi, v.cp, w.key, w.k, v.id, v.at, v.device_id, v.badge,
         count(*) OVER c AS n, row_number() OVER (c ORDER BY v.at, v.id COLLATE "C") AS rn
  FROM gp_cov_visits v JOIN gp_cov_w w ON w.qi = v.qi AND v.at >= w.s AND v.at < w.e
  WINDOW c AS (PARTITION BY v.qi, v.cp, w.key)
) x WHERE rn <= k ORDER BY qi, cp, key, rn`

/**
 * Visits per (period, checkpoint) in order, keeping only what the contract
 * needs: the first, the last, and each visit that ends an over-long gap (with
 * the visit before it).
 */
const PERIODS_SQL = `
SELECT x.qi, x.ps, x.cp, x.rn = 1 AS is_first, x.rn = x.n AS is_last, x.d > q.max_gap AS ends_gap,
       x.id, x.at, x.device_id AS dev, x.badge, x.p_id, x.p_at, x.p_dev, x.p_badge
FROM (
  SELECT v.qi, p.s AS ps, v.cp, v.id, v.at, v.device_id, v.badge,
         row_number() OVER w AS rn, count(*) OVER (PARTITION BY v.qi, p.s, v.cp) AS n,
         v.at - lag(v.at) OVER w AS d, lag(v.id) OVER w AS p_id, lag(v.at) OVER w AS p_at,
         lag(v.device_id) OVER w AS p_dev, lag(v.badge) OVER w AS p_badge
  FROM gp_cov_visits v JOIN gp_cov_p p ON p.qi = v.qi AND v.at >= p.s AND v.at < p.e
  WINDOW w AS (PARTITION BY v.qi, p.s, v.cp ORDER BY v.at, v.id COLLATE "C")
) x JOIN gp_cov_q q ON q.qi = x.qi
WHERE x.rn = 1 OR x.rn = x.n OR x.d > q.max_gap
ORDER BY x.qi, x.ps, x.cp, x.rn`

const PREV_SQL = `
SELECT DISTINCT ON (v.qi, v.cp) v.qi, v.cp, v.id, v.at, v.device_id AS dev, v.badge
FROM gp_cov_scans v JOIN gp_cov_q q ON q.qi = v.qi
WHERE v.credited AND q.prev_before IS NOT NULL AND v.at < q.prev_before
ORDER BY v.qi, v.cp, v.at DESC, v.id COLLATE "C" DESC`

const FIGURES = `count(*)::int AS scans, coalesce(max(n.visits), 0)::int AS visits,
  count(DISTINCT s.cp) FILTER (WHERE s.plausible)::int AS checkpoints,
  min(s.at) FILTER (WHERE s.plausible) AS "firstAt", max(s.at) FILTER (WHERE s.plausible) AS "lastAt"`

const DEVICES_SQL = `
SELECT s.qi, s.device_id AS "deviceId", ${FIGURES},
       count(*) FILTER (WHERE NOT s.plausible)::int AS "clockImplausible",
       count(*) FILTER (WHERE s.foreign_dev)::int AS "foreignScans",
       count(*) FILTER (WHERE s.cp IS NULL)::int AS "unknownTagScans"
FROM gp_cov_scans s
LEFT JOIN (SELECT qi, device_id, count(*) AS visits FROM gp_cov_visits GROUP BY 1, 2) n ON n.qi = s.qi AND n.device_id = s.device_id
WHERE s.in_scope GROUP BY s.qi, s.device_id`

const PATROLLERS_SQL = `
SELECT s.qi, s.badge, ${FIGURES}, array_agg(DISTINCT s.device_id) AS devices
FROM gp_cov_scans s
LEFT JOIN (SELECT qi, badge, count(*) AS visits FROM gp_cov_visits WHERE badge <> '' GROUP BY 1, 2) n ON n.qi = s.qi AND n.badge = s.badge
WHERE s.in_scope AND s.badge <> '' GROUP BY s.qi, s.badge`

/*
 * Consecutive plausible scans per device: rescans (exact here) and travel
 * candidates. The distance test in SQL is only a generous pre-filter (1 m
 * margin); the exact decision and figures are made in Node with the
 * reference's own haversine, so both drivers and the reference agree to the bit.
 */
const PAIRS_SQL = `
SELECT x.qi, x.device_id AS "deviceId", x.badge, x.a_cp AS "aCp", x.cp AS "bCp", x.a_id AS "aId", x.id AS "bId", x.at, x.at - x.a_at AS dt
FROM (
  SELECT s.qi, s.device_id, s.badge, s.cp, s.id, s.at,
         lag(s.cp) OVER w AS a_cp, lag(s.id) OVER w AS a_id, lag(s.at) OVER w AS a_at
  FROM gp_cov_scans s WHERE s.in_scope AND s.plausible
  WINDOW w AS (PARTITION BY s.qi, s.device_id ORDER BY s.at, s.id COLLATE "C")
) x JOIN gp_cov_q q ON q.qi = x.qi
LEFT JOIN gp_cov_pos pa ON pa.qi = x.qi AND pa.cp = x.a_cp
LEFT JOIN gp_cov_pos pb ON pb.qi = x.qi AND pb.cp = x.cp
WHERE x.cp IS NOT NULL AND x.a_cp IS NOT NULL AND (
  (x.a_cp = x.cp AND x.at - x.a_at < q.rescan)
  OR (x.a_cp <> x.cp AND pa.lat IS NOT NULL AND pb.lat IS NOT NULL AND
      2 * 6371008.8 * asin(least(1, sqrt(power(sin(radians(pb.lat - pa.lat) / 2), 2)
        + cos(radians(pa.lat)) * cos(radians(pb.lat)) * power(sin(radians(pb.lon - pa.lon) / 2), 2))))
      > q.max_speed / 3.6 * ((x.at - x.a_at) / 1000.0) + q.slack - 1))`

/**
 * Per device: foreign scans, untimeable scans, and the scans the plan places at no checkpoint:
 * per checkpoint the ingest resolved them to (unplanned_checkpoint: detail the checkpoint, grid
 * its grid in the registry, looked up once per signal), else per unknown tag, else without a tag
 * (outside_geofence: GPS fixes in no geofence; detail its first fix as 'lat lon', the nearest
 * checkpoint found in Node: groupSignal); lead = first by (at, id).
 */
const GROUPS_SQL = `
SELECT qi, kind, device_id AS "deviceId",
       (array_agg(badge ORDER BY at, id COLLATE "C"))[1] AS badge,
       (array_agg(CASE WHEN plausible THEN at ELSE rcv END ORDER BY at, id COLLATE "C"))[1] AS at,
       array_agg(id ORDER BY at, id COLLATE "C") AS ids,
       array_agg(DISTINCT cp) FILTER (WHERE cp IS NOT NULL) AS cps,
       CASE kind WHEN 'foreign_device' THEN (array_agg(device_grid ORDER BY at, id COLLATE "C"))[1]
                 WHEN 'clock_implausible' THEN max(abs(at - rcv))::text
                 WHEN 'outside_geofence' THEN (array_agg(fix_lat::text || ' ' || fix_lon::text ORDER BY at, id COLLATE "C")
                                                FILTER (WHERE kind = 'outside_geofence' AND fix_lat IS NOT NULL AND fix_lon IS NOT NULL))[1]
                 ELSE tagk END AS detail,
       CASE kind WHEN 'unplanned_checkpoint' THEN (SELECT k.grid_id FROM checkpoints k WHERE k.id = tagk) END AS grid
FROM (
  SELECT s.*, 'foreign_device' AS kind, '' AS tagk FROM gp_cov_scans s WHERE s.in_scope AND s.foreign_dev
  UNION ALL SELECT s.*, 'clock_implausible', '' FROM gp_cov_scans s WHERE s.in_scope AND NOT s.plausible
  UNION ALL SELECT s.*, CASE WHEN s.rcp IS NOT NULL THEN 'unplanned_checkpoint' WHEN s.tag_id = '' THEN 'outside_geofence' ELSE 'unknown_tag' END,
                   coalesce(s.rcp, s.tag_id) FROM gp_cov_scans s WHERE s.in_scope AND s.cp IS NULL
) x GROUP BY qi, kind, device_id, tagk`

interface RefRow {
  id: string
  at: number
  dev: string
  badge: string | null
}
interface CellRow extends RefRow {
  qi: number
  cp: string
  key: string
  n: number
}
interface PeriodRow extends RefRow {
  qi: number
  ps: number
  cp: string
  is_first: boolean
  is_last: boolean
  ends_gap: boolean | null
  p_id: string | null
  p_at: number | null
  p_dev: string | null
  p_badge: string | null
}
interface PrevRow extends RefRow {
  qi: number
  cp: string
}
interface FigRow {
  qi: number
  scans: number
  visits: number
  checkpoints: number
  firstAt: number | null
  lastAt: number | null
}
export interface PairRow {
  qi: number
  deviceId: string
  badge: string | null
  aCp: string
  bCp: string
  aId: string
  bId: string
  at: number
  dt: number
}
export interface GroupRow {
  qi: number
  kind: 'foreign_device' | 'clock_implausible' | 'unknown_tag' | 'outside_geofence' | 'unplanned_checkpoint'
  deviceId: string
  badge: string | null
  at: number
  ids: string[]
  cps: string[] | null
  /** assignedGrid; worst skew (ms); the tag; the first fix as 'lat lon' (null or '': none); the checkpoint. */
  detail: string | number | null
  /** unplanned_checkpoint: the checkpoint's grid in the registry (null: not registered). */
  grid?: string | null
}

function ref(r: RefRow): VisitRef {
  return { checkinId: r.id, at: r.at, deviceId: r.dev, badge: r.badge }
}

export function pairSignal(q: CoverageQuery, p: PairRow): FraudSignal | undefined {
  const base = { deviceId: p.deviceId, badge: p.badge, checkinIds: [p.aId, p.bId], at: p.at }
  if (p.aCp === p.bCp) {
    if (p.dt >= q.rescanMs) return undefined
    return { kind: 'rescan', ...base, checkpointIds: [p.aCp], detail: { seconds: Math.round(p.dt / 1000) } }
  }
  const ca = q.checkpoints.find((c) => c.id === p.aCp)
  const cb = q.checkpoints.find((c) => c.id === p.bCp)
  if (!ca || !cb || ca.lat === undefined || cb.lat === undefined) return undefined
  const meters = haversineMeters(ca.lat ?? 0, ca.lon ?? 0, cb.lat ?? 0, cb.lon ?? 0)
  const allowed = (q.maxSpeedKmh / 3.6) * (p.dt / 1000) + q.travelSlackMeters
  if (meters <= allowed) return undefined
  const kmh = p.dt > 0 ? Math.round((meters / (p.dt / 1000)) * 3.6 * 10) / 10 : -1
  return { kind: 'impossible_travel', ...base, checkpointIds: [p.aCp, p.bCp], detail: { meters: Math.round(meters), seconds: Math.round(p.dt / 1000), kmh } }
}

/** A per-device signal from its GROUPS_SQL row (both stage A paths); q: its grid-day's query (outside_geofence's nearest checkpoint). */
export function groupSignal(q: CoverageQuery, g: GroupRow): FraudSignal {
  return { kind: g.kind, deviceId: g.deviceId, badge: g.badge, checkpointIds: [...(g.cps ?? [])].sort(cmp), checkinIds: g.ids, at: g.at, detail: groupDetail(q, g) }
}

function groupDetail(q: CoverageQuery, g: GroupRow): FraudSignal['detail'] {
  switch (g.kind) {
    case 'foreign_device':
      return { assignedGrid: String(g.detail) }
    case 'clock_implausible':
      return { worstSkewSeconds: Math.round(Number(g.detail) / 1000) }
    case 'outside_geofence':
      return outsideGeofenceDetail(q, parseFix(g.detail))
    case 'unplanned_checkpoint':
      return g.grid === undefined || g.grid === null ? { checkpointId: String(g.detail) } : { checkpointId: String(g.detail), gridId: g.grid }
    case 'unknown_tag':
      return { tagId: String(g.detail) }
  }
}

/** 'lat lon' as SQL writes a float8 pair (shortest exact text): the same numbers. */
function parseFix(s: string | number | null): { lat: number; lon: number } | null {
  if (s === null || s === '') return null
  const [lat, lon] = String(s).split(' ').map(Number)
  return lat === undefined || lon === undefined ? null : { lat, lon }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

const REPORT_HEAD = `grid_id AS "gridId", to_char(local_date, 'YYYY-MM-DD') AS "localDate", revision, plan_version AS "planVersion",
  (extract(epoch FROM watermark) * 1000)::int8 AS "watermarkMs", (extract(epoch FROM evaluated_at) * 1000)::int8 AS "evaluatedAtMs",
  coverage_pct AS "coveragePct", met, missed, pending, changes, digest`

export function reportQueries(db: Queryable): RulesRepositories['reports'] {
  const reports: RulesRepositories['reports'] = {
    async latest(gridId, date) {
      return unpackRows(
        await db.query<CoverageReportRow>(
          `SELECT ${REPORT_HEAD}, result FROM coverage_reports WHERE grid_id = $1 AND local_date = $2::date ORDER BY revision DESC LIMIT 1`,
          [gridId, date],
        )
      )[0]
    },
    async get(gridId, date, revision) {
      return unpackRows(
        await db.query<CoverageReportRow>(
          `SELECT ${REPORT_HEAD}, result FROM coverage_reports WHERE grid_id = $1 AND local_date = $2::date AND revision = $3`,
          [gridId, date, revision],
        )
      )[0]
    },
    async revisions(gridId, date) {
      return db.query(`SELECT ${REPORT_HEAD} FROM coverage_reports WHERE grid_id = $1 AND local_date = $2::date ORDER BY revision`, [gridId, date])
    },
    async ofDate(date) {
      return db.query(
        `SELECT DISTINCT ON (grid_id) ${REPORT_HEAD} FROM coverage_reports WHERE local_date = $1::date ORDER BY grid_id, revision DESC`,
        [date],
      )
    },
    async latestDigests(keys) {
      if (keys.length === 0) return []
      return db.query(
        `SELECT DISTINCT ON (grid_id, local_date) grid_id AS "gridId", to_char(local_date, 'YYYY-MM-DD') AS "localDate", revision, digest,
                plan_version AS "planVersion", (extract(epoch FROM watermark) * 1000)::int8 AS "watermarkMs",
                (extract(epoch FROM evaluated_at) * 1000)::int8 AS "evaluatedAtMs", (extract(epoch FROM created_at) * 1000)::int8 AS "createdAtMs"
         FROM coverage_reports WHERE (grid_id, local_date) IN (SELECT * FROM unnest($1::text[], $2::date[]))
         ORDER BY grid_id, local_date, revision DESC`,
        [keys.map((k) => k.gridId), keys.map((k) => k.localDate)],
      )
    },
    async latestMany(keys) {
      if (keys.length === 0) return []
      return unpackRows(await db.query<CoverageReportRow>(
        `SELECT DISTINCT ON (grid_id, local_date) ${REPORT_HEAD}, result FROM coverage_reports
         WHERE (grid_id, local_date) IN (SELECT * FROM unnest($1::text[], $2::date[]))
         ORDER BY grid_id, local_date, revision DESC`,
        [keys.map((k) => k.gridId), keys.map((k) => k.localDate)],
      ))
    },
    async saveMany(rs, opts = {}) {
      if (rs.length === 0) return []
      // Two JSON documents per statement (native JSON.stringify; no per-element array quoting
      // of ≈ 6 KB results in the client and unquoting in the server): the small columns, read
      // with json_to_recordset, and the results, an array read with json_array_elements (what a
      // json value of json_to_recordset costs ≈ twice: BENCHMARKS.md, Rules, session 5). Either
      // keeps a json value's text as written: the same text as before. Joined by position.
      // 250 reports (≈ 1.5 MB) per statement, in one transaction: a statement's cost per row
      // grows with its input (2,500 reports in one: ≈ 160 µs of server CPU each; by 250: ≈ 100).
      const CHUNK = 250
      // In key order: two runners storing overlapping grid-days take the unique keys' locks in the
      // same order (no deadlock), whatever order their callers gave. Results are matched by key.
      const ordered = [...rs].sort((a, b) => (a.gridId < b.gridId ? -1 : a.gridId > b.gridId ? 1 : a.localDate < b.localDate ? -1 : a.localDate > b.localDate ? 1 : a.revision - b.revision))
      const store = async (q: Queryable) => {
        const out: Array<{ g: string; d: string; v: number }> = []
        for (let i = 0; i < ordered.length; i += CHUNK) {
          const part = ordered.slice(i, i + CHUNK)
          const head = part.map((r) => ({
            g: r.gridId, d: r.localDate, v: r.revision, pv: r.planVersion, wm: r.watermarkMs, ev: r.evaluatedAtMs, pct: r.coveragePct,
            met: r.met, mis: r.missed, pen: r.pending, chg: r.changes, dg: r.digest,
          }))
          out.push(...(await q.query<{ g: string; d: string; v: number }>(
            `INSERT INTO coverage_reports (grid_id, local_date, revision, plan_version, watermark, evaluated_at, coverage_pct, met, missed, pending, result, changes, digest)
             SELECT g, d, v, pv, to_timestamp(wm / 1000), to_timestamp(ev / 1000), pct, met, mis, pen, res, chg, dg
             FROM ROWS FROM (json_to_recordset($1::json)
                 AS (g text, d date, v int, pv int, wm float8, ev float8, pct float8, met int, mis int, pen int, chg json, dg text))
                 WITH ORDINALITY AS u(g, d, v, pv, wm, ev, pct, met, mis, pen, chg, dg, o)
               JOIN json_array_elements($2::json) WITH ORDINALITY AS x(res, o) USING (o)
             ON CONFLICT (grid_id, local_date, revision) DO NOTHING
             RETURNING grid_id AS g, to_char(local_date, 'YYYY-MM-DD') AS d, revision AS v`,
            [JSON.stringify(head), JSON.stringify(part.map((r) => packResult(r.result)))],
          )))
        }
        // Provisional revisions (pending cells) superseded by a revision just stored: drafts of a day
        // still open, ≈ one per window end. Pending cells only ever become met or missed, so they all
        // precede the day's complete revisions; the one kept is the latest (the new one, or the
        // draft before a revision a concurrent runner stored first, which deletes it).
        if (opts.replaceProvisional && out.length > 0) {
          await q.query(
            `DELETE FROM coverage_reports r USING json_to_recordset($1::json) AS k(g text, d date, v int)
             WHERE r.grid_id = k.g AND r.local_date = k.d AND r.revision < k.v AND r.pending > 0`,
            [JSON.stringify(out)],
          )
        }
        return out
      }
      const saved = (rs.length > CHUNK || opts.replaceProvisional) && 'transaction' in db ? await (db as Db).transaction(store) : await store(db)
      const ok = new Set(saved.map((x) => `${x.g}\u0000${x.d}\u0000${x.v}`))
      return rs.map((r) => ok.has(`${r.gridId}\u0000${r.localDate}\u0000${r.revision}`))
    },
    async save(r) {
      return (await reports.saveMany([r]))[0] === true
    },
  }
  return reports
}

/*
 * Stored result, compact form. A CoverageResult lists every (window, checkpoint)
 * cell as an object (≈ 110 bytes each, ≈ 26 KB per grid-day); stored, the cells
 * are columns over the window × checkpoint grid (`cellsPacked`), ≈ 5× smaller to
 * serialise, write and read. Readers get the CoverageResult back unchanged (same
 * keys in the same order); rows stored before (with `cells`) are read as they are.
 */
interface PackedCells {
  readonly windows: string[]
  readonly checkpoints: string[]
  /** One character per cell, window-major: m = met, x = missed, p = pending. */
  readonly status: string
  readonly visits: number[]
  readonly required: number[]
  readonly evidence: string[][]
}
interface CellJson {
  checkpointId: string
  windowKey: string
  status: 'met' | 'missed' | 'pending'
  visits: number
  required: number
  evidence: string[]
}
const STATUS_CHAR = { met: 'm', missed: 'x', pending: 'p' } as const
const CHAR_STATUS = { m: 'met', x: 'missed', p: 'pending' } as const

export function packResult(result: unknown): unknown {
  const r = result as { cells?: CellJson[] }
  const cells = r?.cells
  if (!Array.isArray(cells) || cells.length === 0) return result
  const windows: string[] = []
  const checkpoints: string[] = []
  for (const c of cells) {
    if (windows.at(-1) !== c.windowKey) windows.push(c.windowKey)
    if (windows.length === 1) checkpoints.push(c.checkpointId)
  }
  // Only the full window × checkpoint grid in order packs; anything else is stored as it is.
  if (windows.length * checkpoints.length !== cells.length) return result
  let status = ''
  for (const [i, c] of cells.entries()) {
    if (c.windowKey !== windows[Math.floor(i / checkpoints.length)] || c.checkpointId !== checkpoints[i % checkpoints.length]) return result
    const ch = STATUS_CHAR[c.status]
    if (ch === undefined) return result
    status += ch
  }
  const packed: PackedCells = {
    windows,
    checkpoints,
    status,
    visits: cells.map((c) => c.visits),
    required: cells.map((c) => c.required),
    evidence: cells.map((c) => c.evidence),
  }
  return Object.fromEntries(Object.entries(r).map(([k, v]) => (k === 'cells' ? ['cellsPacked', packed] : [k, v])))
}

export function unpackResult(stored: unknown): unknown {
  const r = stored as { cellsPacked?: PackedCells }
  const p = r?.cellsPacked
  if (p === undefined) return stored
  const n = p.checkpoints.length
  const cells: CellJson[] = [...p.status].map((ch, i) => ({
    checkpointId: p.checkpoints[i % n] as string,
    windowKey: p.windows[Math.floor(i / n)] as string,
    status: CHAR_STATUS[ch as keyof typeof CHAR_STATUS],
    visits: p.visits[i] as number,
    required: p.required[i] as number,
    evidence: p.evidence[i] as string[],
  }))
  return Object.fromEntries(Object.entries(r).map(([k, v]) => (k === 'cellsPacked' ? ['cells', cells] : [k, v])))
}

function unpackRows<R extends { result: unknown }>(rows: R[]): R[] {
  for (const row of rows) row.result = unpackResult(typeof row.result === 'string' ? JSON.parse(row.result) : row.result)
  return rows
}

export function watermarkQueries(db: Queryable): RulesRepositories['watermark'] {
  return {
    async current() {
      // device_state.last_seen_at is the latest received_at of a device's claimed uplinks,
      // upserted (GREATEST) by the same statement that claims them in uplink_seen
      // (queries/uplinks.ts): its max is max(uplink_seen.received_at), visible with the
      // same rows, read from one row per device instead of an index on every uplink
      // (migration 041). Never decreases (pruning uplink_seen does not touch it).
      const [row] = await db.query<{ m: number | null }>('SELECT (extract(epoch FROM max(last_seen_at)) * 1000)::int8 AS m FROM device_state')
      return row?.m ?? null
    },
  }
}
