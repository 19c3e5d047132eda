import type { Db, Queryable } from '../db.ts'
import { estimateClockOffset } from '../clock-offset.ts'
import { binaryArray, type ElementType } from './binary-array.ts'
import type {
  AckRecord,
  AlarmRecord,
  CheckInRecord,
  NewReject,
  PresenceEvent,
  RecordOutcome,
  StatusRecord,
  Store,
  TelemetryRecord,
  UplinkRecord,
  WriteBatch,
  WriteResult,
} from '../types.ts'

export function uplinkQueries(db: Db, retentionDays = 0): Store['uplinks'] {
  const claims = new ClaimMode()
  return {
    retentionDays,
    write: (batch) => writeBatch(db, batch, claims),
    async pruneSeen(beforeMs) {
      // In slices of 10,000 (received_at has a BRIN, migration 041: the oldest block ranges are read): short statements, no long lock on the ingest's path.
      let total = 0
      for (;;) {
        const [row] = await db.query<{ n: number }>(
          `WITH d AS (DELETE FROM uplink_seen WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM uplink_seen WHERE received_at < to_timestamp($1::float8 / 1000) LIMIT 10000)) RETURNING 1)
           SELECT count(*)::int8 AS n FROM d`,
          [beforeMs],
        )
        total += row?.n ?? 0
        if ((row?.n ?? 0) < 10_000) return total
      }
    },
  }
}

/**
 * One group commit. The common group (uplink records and presence events, no
 * rejects, no command acks) is ONE statement in autocommit — a data-modifying
 * CTE chain: claim the keys in uplink_seen in (device, seq) order, insert the
 * claimed records of every kind, store the presence events and upsert
 * device_state in device order. DESIGN: concurrent ON CONFLICT writers with
 * overlapping keys deadlock unless every batch locks its keys in the same
 * order; within the statement all claims finish before the device_state
 * upsert starts (it aggregates the claims), so both lock sets are taken in
 * sorted order, one after the other. Only claimed records are inserted, so
 * dedup is exact whatever the device time says; the hypertables' (device, seq,
 * device_time) unique keys are a second guard (see claimAndInsert).
 * A group with rejects or acks runs the same statement inside a transaction
 * with the reject rows and the command updates. Records found already stored
 * with ANOTHER device time (conflicts, rare) get their reject rows in a second
 * transaction before write() resolves: nothing is acknowledged before both
 * commit, and a retry after a failure between them finds the same conflicts.
 */
export async function writeBatch(db: Db, batch: WriteBatch, claims = new ClaimMode()): Promise<WriteResult> {
  const plan = planBatch(batch.records)
  const rejects = batch.rejects ?? []
  const presence = batch.presence ?? []
  const acks = batch.records.some((r) => r.kind === 'ack')
  let unclaimed: Unclaimed[]
  if (rejects.length === 0 && !acks) {
    unclaimed = plan.candidates.length + presence.length > 0 ? await claimAndInsert(db, plan, presence, claims) : []
    settleClaims(plan, unclaimed)
    const conflicts = conflictRejects(batch.records, plan.outcomes)
    const unknown = unclaimed.filter((u) => u.t === null)
    if (unknown.length > 0 || conflicts.length > 0) {
      await db.transaction(async (tx) => {
        if (unknown.length > 0) await resolveUnknown(tx, plan, unknown)
        await insertRejects(tx, conflictRejects(batch.records, plan.outcomes))
      })
    }
  } else {
    await db.transaction(async (tx) => {
      unclaimed = await tx.query<Unclaimed>(...mainStatement(plan, presence, 'claim-lenient', db.driver === 'pg'))
      settleClaims(plan, unclaimed)
      const unknown = unclaimed.filter((u) => u.t === null)
      if (unknown.length > 0) await resolveUnknown(tx, plan, unknown)
      await insertAcks(tx, plan.fresh().filter((r): r is AckRecord => r.kind === 'ack'))
      await insertRejects(tx, [...rejects, ...conflictRejects(batch.records, plan.outcomes)])
    })
  }
  let duplicates = 0
  let conflicts = 0
  let inserted = 0
  for (const o of plan.outcomes) {
    if (o === 'duplicate') duplicates++
    else if (o === 'conflict') conflicts++
    else inserted++
  }
  const conflictRows = conflictRejects(batch.records, plan.outcomes).length
  return { outcomes: plan.outcomes, inserted, duplicates, conflicts, rejects: rejects.length + conflictRows }
}

