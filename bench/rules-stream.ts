// npm run bench:rules:stream [-- --grids 1000,10000 --db-prefix gp_stream]
//
// Feasibility, not product code: what stage A of a first evaluation costs when the day's
// check-ins are streamed unsorted out of PostgreSQL (COPY, one sequential read, no sort in the
// server) and judged in Node by the pure reference (rules/coverage/aggregate.ts, the oracle of
// the contract tests) grid by grid — against the product's stage A in SQL (compactMany) on the
// same data, in the same run. The issue asks for the evaluation "in SQL where the data is
// ... not by loading every check-in into Node"; this measures what that requirement costs, for
// the planners' decision (BENCHMARKS.md, Rules, session 9). Server only (DATABASE_URL).
import { performance } from 'node:perf_hooks'
import { isDeepStrictEqual } from 'node:util'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import { pino } from 'pino'
import { createRunner } from '../src/rules/runner.ts'
import { coverageQuery } from '../src/rules/coverage/query.ts'
import { aggregateCheckins } from '../src/rules/coverage/aggregate.ts'
import { compactAggregates, type CompactAggregates } from '../src/rules/coverage/compact.ts'
import type { CheckinRow, CoverageQuery } from '../src/rules/coverage/inputs.ts'
import { parsePlan } from '../src/rules/plans/schema.ts'
import { openStore } from '../src/store/index.ts'
import { cpuMs, cpuSince, cpuSnapshot } from './proc-cpu.ts'
import { CPS, DATE, writeDayCheckins } from './rules-data.ts'
import { makeTestDatabase } from '../test/helpers/db.ts'

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt
}
const gridCounts = arg('grids', '1000').split(',').map(Number)
const dbPrefix = arg('db-prefix', 'gp_stream')
const log = pino({ level: 'silent' })
const secs = (ms: number) => (ms / 1000).toFixed(2)

if (!process.env.DATABASE_URL) {
  console.log('rules-stream: DATABASE_URL unset (server only)')
  process.exit(0)
}

for (const grids of gridCounts) {
  const db = await makeTestDatabase(dbPrefix)
  if (!db) throw new Error('no database')
  const store = await openStore({ dataDir: '/nonexistent', databaseUrl: db.url }, log)
  try {
    await store.migrate()
    for (let g = 0; g < grids; g++) {
      const gridId = `g${g}`
      await store.grids.create({ id: gridId, level: 'district', name: gridId })
      const checkpoints = Array.from({ length: CPS }, (_, j) => ({ id: `${gridId}-c${j}`, tagIds: [`${gridId}-t${j}`], lat: 31 + g * 0.001, lon: 121 + j * 0.0005 }))
      await store.plans.put({ gridId, effectiveFrom: null, plan: parsePlan({ gridId, checkpoints, windows: { kind: 'every', every: '2h' }, maxGapMinutes: 240 }) })
    }
    const checkins = await writeDayCheckins(store, grids)
    const plans = await createRunner({ store, log }).plans()
    const queries = [...plans.values()].map((v) => coverageQuery(v[0]!, DATE).query)

    // the product: stage A in SQL, in the runner's pass size
    const c0 = await cpuSnapshot(db.url)
    const s0 = performance.now()
    const sql: CompactAggregates[] = []
    for (let i = 0; i < queries.length; i += 2500) sql.push(...(await store.coverage.compactMany(queries.slice(i, i + 2500))))
    const sqlMs = performance.now() - s0
    const c1 = await cpuSnapshot(db.url)

    // the transfer alone: the same COPY, its bytes only counted
    const b0 = performance.now()
    const bare = await copyOnly(db.url, queries)
    const bareMs = performance.now() - b0

    // the alternative: one COPY of the day's rows, judged in Node
    const n0 = performance.now()
    const node = await streamedStageA(db.url, queries)
    const nodeMs = performance.now() - n0
    const c2 = await cpuSnapshot(db.url)
    let same = 0
    for (const [i, a] of sql.entries()) if (isDeepStrictEqual(a, node.out[i])) same++

    console.log(
      `server   grids ${String(grids).padStart(6)}  check-ins ${checkins}\n` +
        `  stage A in SQL (compactMany)       ${secs(sqlMs)} s  ${cpuSince(c0, c1, db.url)}\n` +
        `  the COPY alone (bytes counted)     ${secs(bareMs)} s  server cpu ${secs(bare.serverMs)} s  (${(bare.bytes / 1e6).toFixed(0)} MB)\n` +
        `  stage A streamed to Node           ${secs(nodeMs)} s  ${cpuSince(c1, c2, db.url)} + server ${secs(node.serverMs)} (copy and parse ${secs(node.copyMs)} s of it, ${node.rows} rows; judged ${secs(node.judgeMs)} s)\n` +
        `  same result for ${same} of ${queries.length} grid-days`,
    )
  } finally {
    await store.close()
    await db.drop()
  }
}

