// npm run bench:rules:setbased [-- --grids 1000,10000 --connections 1,2 --cells misses|all|fused --explain r_exc]
// npm run bench:rules:setbased -- --phase compact [--grids 1000,10000 --driver server,embedded --runs 2 --days 1 --floor]
//   times the PRODUCT stage A in its compact form, store.coverage.compactMany, on
//   the same data (bench/rules.ts's generator) in the product schema: server on a
//   throwaway database made on the DATABASE_URL server (rows COPYed into the
//   migrated check_ins), embedded PGlite + TimescaleDB in a temp dir (rows through
//   store.uplinks.write); wall and CPU (Node — with PGlite when embedded — plus the
//   database's backends) and the load average per run. --days N: N days stored (the
//   same generator on each of the N-1 days before), the last one evaluated. See compactPhase below.
//   --floor (server): after the runs, the least any row-by-row evaluation of the day costs in
//   PostgreSQL: the bare visit-count + longest-gap query, and the two orders stage A needs
//   (each checkpoint's scans by time: visits, gaps; each device's scans by time: rescans, travel),
//   each a bare sort + lag, nothing else. See floorQueries below.
// Feasibility prototype for issue 6 (NOT product code): the coverage verdicts of
// one local day computed with a few set-based SQL statements, nothing per cell
// shipped to Node. Same data as bench/rules.ts (same prng and seed: N grids × 20
// checkpoints × 12 two-hour windows, 3 % of cells missed), COPYed into a
// scratch schema `sb_setbased` of the DATABASE_URL database (use a scratch
// database: the schema is dropped and recreated). Steps timed per run:
//   1 windows (from coverageQuery, in Node) + checkpoints as unnest parameter sets
//   2 per-(grid, checkpoint, window) visits, first evidence, miss flag (INSERT … SELECT)
//   3 over-long gaps per checkpoint (lag() over device_time, day bounds as sentinels)
//   4 per-grid-day figures + digest; report upsert (revision bumps only on a new digest);
//     exceptions (misses + gaps with evidence) rewritten for changed grid-days only
//   5 cases upsert from the exceptions (ON CONFLICT … WHERE changed) + clear the rest
//   6 steps 1–5 again: nothing may change
// Left out (see BENCHMARKS.md "Set-based prototype"): rescan / travel / fraud
// signals, clock offsets and plausibility, unresolved tags, foreign devices,
// per-device and per-patroller figures, case_events and workflow deadlines.
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { coverageQuery } from '../src/rules/coverage/query.ts'
import { parsePlan } from '../src/rules/plans/schema.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { openStore } from '../src/store/index.ts'
import type { Store } from '../src/store/types.ts'
import { cpuSince, cpuSnapshot } from './proc-cpu.ts'
import { CPS, DATE, dayCheckins, dayStart, writeDayCheckins } from './rules-data.ts'
import { makeTestDatabase } from '../test/helpers/db.ts'

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? (process.argv[i + 1] ?? def) : def
}
const url = process.env['DATABASE_URL']
const gridCounts = arg('grids', '1000').split(',').map(Number)
if (!url && arg('phase', 'prototype') !== 'compact') {
  console.error('bench:rules:setbased needs DATABASE_URL (a scratch database: schema sb_setbased is dropped and recreated)')
  process.exit(2)
}
const connCounts = arg('connections', '1,2').split(',').map(Number)
/** --explain r_exc: print EXPLAIN ANALYZE of the step creating that table (once more, before it is timed). */
const explain = arg('explain', '')
const variant = arg('cells', 'misses')
if (variant !== 'all' && variant !== 'misses' && variant !== 'fused') throw new Error(`--cells: expected 'all', 'misses' or 'fused', got '${variant}'`)
for (const n of [...gridCounts, ...connCounts]) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--grids / --connections: expected positive integers, got ${n}`)
}
const dayEnd = dayStart + 86_400_000
const watermark = new Date(dayEnd + 3_600_000)
const secs = (ms: number) => (ms / 1000).toFixed(2)

// (after the constants the phase uses)
if (arg('phase', 'prototype') === 'compact') {
  const days = Number(arg('days', '1'))
  if (!Number.isInteger(days) || days < 1) throw new Error(`--days: expected a positive integer, got '${arg('days', '1')}'`)
  await compactPhase(gridCounts, arg('driver', url ? 'server,embedded' : 'embedded').split(','), Number(arg('runs', '2')), days, process.argv.includes('--floor'))
  process.exit(0)
}

const SCHEMA = `
DROP SCHEMA IF EXISTS sb_setbased CASCADE;
CREATE SCHEMA sb_setbased;
SET search_path = sb_setbased;
-- the product's check_ins columns and plain-table indexes (001-core, 005)
CREATE TABLE check_ins (
  device_id text NOT NULL, seq bigint NOT NULL, device_time timestamptz NOT NULL, received_at timestamptz NOT NULL,
  grid_id text, checkpoint_id text, tag_id text NOT NULL, method text NOT NULL, badge_id text,
  UNIQUE (device_id, seq, device_time));