/**
 * How a group claims its keys. 'optimistic': a plain INSERT of every key into
 * uplink_seen (no ON CONFLICT) and of every record, nothing joined to the
 * claims — the usual group has no key stored before (re-sends the ingest still
 * remembers never reach the store). A key already stored, or claimed by a
 * concurrent writer that commits, fails the whole statement with
 * unique_violation (23505; nothing of it is kept) and the group is written
 * again by 'claim'. 'claim': INSERT … ON CONFLICT DO NOTHING into uplink_seen,
 * only the claimed records inserted (joined to the claims; without ON CONFLICT:
 * a claimed key has no row yet), the unclaimed keys returned. 'claim-lenient': the same with ON CONFLICT DO NOTHING on the
 * records' tables too (a pruned dedup key re-sent while its row is kept).
 * Speculative insertion (ON CONFLICT) and the join cost ≈ 15 % of the
 * database's CPU per row of a batch-shaped group (BENCHMARKS.md, Ingest).
 */
type Claim = 'optimistic' | 'claim' | 'claim-lenient'

/**
 * After an optimistic statement failed on a stored key, re-sends tend to come
 * in bursts (a reconnecting fleet, batch re-uploads): the next groups claim
 * with ON CONFLICT for `holdMs` instead of failing and running twice.
 */
export class ClaimMode {
  private claimUntil = 0
  constructor(
    private readonly holdMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}
  get optimistic(): boolean {
    return this.now() >= this.claimUntil
  }
  sawStoredKey(): void {
    this.claimUntil = this.now() + this.holdMs
  }
}

/** The common group's statement, in autocommit: optimistic first (see Claim), then claim, then claim-lenient. */
async function claimAndInsert(db: Db, plan: Plan, presence: PresenceEvent[], claims: ClaimMode): Promise<Unclaimed[]> {
  const pg = db.driver === 'pg'
  if (claims.optimistic) {
    try {
      return await db.query<Unclaimed>(...mainStatement(plan, presence, 'optimistic', pg))
    } catch (err) {
      if ((err as { code?: unknown }).code !== '23505') throw err
      claims.sawStoredKey()
    }
  }
  try {
    return await db.query<Unclaimed>(...mainStatement(plan, presence, 'claim', pg))
  } catch (err) {
    if ((err as { code?: unknown }).code !== '23505') throw err
    return db.query<Unclaimed>(...mainStatement(plan, presence, 'claim-lenient', pg))
  }
}

/** A candidate key the statement could not claim; t = its stored device time (ms) when visible to the statement. */
interface Unclaimed {
  d: string
  s: number
  t: number | null
}

interface Plan {
  records: UplinkRecord[]
  outcomes: RecordOutcome[]
  /** Indexes of the first record of each key, in key order. */
  candidates: number[]
  fresh(): UplinkRecord[]
}

function planBatch(records: UplinkRecord[]): Plan {
  const outcomes: RecordOutcome[] = new Array<RecordOutcome>(records.length)
  const order = records.map((_, i) => i).sort((a, b) => compareKey(records[a] as UplinkRecord, records[b] as UplinkRecord))
  // Same key twice inside this batch: the first wins, the others are judged against it.
  const candidates: number[] = []
  let prev: UplinkRecord | undefined
  for (const i of order) {
    const r = records[i] as UplinkRecord
    if (prev && prev.deviceId === r.deviceId && prev.seq === r.seq) outcomes[i] = prev.deviceTimeMs === r.deviceTimeMs ? 'duplicate' : 'conflict'
    else {
      prev = r
      candidates.push(i)
      outcomes[i] = 'new'
    }
  }
  return { records, outcomes, candidates, fresh: () => candidates.filter((i) => outcomes[i] === 'new').map((i) => records[i] as UplinkRecord) }
}