/**
 * The rows every grid-day of this bench reads (its checkpoints' rows; the bench has no unknown tags,
 * foreign devices or clock offsets, so this is the whole selection here — the product's selection
 * has those branches too), parsed from COPY text and grouped by grid, then the reference per grid.
 */
function copySql(qs: readonly CoverageQuery[]): string {
  const lo = Math.min(...qs.map((q) => Math.min(...q.periods.map((p) => p.start)))) - Math.max(...qs.map((q) => q.maxGapMs))
  const hi = Math.max(...qs.map((q) => Math.max(...q.periods.map((p) => p.end))))
  return `COPY (SELECT device_id, seq, tag_id, checkpoint_id, (extract(epoch FROM device_time) * 1000)::int8, (extract(epoch FROM received_at) * 1000)::int8,
                      badge_id, grid_id, lat, lon
               FROM check_ins WHERE device_time >= to_timestamp(${lo / 1000}) AND device_time < to_timestamp(${hi / 1000})) TO STDOUT`
}

/** A client whose backend's CPU can be read before it closes. */
async function client(url: string): Promise<{ c: pg.Client; serverMs: () => number }> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const [row] = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows
  const pid = row?.pid ?? 0
  const before = cpuMs(pid)
  return { c, serverMs: () => cpuMs(pid) - before }
}

async function copyOnly(url: string, qs: readonly CoverageQuery[]): Promise<{ bytes: number; serverMs: number }> {
  const { c, serverMs } = await client(url)
  let bytes = 0
  try {
    for await (const chunk of c.query(copyStreams.to(copySql(qs))) as AsyncIterable<Buffer>) bytes += chunk.length
    return { bytes, serverMs: serverMs() }
  } finally {
    await c.end()
  }
}

async function streamedStageA(url: string, qs: readonly CoverageQuery[]): Promise<{ out: CompactAggregates[]; copyMs: number; judgeMs: number; rows: number; serverMs: number }> {
  const gridOf = new Map<string, number>()
  for (const [i, q] of qs.entries()) for (const c of q.checkpoints) gridOf.set(c.id, i)
  const per: CheckinRow[][] = qs.map(() => [])
  const { c, serverMs } = await client(url)
  const t0 = performance.now()
  let rows = 0
  let server = 0
  try {
    const stream = c.query(copyStreams.to(copySql(qs)))
    let rest = ''
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const text = rest + chunk.toString('utf8')
      let start = 0
      for (;;) {
        const nl = text.indexOf('\n', start)
        if (nl < 0) break
        const f = text.slice(start, nl).split('\t')
        start = nl + 1
        rows++
        const cp = f[3] === '\\N' ? null : (f[3] as string)
        const gi = cp === null ? undefined : gridOf.get(cp)
        if (gi === undefined) continue
        const dev = f[0] as string
        const seq = Number(f[1])
        ;(per[gi] as CheckinRow[]).push({
          id: `${dev}:${seq}`, deviceId: dev, seq, tagId: f[2] as string, checkpointId: cp, deviceTime: Number(f[4]), receivedAt: Number(f[5]),
          badge: f[6] === '\\N' ? null : (f[6] as string), deviceGridId: f[7] === '\\N' ? null : (f[7] as string),
          lat: f[8] === '\\N' ? null : Number(f[8]), lon: f[9] === '\\N' ? null : Number(f[9]),
        })
      }
      rest = text.slice(start)
    }
    server = serverMs()
  } finally {
    await c.end()
  }
  const copyMs = performance.now() - t0
  const j0 = performance.now()
  const out = qs.map((q, i) => compactAggregates(q, aggregateCheckins(q, per[i] as CheckinRow[], [])))
  return { out, copyMs, judgeMs: performance.now() - j0, rows, serverMs: server }
}