CREATE TABLE reports (grid_id text NOT NULL, report_date date NOT NULL, revision int NOT NULL, digest text NOT NULL,
  watermark timestamptz NOT NULL, cells int NOT NULL, met int NOT NULL, missed int NOT NULL, gaps int NOT NULL,
  coverage_pct numeric NOT NULL, PRIMARY KEY (grid_id, report_date));
CREATE TABLE exceptions (grid_id text NOT NULL, report_date date NOT NULL, kind text NOT NULL, checkpoint_id text NOT NULL,
  window_key text NOT NULL, gap_from timestamptz, gap_to timestamptz, visits int, evidence text);
CREATE INDEX exceptions_grid_idx ON exceptions (grid_id, report_date);
-- the product's cases columns that a raise touches (011-cases)
CREATE TABLE cases (id bigserial PRIMARY KEY, dedup_key text NOT NULL UNIQUE, rule text NOT NULL, grid_id text NOT NULL,
  subject text, window_key text, report_date date, category text NOT NULL, priority text NOT NULL, state text NOT NULL,
  title text NOT NULL, detected_at timestamptz NOT NULL, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  closure_due_at timestamptz NOT NULL, cleared_at timestamptz, evidence jsonb NOT NULL DEFAULT '[]', detail jsonb NOT NULL DEFAULT '{}');