/** Marks the unclaimed candidates duplicate or conflict (t known) — unknown ones stay for resolveUnknown. */
function settleClaims(plan: Plan, unclaimed: Unclaimed[]): void {
  if (unclaimed.length === 0) return
  const byKey = new Map(unclaimed.map((u) => [`${u.d}\u0000${u.s}`, u.t]))
  for (const i of plan.candidates) {
    const r = plan.records[i] as UplinkRecord
    const k = keyOf(r)
    if (!byKey.has(k)) continue
    const t = byKey.get(k)
    // null: claimed by a transaction that committed after this statement's snapshot.
    plan.outcomes[i] = t === null ? 'duplicate' : t === r.deviceTimeMs ? 'duplicate' : 'conflict'
  }
}

/** Prior device times of keys claimed by a concurrent transaction (not in the statement's snapshot). */
async function resolveUnknown(tx: Queryable, plan: Plan, unknown: Unclaimed[]): Promise<void> {
  const prior = await tx.query<{ d: string; s: number; t: number }>(
    `SELECT u.device_id AS d, u.seq AS s, floor(extract(epoch FROM u.device_time) * 1000)::int8 AS t
     FROM uplink_seen u JOIN unnest($1::text[], $2::int8[]) AS k(d, s) ON u.device_id = k.d AND u.seq = k.s`,
    [unknown.map((u) => u.d), unknown.map((u) => u.s)],
  )
  const byKey = new Map<string, number | null>(prior.map((p) => [`${p.d}\u0000${p.s}`, p.t]))
  for (const i of plan.candidates) {
    const r = plan.records[i] as UplinkRecord
    const t = byKey.get(keyOf(r))
    if (t !== undefined && t !== null) plan.outcomes[i] = t === r.deviceTimeMs ? 'duplicate' : 'conflict'
  }
}

async function insertRejects(tx: Queryable, rejects: NewReject[]): Promise<void> {
  for (const j of rejects) {
    await tx.query(
      `INSERT INTO ingest_rejects (received_at, topic, device_id, payload, code, message, field)
       VALUES (to_timestamp($1::float8 / 1000), $2, $3, $4, $5, $6, $7)`,
      [j.receivedAtMs, j.topic, j.deviceId, j.payload, j.code, j.message, j.field ?? null],
    )
  }
}

