import type { Db, Queryable } from '../db.ts'
import { estimateClockOffset } from '../clock-offset.ts'
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

export function uplinkQueries(db: Db): Store['uplinks'] {
  return { write: (batch) => db.transaction((tx) => writeBatch(tx, batch)) }
}

/**
 * One group commit. Keys are claimed in uplink_seen in (device, seq) order —
 * DESIGN: concurrent ON CONFLICT writers with overlapping keys deadlock unless
 * every batch locks its keys in the same order. Only claimed records are
 * inserted into the time-series tables, so dedup is exact whatever the device
 * time says; the hypertables' (device, seq, device_time) unique keys are a
 * second guard.
 */
export async function writeBatch(tx: Queryable, batch: WriteBatch): Promise<WriteResult> {
  const records = batch.records
  const outcomes: RecordOutcome[] = new Array<RecordOutcome>(records.length)
  const order = records.map((_, i) => i).sort((a, b) => compareKey(records[a] as UplinkRecord, records[b] as UplinkRecord))

  // Same key twice inside this batch: the first wins, the others are judged against it.
  const firstOf = new Map<string, UplinkRecord>()
  const candidates: number[] = []
  for (const i of order) {
    const r = records[i] as UplinkRecord
    const k = `${r.deviceId}\u0000${r.seq}`
    const first = firstOf.get(k)
    if (first) outcomes[i] = first.deviceTimeMs === r.deviceTimeMs ? 'duplicate' : 'conflict'
    else {
      firstOf.set(k, r)
      candidates.push(i)
    }
  }

  const claimed = new Set<string>()
  if (candidates.length > 0) {
    const c = candidates.map((i) => records[i] as UplinkRecord)
    // One statement claims the keys and inserts the claimed check-ins (the common
    // case: one round trip instead of two); the other kinds follow below.
    const claimParams = [c.map((r) => r.deviceId), c.map((r) => r.seq), c.map((r) => r.deviceTimeMs), c.map((r) => r.kind), c.map((r) => r.receivedAtMs)]
    const rows = await tx.query<{ d: string; s: number }>(
      `WITH claimed AS (
         INSERT INTO uplink_seen (device_id, seq, device_time, kind, received_at)
         SELECT d, s, to_timestamp(t / 1000), k, to_timestamp(r / 1000)
         FROM unnest($1::text[], $2::int8[], $3::float8[], $4::text[], $5::float8[]) WITH ORDINALITY AS u(d, s, t, k, r, o)
         ORDER BY o
         ON CONFLICT (device_id, seq) DO NOTHING
         RETURNING device_id, seq),
       ins AS (${CHECKIN_INSERT.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + 5}`)}
         JOIN claimed ON claimed.device_id = u.d AND claimed.seq = u.s
         ON CONFLICT DO NOTHING)
       SELECT k.d, k.s FROM unnest($1::text[], $2::int8[]) AS k(d, s)
       WHERE NOT EXISTS (SELECT 1 FROM claimed WHERE claimed.device_id = k.d AND claimed.seq = k.s)`,
      [...claimParams, ...checkInParams(c.filter((r): r is CheckInRecord => r.kind === 'checkin'))],
    )
    // The statement returns the keys it could NOT claim (usually none: fewer rows to parse).
    const taken = new Set(rows.map((row) => `${row.d}\u0000${row.s}`))
    for (const r of c) if (!taken.has(keyOf(r))) claimed.add(keyOf(r))
    const seen = candidates.filter((i) => !claimed.has(keyOf(records[i] as UplinkRecord)))
    if (seen.length > 0) {
      const prior = await tx.query<{ d: string; s: number; t: number }>(
        `SELECT u.device_id AS d, u.seq AS s, floor(extract(epoch FROM u.device_time) * 1000)::int8 AS t
         FROM uplink_seen u JOIN unnest($1::text[], $2::int8[]) AS k(d, s) ON u.device_id = k.d AND u.seq = k.s`,
        [seen.map((i) => (records[i] as UplinkRecord).deviceId), seen.map((i) => (records[i] as UplinkRecord).seq)],
      )
      const priorTime = new Map(prior.map((p) => [`${p.d}\u0000${p.s}`, p.t]))
      for (const i of seen) {
        const r = records[i] as UplinkRecord
        outcomes[i] = priorTime.get(keyOf(r)) === r.deviceTimeMs ? 'duplicate' : 'conflict'
      }
    }
    for (const i of candidates) if (claimed.has(keyOf(records[i] as UplinkRecord))) outcomes[i] = 'new'
  }

  const fresh = order.filter((i) => outcomes[i] === 'new').map((i) => records[i] as UplinkRecord)
  // (check-ins: inserted with the claim above)
  await insertTelemetry(tx, fresh.filter((r): r is TelemetryRecord => r.kind === 'telemetry'))
  await insertStatus(tx, fresh.filter((r): r is StatusRecord => r.kind === 'status'))
  await insertAlarms(tx, fresh.filter((r): r is AlarmRecord => r.kind === 'alarm'))
  await insertAcks(tx, fresh.filter((r): r is AckRecord => r.kind === 'ack'))

  const rejects = [...(batch.rejects ?? []), ...conflictRejects(records, outcomes)]
  for (const j of rejects) {
    await tx.query(
      `INSERT INTO ingest_rejects (received_at, topic, device_id, payload, code, message, field)
       VALUES (to_timestamp($1::float8 / 1000), $2, $3, $4, $5, $6, $7)`,
      [j.receivedAtMs, j.topic, j.deviceId, j.payload, j.code, j.message, j.field ?? null],
    )
  }
  await insertPresence(tx, batch.presence ?? [])
  await updateDeviceState(tx, fresh, batch.presence ?? [])

  let duplicates = 0
  let conflicts = 0
  for (const o of outcomes) {
    if (o === 'duplicate') duplicates++
    else if (o === 'conflict') conflicts++
  }
  return { outcomes, inserted: fresh.length, duplicates, conflicts, rejects: rejects.length }
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

// The check-in columns; the caller appends the join/ON CONFLICT (claimed keys only).
const CHECKIN_INSERT = `INSERT INTO check_ins (device_id, seq, device_time, received_at, grid_id, checkpoint_id, tag_id, method,
       lat, lon, accuracy_m, badge_id, battery_pct, clock_future, clock_ancient, unknown_tag)
     SELECT u.d, u.s, to_timestamp(u.t / 1000), to_timestamp(u.r / 1000), u.g, u.c, u.tag, u.m, u.la, u.lo, u.acc, u.b, u.bat, u.cf, u.ca, u.c IS NULL
     FROM unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::text[],
       $9::float8[], $10::float8[], $11::real[], $12::text[], $13::smallint[], $14::boolean[], $15::boolean[])
       AS u(d, s, t, r, g, c, tag, m, la, lo, acc, b, bat, cf, ca)`

function checkInParams(rs: CheckInRecord[]): unknown[] {
  return [
    col(rs, (r) => r.deviceId),
    col(rs, (r) => r.seq),
    col(rs, (r) => r.deviceTimeMs),
    col(rs, (r) => r.receivedAtMs),
    col(rs, (r) => r.gridId),
    col(rs, (r) => r.checkpointId),
    col(rs, (r) => r.tagId),
    col(rs, (r) => r.method),
    col(rs, (r) => r.lat),
    col(rs, (r) => r.lon),
    col(rs, (r) => r.accuracyM),
    col(rs, (r) => r.badgeId),
    col(rs, (r) => r.batteryPct),
    col(rs, (r) => r.clockFuture),
    col(rs, (r) => r.clockAncient),
  ]
}

async function insertTelemetry(tx: Queryable, rs: TelemetryRecord[]): Promise<void> {
  const flat = rs.flatMap((r) => r.readings.map((x, idx) => ({ r, x, idx })))
  if (flat.length === 0) return
  await tx.query(
    `INSERT INTO telemetry (device_id, seq, idx, device_time, received_at, metric, value, unit, clock_future, clock_ancient)
     SELECT d, s, i, to_timestamp(t / 1000), to_timestamp(r / 1000), m, v, un, cf, ca
     FROM unnest($1::text[], $2::int8[], $3::smallint[], $4::float8[], $5::float8[], $6::text[], $7::float8[], $8::text[],
       $9::boolean[], $10::boolean[]) AS u(d, s, i, t, r, m, v, un, cf, ca)
     ON CONFLICT DO NOTHING`,
    [
      col(flat, (f) => f.r.deviceId),
      col(flat, (f) => f.r.seq),
      col(flat, (f) => f.idx),
      col(flat, (f) => f.x.deviceTimeMs),
      col(flat, (f) => f.r.receivedAtMs),
      col(flat, (f) => f.x.metric),
      col(flat, (f) => f.x.value),
      col(flat, (f) => f.x.unit),
      col(flat, (f) => f.x.clockFuture),
      col(flat, (f) => f.x.clockAncient),
    ],
  )
}

async function insertStatus(tx: Queryable, rs: StatusRecord[]): Promise<void> {
  if (rs.length === 0) return
  await tx.query(
    `INSERT INTO device_status (device_id, seq, device_time, received_at, battery_pct, battery_mv, signal_dbm,
       firmware_version, uptime_s, buffered_count, boot_count, lat, lon, clock_future, clock_ancient)
     SELECT d, s, to_timestamp(t / 1000), to_timestamp(r / 1000), bp, mv, sig, fw, up, buf, boot, la, lo, cf, ca
     FROM unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::smallint[], $6::real[], $7::smallint[], $8::text[],
       $9::int8[], $10::int4[], $11::int4[], $12::float8[], $13::float8[], $14::boolean[], $15::boolean[])
       AS u(d, s, t, r, bp, mv, sig, fw, up, buf, boot, la, lo, cf, ca)
     ON CONFLICT DO NOTHING`,
    [
      col(rs, (r) => r.deviceId),
      col(rs, (r) => r.seq),
      col(rs, (r) => r.deviceTimeMs),
      col(rs, (r) => r.receivedAtMs),
      col(rs, (r) => r.batteryPct),
      col(rs, (r) => r.batteryMv),
      col(rs, (r) => r.signalDbm),
      col(rs, (r) => r.firmwareVersion),
      col(rs, (r) => r.uptimeS),
      col(rs, (r) => r.bufferedCount),
      col(rs, (r) => r.bootCount),
      col(rs, (r) => r.lat),
      col(rs, (r) => r.lon),
      col(rs, (r) => r.clockFuture),
      col(rs, (r) => r.clockAncient),
    ],
  )
}

async function insertAlarms(tx: Queryable, rs: AlarmRecord[]): Promise<void> {
  if (rs.length === 0) return
  await tx.query(
    `INSERT INTO alarms (device_id, seq, device_time, received_at, kind, lat, lon, badge_id, detail, clock_future, clock_ancient)
     SELECT d, s, to_timestamp(t / 1000), to_timestamp(r / 1000), k, la, lo, b, de, cf, ca
     FROM unnest($1::text[], $2::int8[], $3::float8[], $4::float8[], $5::text[], $6::float8[], $7::float8[], $8::text[],
       $9::text[], $10::boolean[], $11::boolean[]) AS u(d, s, t, r, k, la, lo, b, de, cf, ca)
     ON CONFLICT DO NOTHING`,
    [
      col(rs, (r) => r.deviceId),
      col(rs, (r) => r.seq),
      col(rs, (r) => r.deviceTimeMs),
      col(rs, (r) => r.receivedAtMs),
      col(rs, (r) => r.alarmKind),
      col(rs, (r) => r.lat),
      col(rs, (r) => r.lon),
      col(rs, (r) => r.badgeId),
      col(rs, (r) => r.detail),
      col(rs, (r) => r.clockFuture),
      col(rs, (r) => r.clockAncient),
    ],
  )
}

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
    if (t0 === undefined || a.status !== 'ok' || a.receivedDeviceTimeMs === undefined) continue
    const est = estimateClockOffset(t0, a.receivedDeviceTimeMs, a.deviceTimeMs, a.receivedAtMs)
    await tx.query(
      `INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, command_id)
       VALUES ($1, to_timestamp($2::float8 / 1000), $3, $4, $5) ON CONFLICT DO NOTHING`,
      [a.deviceId, a.receivedAtMs, est.offsetMs, est.delayMs, a.commandId],
    )
  }
}

/** t0 of a TimeSync body (`{ timeSync: { serverTimeMs } }`, firmware-protocol's Command). */
function serverTimeOf(body: Record<string, unknown>): number | undefined {
  const sync = body['timeSync'] as { serverTimeMs?: unknown } | undefined
  return typeof sync?.serverTimeMs === 'number' ? sync.serverTimeMs : undefined
}

async function insertPresence(tx: Queryable, ps: PresenceEvent[]): Promise<void> {
  if (ps.length === 0) return
  await tx.query(
    `INSERT INTO device_presence (device_id, received_at, online, reason)
     SELECT d, to_timestamp(r / 1000), o, re FROM unnest($1::text[], $2::float8[], $3::boolean[], $4::text[]) AS u(d, r, o, re)`,
    [col(ps, (p) => p.deviceId), col(ps, (p) => p.receivedAtMs), col(ps, (p) => p.online), col(ps, (p) => p.reason)],
  )
}

interface StatePatch {
  seenAt: number | null
  lastSeq: number | null
  battery: number | null
  statusAt: number | null
  online: boolean | null
  presenceAt: number | null
}

/** Latest-state upsert, one row per device, in device order (lock order). */
async function updateDeviceState(tx: Queryable, fresh: UplinkRecord[], presence: PresenceEvent[]): Promise<void> {
  const patch = new Map<string, StatePatch>()
  const get = (id: string) => {
    let p = patch.get(id)
    if (!p) patch.set(id, (p = { seenAt: null, lastSeq: null, battery: null, statusAt: null, online: null, presenceAt: null }))
    return p
  }
  for (const r of fresh) {
    const p = get(r.deviceId)
    p.seenAt = Math.max(p.seenAt ?? 0, r.receivedAtMs)
    p.lastSeq = Math.max(p.lastSeq ?? 0, r.seq)
    const battery = r.kind === 'status' || r.kind === 'checkin' ? r.batteryPct : undefined
    if (battery !== undefined && (p.statusAt === null || r.deviceTimeMs >= p.statusAt)) {
      p.battery = battery
      p.statusAt = r.deviceTimeMs
    }
  }
  for (const e of presence) {
    const p = get(e.deviceId)
    if (p.presenceAt === null || e.receivedAtMs >= p.presenceAt) {
      p.online = e.online
      p.presenceAt = e.receivedAtMs
    }
  }
  if (patch.size === 0) return
  const ids = [...patch.keys()].sort()
  const ps = ids.map((id) => patch.get(id) as StatePatch)
  await tx.query(
    `INSERT INTO device_state AS s (device_id, online, presence_at, last_seen_at, last_seq, battery_pct, status_at)
     SELECT d, o, to_timestamp(pa / 1000), to_timestamp(sa / 1000), ls, b, to_timestamp(st / 1000)
     FROM unnest($1::text[], $2::boolean[], $3::float8[], $4::float8[], $5::int8[], $6::smallint[], $7::float8[])
       WITH ORDINALITY AS u(d, o, pa, sa, ls, b, st, n)
     ORDER BY n
     ON CONFLICT (device_id) DO UPDATE SET
       online       = CASE WHEN excluded.presence_at >= s.presence_at OR s.presence_at IS NULL THEN COALESCE(excluded.online, s.online) ELSE s.online END,
       presence_at  = GREATEST(s.presence_at, excluded.presence_at),
       last_seen_at = GREATEST(s.last_seen_at, excluded.last_seen_at),
       last_seq     = GREATEST(s.last_seq, excluded.last_seq),
       battery_pct  = CASE WHEN excluded.status_at >= s.status_at OR s.status_at IS NULL THEN COALESCE(excluded.battery_pct, s.battery_pct) ELSE s.battery_pct END,
       status_at    = GREATEST(s.status_at, excluded.status_at)`,
    [
      ids,
      col(ps, (p) => p.online),
      col(ps, (p) => p.presenceAt),
      col(ps, (p) => p.seenAt),
      col(ps, (p) => p.lastSeq),
      col(ps, (p) => p.battery),
      col(ps, (p) => p.statusAt),
    ],
  )
}