CREATE INDEX cases_report_idx ON cases (grid_id, report_date) WHERE report_date IS NOT NULL;
`

/** bench/rules.ts's generator, verbatim (same seed, same draws), as COPY text lines. */
function* checkinLines(grids: number, daysBefore = 0): Generator<string> {
  for (const c of dayCheckins(grids, daysBefore)) {
    yield `${c.deviceId}\t${c.seq}\t${new Date(c.deviceTimeMs).toISOString()}\t${new Date(c.receivedAtMs).toISOString()}\t${c.gridId}\t${c.checkpointId}\t${c.tagId}\t${c.method}\t${c.badgeId}\n`
  }
}

function plansFor(grids: number) {
  return Array.from({ length: grids }, (_, g) => {
    const gridId = `g${g}`
    const checkpoints = Array.from({ length: CPS }, (_, j) => ({ id: `${gridId}-c${j}`, tagIds: [`${gridId}-t${j}`], lat: 31 + g * 0.001, lon: 121 + j * 0.0005 }))
    return parsePlan({ gridId, checkpoints, windows: { kind: 'every', every: '2h' }, maxGapMinutes: 240 })
  })
}

type Params = { g: string[]; wk: string[]; ws: Date[]; we: Date[]; wv: number[]; cg: string[]; cc: string[]; gap: number[] }
function params(plans: ReturnType<typeof plansFor>): Params {
  const p: Params = { g: [], wk: [], ws: [], we: [], wv: [], cg: [], cc: [], gap: [] }
  for (const plan of plans) {
    const { query } = coverageQuery(plan, DATE)
    for (const w of query.windows) {
      p.g.push(plan.gridId)
      p.wk.push(w.key)
      p.ws.push(new Date(w.start))
      p.we.push(new Date(w.end))
      p.wv.push(w.evidenceLimit)
    }
    for (const c of query.checkpoints) {
      p.cg.push(plan.gridId)
      p.cc.push(c.id)
      p.gap.push(query.maxGapMs)
    }
  }
  return p
}

const CELLS_ALL = `CREATE TEMP TABLE r_cells AS
     WITH v AS (
       SELECT c.checkpoint_id, (width_bucket(c.device_time, g.bounds) + 1) / 2 AS wi, count(*)::int AS n,
              min(c.device_time) AS first_at,
              (array_agg(c.device_id || ':' || c.seq ORDER BY c.device_time, c.device_id, c.seq))[1] AS first_id
       FROM check_ins c JOIN p_cp p USING (checkpoint_id) JOIN p_grid g ON g.grid_id = p.grid_id
       WHERE c.device_time >= $1 AND c.device_time < $2 AND c.received_at <= $3 AND width_bucket(c.device_time, g.bounds) % 2 = 1
       GROUP BY 1, 2)
     SELECT p.grid_id, p.checkpoint_id, w.wi, g.wkeys[w.wi] AS wkey, coalesce(v.n, 0) AS visits, v.first_id,
            coalesce(v.n, 0) < g.needs[w.wi] AS missed
     FROM p_cp p JOIN p_grid g USING (grid_id) CROSS JOIN LATERAL generate_series(1, cardinality(g.wkeys)) w(wi)
     LEFT JOIN v ON v.checkpoint_id = p.checkpoint_id AND v.wi = w.wi`

const CELLS_MISSES = `CREATE TEMP TABLE r_cells AS
     WITH v AS (
       SELECT c.checkpoint_id, (width_bucket(c.device_time, g.bounds) + 1) / 2 AS wi, count(*)::int AS n
       FROM check_ins c JOIN p_cp p USING (checkpoint_id) JOIN p_grid g ON g.grid_id = p.grid_id
       WHERE c.device_time >= $1 AND c.device_time < $2 AND c.received_at <= $3 AND width_bucket(c.device_time, g.bounds) % 2 = 1
       GROUP BY 1, 2)
     SELECT p.grid_id, p.checkpoint_id, w.wi, g.wkeys[w.wi] AS wkey, coalesce(v.n, 0) AS visits, NULL::text AS first_id, true AS missed,
            g.bounds[2 * w.wi - 1] AS ws, g.bounds[2 * w.wi] AS we
     FROM p_cp p JOIN p_grid g USING (grid_id) CROSS JOIN LATERAL generate_series(1, cardinality(g.wkeys)) w(wi)
     LEFT JOIN v ON v.checkpoint_id = p.checkpoint_id AND v.wi = w.wi
     WHERE coalesce(v.n, 0) < g.needs[w.wi];
     -- evidence of a miss with some (too few) visits: its rows, through check_ins_checkpoint_idx
     UPDATE r_cells r SET first_id = (
       SELECT string_agg(c.device_id || ':' || c.seq, ',' ORDER BY c.device_time, c.device_id, c.seq) FROM check_ins c
       WHERE c.checkpoint_id = r.checkpoint_id AND c.device_time >= greatest(r.ws, $1) AND c.device_time < least(r.we, $2) AND c.received_at <= $3)
     WHERE r.visits > 0`

/** Steps 2 + 3 in one scan and one sort of the day's rows (--cells fused). */
const FUSED = `CREATE TEMP TABLE r_exc AS
     WITH s AS (
       SELECT x.checkpoint_id, p.grid_id, x.at, x.id, p.max_gap_ms, lag(x.at) OVER w AS prev_at, lag(x.id) OVER w AS prev_id
       FROM (SELECT checkpoint_id, device_time AS at, device_id || ':' || seq AS id FROM check_ins
             WHERE device_time >= $1 AND device_time < $2 AND received_at <= $3 AND checkpoint_id IN (SELECT checkpoint_id FROM p_cp)
             UNION ALL SELECT checkpoint_id, $1, NULL FROM p_cp
             UNION ALL SELECT checkpoint_id, $2, NULL FROM p_cp) x
       JOIN p_cp p USING (checkpoint_id)
       WINDOW w AS (PARTITION BY x.checkpoint_id COLLATE "C" ORDER BY x.at)),
     -- the grid's window bounds joined after the sort (a wide array per row made the sort spill)
     a AS (
       SELECT s.checkpoint_id COLLATE "C" AS checkpoint_id, least(greatest((width_bucket(s.at, g.bounds) + 1) / 2, 1), cardinality(g.wkeys)) AS wi,
              count(*) FILTER (WHERE s.id IS NOT NULL AND width_bucket(s.at, g.bounds) % 2 = 1)::int AS n,
              array_agg(ARRAY[s.prev_at::text, s.at::text, s.prev_id, s.id]) FILTER (WHERE s.at - s.prev_at > make_interval(secs => s.max_gap_ms / 1000.0)) AS gaps
       FROM s JOIN p_grid g ON g.grid_id = s.grid_id GROUP BY 1, 2)
     SELECT p.grid_id, p.checkpoint_id, w.wi, g.wkeys[w.wi] AS wkey, coalesce(a.n, 0) AS visits, coalesce(a.n, 0) < g.needs[w.wi] AS missed,
            a.gaps, g.bounds[2 * w.wi - 1] AS ws, g.bounds[2 * w.wi] AS we
     FROM p_cp p JOIN p_grid g USING (grid_id) CROSS JOIN LATERAL generate_series(1, cardinality(g.wkeys)) w(wi)
     LEFT JOIN a ON a.checkpoint_id = p.checkpoint_id AND a.wi = w.wi
     WHERE coalesce(a.n, 0) < g.needs[w.wi] OR a.gaps IS NOT NULL;
     CREATE TEMP TABLE r_cells AS SELECT grid_id, checkpoint_id, wi, wkey, visits, NULL::text AS first_id, missed, ws, we FROM r_exc WHERE missed;
     -- evidence of a miss with some (too few) visits: its rows, through check_ins_checkpoint_idx
     UPDATE r_cells r SET first_id = (
       SELECT string_agg(c.device_id || ':' || c.seq, ',' ORDER BY c.device_time, c.device_id, c.seq) FROM check_ins c
       WHERE c.checkpoint_id = r.checkpoint_id AND c.device_time >= greatest(r.ws, $1) AND c.device_time < least(r.we, $2) AND c.received_at <= $3)
     WHERE r.visits > 0`

const FUSED_GAPS = `CREATE TEMP TABLE r_gaps AS
     SELECT e.grid_id, e.checkpoint_id, e.gaps[i][1]::timestamptz AS gap_from, e.gaps[i][2]::timestamptz AS gap_to, e.gaps[i][3] AS prev_id, e.gaps[i][4] AS id
     FROM r_exc e CROSS JOIN LATERAL generate_subscripts(e.gaps, 1) i
     WHERE e.gaps IS NOT NULL`

const STEPS: Array<[string, string]> = [
  [
    '1 parameters (unnest temp tables)',
    `DROP TABLE IF EXISTS p_win, p_cp, p_grid, r_cells, r_gaps, r_fig, r_ex, r_exc;
     CREATE TEMP TABLE p_win AS SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[]) AS t(grid_id, wkey, ws, we, need);
     CREATE TEMP TABLE p_cp AS SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(grid_id, checkpoint_id, max_gap_ms);
     -- non-overlapping windows → one sorted bounds array per grid for width_bucket()
     CREATE TEMP TABLE p_grid AS SELECT w.*, n.ncp * cardinality(w.wkeys) AS ncells FROM (
       SELECT grid_id, array_agg(wkey ORDER BY ws) AS wkeys, array_agg(need ORDER BY ws) AS needs,
       (SELECT array_agg(b ORDER BY i) FROM unnest(array_agg(ws ORDER BY ws), array_agg(we ORDER BY ws)) WITH ORDINALITY u(s, e, i), LATERAL (VALUES (s, 2 * i), (e, 2 * i + 1)) v(b, o)) AS bounds
       FROM p_win GROUP BY grid_id) w JOIN (SELECT grid_id, count(*)::int AS ncp FROM p_cp GROUP BY 1) n USING (grid_id);
     CREATE UNIQUE INDEX ON p_cp (checkpoint_id);
     ANALYZE p_win; ANALYZE p_cp; ANALYZE p_grid`,
  ],
  [
    { all: '2 cells: visits, first evidence, miss (all cells)', misses: '2 cells: visits, misses only + their evidence', fused: '2 cells + gaps: one scan, one sort (fused)' }[variant],
    { all: CELLS_ALL, misses: CELLS_MISSES, fused: FUSED }[variant],
  ],
  [
    variant === 'fused' ? '3 gaps (unnested from step 2)' : '3 over-long gaps (lag over checkpoint, device_time)',
    variant === 'fused' ? FUSED_GAPS : `CREATE TEMP TABLE r_gaps AS
     SELECT grid_id, checkpoint_id, prev_at AS gap_from, at AS gap_to, prev_id, id FROM (
       SELECT p.grid_id, x.checkpoint_id, x.at, x.id, p.max_gap_ms,
              lag(x.at) OVER w AS prev_at, lag(x.id) OVER w AS prev_id
       FROM (SELECT checkpoint_id, device_time AS at, device_id || ':' || seq AS id FROM check_ins
             WHERE device_time >= $1 AND device_time < $2 AND received_at <= $3 AND checkpoint_id IN (SELECT checkpoint_id FROM p_cp)
             UNION ALL SELECT checkpoint_id, $1, NULL FROM p_cp
             UNION ALL SELECT checkpoint_id, $2, NULL FROM p_cp) x
       JOIN p_cp p USING (checkpoint_id)
       WINDOW w AS (PARTITION BY x.checkpoint_id COLLATE "C" ORDER BY x.at)) s
     WHERE at - prev_at > make_interval(secs => max_gap_ms / 1000.0)`,
  ],
  [
    '4 figures + digest, report upsert, exceptions',
    `CREATE TEMP TABLE r_fig AS
     SELECT f.grid_id, f.cells, f.met, f.missed, coalesce(gp.n, 0) AS gaps,
            round(100.0 * f.met / nullif(f.cells, 0), 2) AS coverage_pct,
            md5(coalesce(f.d, '') || '|' || coalesce(gp.d, '')) AS digest
     FROM (SELECT g.grid_id, g.ncells AS cells, g.ncells - coalesce(m.missed, 0) AS met, coalesce(m.missed, 0) AS missed, m.d
           FROM p_grid g LEFT JOIN (
             SELECT grid_id, count(*)::int AS missed, string_agg(checkpoint_id || '@' || wkey || '=' || visits, ',' ORDER BY checkpoint_id, wi) AS d
             FROM r_cells WHERE missed GROUP BY grid_id) m USING (grid_id)) f
     LEFT JOIN (SELECT grid_id, count(*)::int AS n, string_agg(checkpoint_id || '@' || gap_from || '-' || gap_to, ',' ORDER BY checkpoint_id, gap_from) AS d
                FROM r_gaps GROUP BY grid_id) gp USING (grid_id);
     WITH up AS (
       INSERT INTO reports AS r (grid_id, report_date, revision, digest, watermark, cells, met, missed, gaps, coverage_pct)
       SELECT grid_id, $1::date, 1, digest, $2, cells, met, missed, gaps, coverage_pct FROM r_fig
       ON CONFLICT (grid_id, report_date) DO UPDATE SET revision = r.revision + 1, digest = excluded.digest, watermark = excluded.watermark,
         cells = excluded.cells, met = excluded.met, missed = excluded.missed, gaps = excluded.gaps, coverage_pct = excluded.coverage_pct
       WHERE r.digest <> excluded.digest
       RETURNING grid_id),
     del AS (DELETE FROM exceptions e USING up WHERE e.grid_id = up.grid_id AND e.report_date = $1::date)
     INSERT INTO exceptions (grid_id, report_date, kind, checkpoint_id, window_key, gap_from, gap_to, visits, evidence)
     SELECT c.grid_id, $1::date, 'miss', c.checkpoint_id, c.wkey, NULL, NULL, c.visits, c.first_id FROM r_cells c JOIN up USING (grid_id) WHERE c.missed
     UNION ALL
     SELECT g.grid_id, $1::date, 'gap', g.checkpoint_id, to_char(g.gap_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), g.gap_from, g.gap_to, NULL,
            concat_ws(',', g.prev_id, g.id)
     FROM r_gaps g JOIN up USING (grid_id)`,
  ],
  [
    '5 cases upsert + clear',
    `CREATE TEMP TABLE r_ex AS
       SELECT e.*, 'coverage.' || kind || ':' || grid_id || ':' || checkpoint_id || ':' || window_key AS dedup_key
       FROM exceptions e JOIN p_grid USING (grid_id) WHERE e.report_date = $1::date;
     CREATE UNIQUE INDEX ON r_ex (dedup_key);
     ANALYZE r_ex;
     INSERT INTO cases AS k (dedup_key, rule, grid_id, subject, window_key, report_date, category, priority, state, title,
                               detected_at, opened_at, updated_at, closure_due_at, evidence, detail)
       SELECT dedup_key, 'coverage.' || kind, grid_id, checkpoint_id, window_key, $1::date, 'patrol', 'normal', 'reported',
              CASE kind WHEN 'miss' THEN 'Checkpoint ' || checkpoint_id || ' not visited in ' || window_key
                        ELSE 'Checkpoint ' || checkpoint_id || ' unvisited ' || gap_from || ' – ' || gap_to END,
              $2, $2, $2, $2::timestamptz + interval '3 days',
              CASE WHEN evidence IS NULL THEN '[]'::jsonb ELSE to_jsonb(string_to_array(evidence, ',')) END,
              jsonb_build_object('visits', visits, 'from', gap_from, 'to', gap_to)
       FROM r_ex
       ON CONFLICT (dedup_key) DO UPDATE SET evidence = excluded.evidence, detail = excluded.detail, updated_at = excluded.updated_at, cleared_at = NULL
       WHERE k.evidence IS DISTINCT FROM excluded.evidence OR k.detail IS DISTINCT FROM excluded.detail OR k.cleared_at IS NOT NULL;
     UPDATE cases k SET cleared_at = $2, updated_at = $2
     FROM p_grid g WHERE k.grid_id = g.grid_id AND k.report_date = $1::date AND k.cleared_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM r_ex WHERE r_ex.dedup_key = k.dedup_key)`,
  ],
]

async function runSteps(c: pg.Client, p: Params): Promise<{ ms: number[]; changed: number[] }> {
  const ms: number[] = []
  const changed: number[] = []
  const day = new Date(dayStart)
  const end = new Date(dayEnd)
  const argsFor = [
    [p.g, p.wk, p.ws, p.we, p.wv],
    [day, end, watermark],
    [day, end, watermark],
    [DATE, watermark],
    [DATE, watermark],
  ]
  for (const [i, [, sql]] of STEPS.entries()) {
    const t = performance.now()
    // multi-statement steps: the first statement takes the parameters, the rest none
    const parts = sql.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)
    let n = 0
    for (const [k, part] of parts.entries()) {
      const used = Math.max(0, ...[...part.matchAll(/\$(\d)/g)].map((m) => Number(m[1])))
      const args = part.includes('p_cp AS SELECT') ? [p.cg, p.cc, p.gap] : argsFor[i]
      if (explain && part.startsWith(`CREATE TEMP TABLE ${explain} `)) {
        const plan = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF) ${part}`, used ? args?.slice(0, used) : undefined)
        console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
        await c.query(`DROP TABLE ${explain}`)
      }
      const res = await c.query(part, used ? args?.slice(0, used) : undefined)
      if (k === parts.length - 1 || /^(INSERT|UPDATE|WITH|CREATE TEMP TABLE r_(cells|gaps))/.test(part)) n += res.rowCount ?? 0
    }
    ms.push(performance.now() - t)
    changed.push(n)
  }
  return { ms, changed }
}