/** Builds the group's statement: claim, insert per kind present, presence, device_state; returns the unclaimed keys (none when optimistic). */
function mainStatement(plan: Plan, presence: PresenceEvent[], claim: Claim, literals: boolean): [string, unknown[]] {
  const params: unknown[] = []
  // Array columns: the pg driver gets each as one pre-built array literal (pg's own
  // conversion escapes every element with two regex replaces); PGlite gets each in
  // the binary array format (no text formatted, scanned or parsed: see binary-array.ts).
  const a = <T>(rows: T[], f: (r: T) => unknown, type: ElementType): string => {
    params.push(literals ? arrayLiteral(rows, f) : binaryArray(rows, f, type))
    return `$${params.length}::${type}[]`
  }
  const c = plan.candidates.map((i) => plan.records[i] as UplinkRecord)
  const optimistic = claim === 'optimistic'
  const checkIns = c.filter((r): r is CheckInRecord => r.kind === 'checkin')
  // Check-in columns after (d, s, t, r): the same arrays whether they are cand's (below) or ci's own.
  const checkInCols = () => `${a(checkIns, (r) => r.gridId, 'text')}, ${a(checkIns, (r) => r.checkpointId, 'text')},
         ${a(checkIns, (r) => r.tagId, 'text')}, ${a(checkIns, (r) => r.method, 'text')},
         ${a(checkIns, (r) => r.lat, 'float8')}, ${a(checkIns, (r) => r.lon, 'float8')},
         ${a(checkIns, (r) => r.accuracyM, 'real')}, ${a(checkIns, (r) => r.badgeId, 'text')},
         ${a(checkIns, (r) => r.batteryPct, 'smallint')}, ${a(checkIns, (r) => r.clockFuture, 'boolean')},
         ${a(checkIns, (r) => r.clockAncient, 'boolean')}`
  // Optimistic and every candidate a check-in (the usual group): one unnest feeds
  // the claims and the check-ins — each column parsed once.
  const fused = optimistic && checkIns.length === c.length && c.length > 0
  const battery = (r: UplinkRecord) => (r.kind === 'checkin' || r.kind === 'status' ? (r.batteryPct ?? null) : null)
  const key = `${a(c, (r) => r.deviceId, 'text')}, ${a(c, (r) => r.seq, 'int8')}, ${a(c, (r) => r.deviceTimeMs, 'float8')}`
  const ctes: string[] = [
    fused
      ? `cand AS (SELECT *, 'checkin'::text AS k, bat AS b FROM unnest(${key}, ${a(c, (r) => r.receivedAtMs, 'float8')},
         ${checkInCols()}) WITH ORDINALITY AS u(d, s, t, r, g, c, tag, m, la, lo, acc, bad, bat, cf, ca, o))`
      : `cand AS (SELECT * FROM unnest(${key}, ${a(c, (r) => r.kind, 'text')}, ${a(c, (r) => r.receivedAtMs, 'float8')},
         ${a(c, battery, 'smallint')}) WITH ORDINALITY AS u(d, s, t, k, r, b, o))`,
    // Optimistic: every key must be new (else unique_violation); nclaimed (one row,
    // read by each insert below) makes every claim, in key order, come before any
    // other lock the statement takes.
    optimistic
      ? `claimed AS (
       INSERT INTO uplink_seen (device_id, seq, device_time, kind, received_at)
       SELECT d, s, to_timestamp(t / 1000), k, to_timestamp(r / 1000) FROM cand ORDER BY o
       RETURNING 1),
     nclaimed AS (SELECT count(*) AS n FROM claimed)`
      : `claimed AS (
       INSERT INTO uplink_seen (device_id, seq, device_time, kind, received_at)
       SELECT d, s, to_timestamp(t / 1000), k, to_timestamp(r / 1000) FROM cand ORDER BY o
       ON CONFLICT (device_id, seq) DO NOTHING
       RETURNING device_id, seq)`,
  ]
  const join = optimistic ? 'CROSS JOIN nclaimed' : `JOIN claimed ON claimed.device_id = u.d AND claimed.seq = u.s${claim === 'claim-lenient' ? ' ON CONFLICT DO NOTHING' : ''}`
  if (checkIns.length > 0) {
    const from = fused
      ? 'cand u'
      : `unnest(${a(checkIns, (r) => r.deviceId, 'text')}, ${a(checkIns, (r) => r.seq, 'int8')},
         ${a(checkIns, (r) => r.deviceTimeMs, 'float8')}, ${a(checkIns, (r) => r.receivedAtMs, 'float8')},
         ${checkInCols()}) AS u(d, s, t, r, g, c, tag, m, la, lo, acc, bad, bat, cf, ca)`
    ctes.push(`ci AS (INSERT INTO check_ins (device_id, seq, device_time, received_at, grid_id, checkpoint_id, tag_id, method,
         lat, lon, accuracy_m, badge_id, battery_pct, clock_future, clock_ancient, unknown_tag)
       SELECT u.d, u.s, to_timestamp(u.t / 1000), to_timestamp(u.r / 1000), u.g, u.c, u.tag, u.m, u.la, u.lo, u.acc, u.bad, u.bat, u.cf, u.ca, u.c IS NULL
       FROM ${from}
       ${join})`)
  }
  const tel = c.filter((r): r is TelemetryRecord => r.kind === 'telemetry').flatMap((r) => r.readings.map((x, idx) => ({ r, x, idx })))
  if (tel.length > 0) {
    ctes.push(`tel AS (INSERT INTO telemetry (device_id, seq, idx, device_time, received_at, metric, value, unit, clock_future, clock_ancient)
       SELECT u.d, u.s, u.i, to_timestamp(u.t / 1000), to_timestamp(u.r / 1000), u.m, u.v, u.un, u.cf, u.ca
       FROM unnest(${a(tel, (f) => f.r.deviceId, 'text')}, ${a(tel, (f) => f.r.seq, 'int8')}, ${a(tel, (f) => f.idx, 'smallint')},
         ${a(tel, (f) => f.x.deviceTimeMs, 'float8')}, ${a(tel, (f) => f.r.receivedAtMs, 'float8')}, ${a(tel, (f) => f.x.metric, 'text')},
         ${a(tel, (f) => f.x.value, 'float8')}, ${a(tel, (f) => f.x.unit, 'text')}, ${a(tel, (f) => f.x.clockFuture, 'boolean')},
         ${a(tel, (f) => f.x.clockAncient, 'boolean')}) AS u(d, s, i, t, r, m, v, un, cf, ca)
       ${join})`)
  }
  const st = c.filter((r): r is StatusRecord => r.kind === 'status')
  if (st.length > 0) {
    ctes.push(`st AS (INSERT INTO device_status (device_id, seq, device_time, received_at, battery_pct, battery_mv, signal_dbm,
         firmware_version, uptime_s, buffered_count, boot_count, lat, lon, clock_future, clock_ancient)
       SELECT u.d, u.s, to_timestamp(u.t / 1000), to_timestamp(u.r / 1000), u.bp, u.mv, u.sig, u.fw, u.up, u.buf, u.boot, u.la, u.lo, u.cf, u.ca
       FROM unnest(${a(st, (r) => r.deviceId, 'text')}, ${a(st, (r) => r.seq, 'int8')}, ${a(st, (r) => r.deviceTimeMs, 'float8')},
         ${a(st, (r) => r.receivedAtMs, 'float8')}, ${a(st, (r) => r.batteryPct, 'smallint')}, ${a(st, (r) => r.batteryMv, 'real')},
         ${a(st, (r) => r.signalDbm, 'smallint')}, ${a(st, (r) => r.firmwareVersion, 'text')}, ${a(st, (r) => r.uptimeS, 'int8')},
         ${a(st, (r) => r.bufferedCount, 'int4')}, ${a(st, (r) => r.bootCount, 'int4')}, ${a(st, (r) => r.lat, 'float8')},
         ${a(st, (r) => r.lon, 'float8')}, ${a(st, (r) => r.clockFuture, 'boolean')}, ${a(st, (r) => r.clockAncient, 'boolean')})
         AS u(d, s, t, r, bp, mv, sig, fw, up, buf, boot, la, lo, cf, ca)
       ${join})`)
  }
  const al = c.filter((r): r is AlarmRecord => r.kind === 'alarm')
  if (al.length > 0) {
    ctes.push(`al AS (INSERT INTO alarms (device_id, seq, device_time, received_at, kind, lat, lon, badge_id, detail, clock_future, clock_ancient)
       SELECT u.d, u.s, to_timestamp(u.t / 1000), to_timestamp(u.r / 1000), u.k, u.la, u.lo, u.b, u.de, u.cf, u.ca
       FROM unnest(${a(al, (r) => r.deviceId, 'text')}, ${a(al, (r) => r.seq, 'int8')}, ${a(al, (r) => r.deviceTimeMs, 'float8')},
         ${a(al, (r) => r.receivedAtMs, 'float8')}, ${a(al, (r) => r.alarmKind, 'text')}, ${a(al, (r) => r.lat, 'float8')},
         ${a(al, (r) => r.lon, 'float8')}, ${a(al, (r) => r.badgeId, 'text')}, ${a(al, (r) => r.detail, 'text')},
         ${a(al, (r) => r.clockFuture, 'boolean')}, ${a(al, (r) => r.clockAncient, 'boolean')}) AS u(d, s, t, r, k, la, lo, b, de, cf, ca)
       ${join})`)
  }
  // Presence: every event is stored; device_state takes each device's latest.
  let pres = 'SELECT NULL::text AS d, NULL::boolean AS o, NULL::float8 AS pa WHERE false'
  if (presence.length > 0) {
    ctes.push(`pr AS (INSERT INTO device_presence (device_id, received_at, online, reason)
       SELECT d, to_timestamp(r / 1000), o, re FROM unnest(${a(presence, (p) => p.deviceId, 'text')}, ${a(presence, (p) => p.receivedAtMs, 'float8')},
         ${a(presence, (p) => p.online, 'boolean')}, ${a(presence, (p) => p.reason, 'text')}) AS u(d, r, o, re))`)
    const latest = new Map<string, PresenceEvent>()
    for (const e of presence) {
      const p = latest.get(e.deviceId)
      if (!p || e.receivedAtMs >= p.receivedAtMs) latest.set(e.deviceId, e)
    }
    const ps = [...latest.values()]
    pres = `SELECT * FROM unnest(${a(ps, (p) => p.deviceId, 'text')}, ${a(ps, (p) => p.online, 'boolean')}, ${a(ps, (p) => p.receivedAtMs, 'float8')}) AS p(d, o, pa)`
  }
  // Latest-state upsert, one row per device, in device order (lock order), from the claimed records only.
  // Optimistic: every candidate is claimed (or the statement fails), so each device's
  // aggregate is computed here and sent as one row per device (no sort of the group's rows).
  let f: string
  if (optimistic) {
    const devs = deviceAggregates(c, battery)
    f = `SELECT u.d, u.sa, u.ls, u.b, u.st FROM unnest(${a(devs, (x) => x.d, 'text')}, ${a(devs, (x) => x.sa, 'float8')},
           ${a(devs, (x) => x.ls, 'int8')}, ${a(devs, (x) => x.b, 'smallint')}, ${a(devs, (x) => x.st, 'float8')}) AS u(d, sa, ls, b, st)
           CROSS JOIN nclaimed`
  } else {
    f = `SELECT u.d, max(u.r) AS sa, max(u.s) AS ls,
             (array_agg(u.b ORDER BY u.t DESC, u.s DESC) FILTER (WHERE u.b IS NOT NULL))[1] AS b,
             max(u.t) FILTER (WHERE u.b IS NOT NULL) AS st
           FROM cand u ${optimistic ? 'CROSS JOIN nclaimed' : 'JOIN claimed ON claimed.device_id = u.d AND claimed.seq = u.s'} GROUP BY u.d`
  }
  ctes.push(`ds AS (INSERT INTO device_state AS s (device_id, online, presence_at, last_seen_at, last_seq, battery_pct, status_at)
     SELECT coalesce(f.d, p.d), p.o, to_timestamp(p.pa / 1000), to_timestamp(f.sa / 1000), f.ls, f.b, to_timestamp(f.st / 1000)
     FROM (${f}) f
     FULL JOIN (${pres}) p ON p.d = f.d
     ORDER BY 1
     ON CONFLICT (device_id) DO UPDATE SET
       online       = CASE WHEN excluded.presence_at >= s.presence_at OR s.presence_at IS NULL THEN COALESCE(excluded.online, s.online) ELSE s.online END,
       presence_at  = GREATEST(s.presence_at, excluded.presence_at),
       last_seen_at = GREATEST(s.last_seen_at, excluded.last_seen_at),
       last_seq     = GREATEST(s.last_seq, excluded.last_seq),
       battery_pct  = CASE WHEN excluded.status_at >= s.status_at OR s.status_at IS NULL THEN COALESCE(excluded.battery_pct, s.battery_pct) ELSE s.battery_pct END,
       status_at    = GREATEST(s.status_at, excluded.status_at))`)
  // Optimistic: every key was claimed (or the statement failed), nothing to return.
  if (optimistic) return [`WITH ${ctes.join(',\n')}\n    SELECT NULL::text AS d, NULL::int8 AS s, NULL::int8 AS t WHERE false`, params]
  // Returns only the keys it could NOT claim (usually none: fewer rows to parse), with
  // the stored device time when the statement's snapshot sees it.
  const sql = `WITH ${ctes.join(',\n')}
    SELECT u.d, u.s, (SELECT floor(extract(epoch FROM p.device_time) * 1000)::int8 FROM uplink_seen p WHERE p.device_id = u.d AND p.seq = u.s) AS t
    FROM cand u WHERE NOT EXISTS (SELECT 1 FROM claimed WHERE claimed.device_id = u.d AND claimed.seq = u.s)`
  return [sql, params]
}

interface DeviceAggregate {
  d: string
  /** Latest receipt time (ms), highest seq. */
  sa: number
  ls: number
  /** Battery of the latest (device time, seq) record carrying one, and that record's device time. */
  b: number | null
  st: number | null
  bs: number
}

/** Per device of a group's candidates (in key order: a device's records are adjacent): what the device_state upsert takes. */
function deviceAggregates(c: UplinkRecord[], battery: (r: UplinkRecord) => number | null): DeviceAggregate[] {
  const out: DeviceAggregate[] = []
  let cur: DeviceAggregate | undefined
  for (const r of c) {
    if (cur === undefined || cur.d !== r.deviceId) {
      cur = { d: r.deviceId, sa: r.receivedAtMs, ls: r.seq, b: null, st: null, bs: 0 }
      out.push(cur)
    } else {
      if (r.receivedAtMs > cur.sa) cur.sa = r.receivedAtMs
      if (r.seq > cur.ls) cur.ls = r.seq
    }
    const b = battery(r)
    if (b === null) continue
    if (cur.st === null || r.deviceTimeMs > cur.st || (r.deviceTimeMs === cur.st && r.seq > cur.bs)) {
      cur.b = b
      cur.st = r.deviceTimeMs
      cur.bs = r.seq
    }
  }
  return out
}