async function counts(c: pg.Client) {
  const { rows } = await c.query<{ r: string; rev: string; e: string; k: string; cl: string }>(
    `SELECT (SELECT count(*) FROM reports) r, (SELECT coalesce(sum(revision), 0) FROM reports) rev, (SELECT count(*) FROM exceptions) e,
            (SELECT count(*) FROM cases) k, (SELECT count(*) FROM cases WHERE cleared_at IS NOT NULL) cl`,
  )
  return rows[0]!
}

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  await c.query(`SET search_path = sb_setbased, public; SET work_mem = '64MB'`)
  return c
}

for (const grids of gridCounts) {
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(SCHEMA)
  const l0 = performance.now()
  const copy = admin.query(copyFrom('COPY sb_setbased.check_ins (device_id, seq, device_time, received_at, grid_id, checkpoint_id, tag_id, method, badge_id) FROM STDIN'))
  await pipeline(Readable.from(checkinLines(grids)), copy)
  await admin.query(`SET search_path = sb_setbased;
    CREATE INDEX check_ins_checkpoint_idx ON check_ins (checkpoint_id, device_time);
    CREATE INDEX check_ins_grid_idx ON check_ins (grid_id, device_time);
    CREATE INDEX check_ins_time_idx ON check_ins (device_time)`)
  await admin.query('VACUUM ANALYZE sb_setbased.check_ins')
  const { rows } = await admin.query<{ n: string }>('SELECT count(*) n FROM sb_setbased.check_ins')
  const checkins = Number(rows[0]!.n)
  const loadMs = performance.now() - l0
  const plans = plansFor(grids)
  console.log(`grids ${grids}  check-ins ${checkins}  (generate + COPY + indexes ${secs(loadMs)} s)`)

  for (const conns of connCounts) {
    await admin.query('TRUNCATE sb_setbased.reports, sb_setbased.exceptions, sb_setbased.cases')
    const clients = await Promise.all(Array.from({ length: conns }, connect))
    // grids split into contiguous halves (a real runner would split by grid id hash or range)
    const parts = clients.map((_, k) => plans.slice(Math.floor((k * grids) / conns), Math.floor(((k + 1) * grids) / conns)))
    for (const label of ['first evaluation', 'idempotent re-run']) {
      const load = loadavg()[0] ?? 0
      const t = performance.now()
      const p0 = performance.now()
      const ps = parts.map(params)
      const paramMs = performance.now() - p0
      const res = await Promise.all(clients.map((c, k) => runSteps(c, ps[k]!)))
      const total = performance.now() - t
      const c = await counts(admin)
      console.log(`  ${conns} conn  ${label.padEnd(18)} total ${secs(total)} s  (windows in Node ${secs(paramMs)} s)  load ${load.toFixed(2)} → ${(loadavg()[0] ?? 0).toFixed(2)}`)
      for (const [i, [name]] of STEPS.entries()) {
        console.log(`    ${name.padEnd(48)} ${res.map((r) => secs(r.ms[i]!)).join(' / ')} s  rows ${res.map((r) => r.changed[i]).join(' / ')}`)
      }
      console.log(`    → reports ${c.r} (revisions ${c.rev}), exceptions ${c.e}, cases ${c.k} (${c.cl} cleared)`)
    }
    for (const cl of clients) await cl.end()
  }
  await admin.query('DROP SCHEMA sb_setbased CASCADE')
  await admin.end()
}