function compareKey(a: UplinkRecord, b: UplinkRecord): number {
  return a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.seq - b.seq
}
const keyOf = (r: UplinkRecord) => `${r.deviceId}\u0000${r.seq}`

/** One reject per conflicting source payload (a batch upload is stored once). */
function conflictRejects(records: UplinkRecord[], outcomes: RecordOutcome[]): NewReject[] {
  const out = new Map<Uint8Array, NewReject>()
  records.forEach((r, i) => {
    if (outcomes[i] !== 'conflict' || !r.source || out.has(r.source.payload)) return
    out.set(r.source.payload, {
      receivedAtMs: r.receivedAtMs,
      topic: r.source.topic,
      deviceId: r.deviceId,
      payload: r.source.payload,
      code: 'GP_INGEST_SEQ_CONFLICT',
      message: `seq ${r.seq} was already stored with another device time; not stored again`,
      field: 'seq',
    })
  })
  return [...out.values()]
}

const col = <T, V>(rows: T[], f: (r: T) => V | undefined): Array<V | null> => rows.map((r) => f(r) ?? null)

/**
 * A PostgreSQL array literal of strings, numbers, booleans and nulls — what pg's
 * arrayString builds, but numbers and booleans unquoted and a string escaped only
 * when it holds a backslash or a double quote.
 */
export function arrayLiteral<T, V>(rows: T[], f: (r: T) => V | undefined): string {
  let out = '{'
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) out += ','
    const v = f(rows[i] as T) as unknown
    if (v === null || v === undefined) out += 'NULL'
    else if (typeof v === 'string') out += v.indexOf('\\') < 0 && v.indexOf('"') < 0 ? `"${v}"` : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
    else if (typeof v === 'number' || typeof v === 'boolean') out += String(v)
    else throw new TypeError(`arrayLiteral: unsupported element type ${typeof v}`)
  }
  return out + '}'
}

/** A time-sync round trip longer than this (less the device's processing) gives no clock estimate. */
export const MAX_SYNC_DELAY_MS = 30_000

/** Stores each ack, closes its command, and turns time-sync acks into clock estimates. */
async function insertAcks(tx: Queryable, rs: AckRecord[]): Promise<void> {
  if (rs.length === 0) return
  await tx.query(
    `INSERT INTO command_acks (device_id, seq, device_time, received_at, command_id, status, detail,
       received_device_time, nonce_hex, clock_future, clock_ancient)
     SELECT d, s, to_timestamp(t / 1000), to_timestamp(r / 1000), c, st, de, to_timestamp(rd / 1000), n, cf, ca
     FROM unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::float8[],
       $9::text[], $10::boolean[], $11::boolean[]) AS u(d, s, t, r, c, st, de, rd, n, cf, ca)
     ON CONFLICT DO NOTHING`,
    [
      col(rs, (r) => r.deviceId),
      col(rs, (r) => r.seq),
      col(rs, (r) => r.deviceTimeMs),
      col(rs, (r) => r.receivedAtMs),
      col(rs, (r) => r.commandId),
      col(rs, (r) => r.status),
      col(rs, (r) => r.detail),
      col(rs, (r) => r.receivedDeviceTimeMs),
      col(rs, (r) => r.nonceHex),
      col(rs, (r) => r.clockFuture),
      col(rs, (r) => r.clockAncient),
    ],
  )
  const sorted = [...rs].sort((a, b) => (a.commandId < b.commandId ? -1 : a.commandId > b.commandId ? 1 : 0))
  for (const a of sorted) {
    const [cmd] = await tx.query<{ kind: string; body: Record<string, unknown> }>(
      `UPDATE commands SET status = 'acked', acked_at = to_timestamp($3::float8 / 1000), ack_status = $4, ack_detail = $5
       WHERE command_id = $1 AND device_id = $2 AND status <> 'acked' RETURNING kind, body`,
      [a.commandId, a.deviceId, a.receivedAtMs, a.status, a.detail ?? null],
    )
    const t0 = cmd?.kind === 'time_sync' ? serverTimeOf(cmd.body) : undefined
    // An `expired` ack still carries t1 and t2: a device whose clock runs ahead by more than the sync's
    // time-to-live judges every sync expired (PROTOCOL.md §3.3: by its own clock), and this is how its
    // offset is learnt. Whether the sync was fresh is the delay's to say, below, on both sides' clocks.
    if (t0 === undefined || (a.status !== 'ok' && a.status !== 'expired') || a.receivedDeviceTimeMs === undefined) continue
    const est = estimateClockOffset(t0, a.receivedDeviceTimeMs, a.deviceTimeMs, a.receivedAtMs)
    // The estimate is off by up to half the delay: an ack buffered offline and uploaded hours later, or a
    // sync delivered late, would mistime the device's rows by hours. Such a round trip is not used.
    if (!(est.delayMs <= MAX_SYNC_DELAY_MS)) continue
    await tx.query(
      // seq: the ack's, which dates the measurement among the device's rows (queries/clock.ts)
      `INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, command_id, seq)
       VALUES ($1, to_timestamp($2::float8 / 1000), $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [a.deviceId, a.receivedAtMs, est.offsetMs, est.delayMs, a.commandId, a.seq],
    )
  }
}

/** t0 of a TimeSync body (`{ timeSync: { serverTimeMs } }`, firmware-protocol's Command). */
function serverTimeOf(body: Record<string, unknown>): number | undefined {
  const sync = body['timeSync'] as { serverTimeMs?: unknown } | undefined
  return typeof sync?.serverTimeMs === 'number' ? sync.serverTimeMs : undefined
}