/**
 * --phase compact: store.coverage.compactMany (the product SQL) for all N grid-days
 * in one call, `--runs` times back to back (the first run also warms caches), per
 * driver. Server: check_ins ANALYZEd after the COPY (what autovacuum does soon after);
 * embedded: no statistics, as in production (PGlite runs no autovacuum). `days` > 1: the
 * days before DATE are stored too (oldest first), DATE is evaluated — stage A reads back
 * before the day's start (previous visits), which one stored day does not show.
 */
async function compactPhase(grids: number[], driversWanted: string[], runs: number, days = 1, floor = false): Promise<void> {
  const log = pino({ level: 'silent' })
  for (const driver of driversWanted) {
    for (const n of grids) {
      let store: Store
      let dbUrl: string | undefined
      const cleanup: Array<() => unknown> = []
      if (driver === 'server') {
        const db = await makeTestDatabase('gp_bench_compact')
        if (!db) {
          console.log('server: skipped (DATABASE_URL unset)')
          continue
        }
        dbUrl = db.url
        store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, log)
        cleanup.push(() => store.close(), () => db.drop())
      } else {
        const dir = await mkdtemp(join(tmpdir(), 'gp-bench-compact-'))
        store = await openStore({ dataDir: dir, databaseUrl: undefined }, log)
        cleanup.push(() => store.close(), () => rm(dir, { recursive: true, force: true }))
      }
      await store.migrate()
      const l0 = performance.now()
      let checkins = 0
      let stored = 0
      if (dbUrl) {
        const c = new pg.Client({ connectionString: dbUrl })
        await c.connect()
        for (let back = days - 1; back >= 0; back--) {
          await pipeline(Readable.from(checkinLines(n, back)), c.query(copyFrom('COPY check_ins (device_id, seq, device_time, received_at, grid_id, checkpoint_id, tag_id, method, badge_id) FROM STDIN')))
        }
        await c.query('ANALYZE check_ins')
        stored = Number((await c.query<{ n: string }>('SELECT count(*) n FROM check_ins')).rows[0]?.n)
        checkins = Number((await c.query<{ n: string }>('SELECT count(*) n FROM check_ins WHERE device_time >= $1', [new Date(dayStart)])).rows[0]?.n)
        await c.end()
      } else {
        // bench/rules.ts's generator and batches, through the product write path
        for (let back = days - 1; back >= 0; back--) {
          checkins = await writeDayCheckins(store, n, back)
          stored += checkins
        }
      }
      const queries = plansFor(n).map((plan) => coverageQuery(plan, DATE).query)
      console.log(`compactMany  ${driver.padEnd(8)} grids ${String(n).padStart(6)}  days ${days}  check-ins ${checkins} (stored ${stored})  (load ${secs(performance.now() - l0)} s)`)
      for (let run = 1; run <= runs; run++) {
        const load = loadavg()[0] ?? 0
        const c0 = await cpuSnapshot(dbUrl)
        const t0 = performance.now()
        const res = await store.coverage.compactMany(queries)
        const ms = performance.now() - t0
        const c1 = await cpuSnapshot(dbUrl)
        const short = res.reduce((a, x) => a + x.shortCells.length, 0)
        const met = res.reduce((a, x) => a + x.metCells, 0)
        const periods = res.reduce((a, x) => a + x.periods.length, 0)
        const gaps = res.reduce((a, x) => a + x.periods.reduce((b, p) => b + p.longGaps.length, 0), 0)
        const signals = res.reduce((a, x) => a + x.signals.length, 0)
        console.log(
          `  run ${run}  ${secs(ms)} s  ${Math.round(checkins / (ms / 1000))} check-ins/s  ${cpuSince(c0, c1, dbUrl)}  load ${load.toFixed(2)} → ${(loadavg()[0] ?? 0).toFixed(2)}\n` +
            `         met ${met}  short ${short}  listed periods ${periods} (long gaps ${gaps})  signals ${signals}  devices ${res.reduce((a, x) => a + x.devices.length, 0)}`,
        )
      }
      if (floor && dbUrl) await floorQueries(dbUrl, runs, checkins)
      for (const fn of cleanup) await fn()
    }
  }
}

/**
 * The floor under any evaluation that looks at the day's check-ins in order (what
 * stage A must: rescan chaining and gaps per checkpoint, consecutive scans per
 * device): each query reads the day (+ the max-gap stretch before it, as stage A
 * does) once, sorts it one way and takes lag/lead, returning one row (every
 * lag/lead is used, so the planner cannot drop the window). Same
 * session settings as compactMany (work_mem 256 MB, no JIT), one connection.
 */
async function floorQueries(dbUrl: string, runs: number, checkins: number): Promise<void> {
  const from = new Date(dayStart - 4 * 3_600_000)
  const to = new Date(dayStart + 86_400_000)
  const queries: Array<[string, string]> = [
    ['bare count + longest gap per checkpoint (the issue\'s reference)',
      `SELECT sum(visits), max(longest) FROM (SELECT grid_id, checkpoint_id, count(*) AS visits, max(gap) AS longest FROM (
         SELECT grid_id, checkpoint_id, device_time - lag(device_time) OVER (PARTITION BY grid_id, checkpoint_id ORDER BY device_time) AS gap
         FROM check_ins WHERE device_time >= $1 AND device_time < $2) x GROUP BY grid_id, checkpoint_id) y`],
    ['per checkpoint by time: lag + lead, tie-broken by id',
      `SELECT count(*) FROM (SELECT device_time, lag(device_time) OVER w AS p, lead(device_time) OVER w AS n
         FROM check_ins WHERE device_time >= $1 AND device_time < $2
         WINDOW w AS (PARTITION BY grid_id, checkpoint_id ORDER BY device_time, device_id, seq)) x
       WHERE p IS NULL OR n IS NULL OR n - device_time > interval '4 hours'`],
    ['per device by time: lag of time and checkpoint',
      `SELECT count(*) FROM (SELECT checkpoint_id, device_time, lag(device_time) OVER w AS p, lag(checkpoint_id) OVER w AS pc
         FROM check_ins WHERE device_time >= $1 AND device_time < $2
         WINDOW w AS (PARTITION BY device_id ORDER BY device_time, seq)) x
       WHERE pc = checkpoint_id AND device_time - p < interval '5 minutes'`],
  ]
  const c = new pg.Client({ connectionString: dbUrl })
  await c.connect()
  await c.query("SET work_mem = '256MB'")
  await c.query('SET jit = off')
  for (const [name, sql] of queries) {
    for (let run = 1; run <= runs; run++) {
      const c0 = await cpuSnapshot(dbUrl)
      const t0 = performance.now()
      await c.query(sql, [from, to])
      const ms = performance.now() - t0
      console.log(`  floor: ${name}, run ${run}  ${secs(ms)} s  ${Math.round(checkins / (ms / 1000))} check-ins/s  ${cpuSince(c0, await cpuSnapshot(dbUrl), dbUrl)}`)
    }
  }
  await c.end()
}



