import type { Queryable } from '../db.ts'
import type { ClockEstimate, ClockRow, CommandRow, RejectRow, Store } from '../types.ts'

const CMD_COLS = `command_id AS "commandId", device_id AS "deviceId", kind, body, issued_at AS "issuedAt", expires_at AS "expiresAt",
  status, sent_at AS "sentAt", acked_at AS "ackedAt", ack_status AS "ackStatus", ack_detail AS "ackDetail"`

export function commandQueries(db: Queryable): Store['commands'] {
  return {
    async enqueue(c) {
      const [row] = await db.query<CommandRow>(
        `INSERT INTO commands (command_id, device_id, kind, body, issued_at, expires_at)
         VALUES ($1, $2, $3, $4::jsonb, to_timestamp($5::float8 / 1000), to_timestamp($6::float8 / 1000)) RETURNING ${CMD_COLS}`,
        [c.commandId, c.deviceId, c.kind, JSON.stringify(c.body), c.issuedAtMs, c.expiresAtMs],
      )
      return row as CommandRow
    },
    async get(id) {
      return (await db.query<CommandRow>(`SELECT ${CMD_COLS} FROM commands WHERE command_id = $1`, [id]))[0]
    },
    async pending(deviceId, nowMs) {
      return db.query<CommandRow>(
        `SELECT ${CMD_COLS} FROM commands
         WHERE device_id = $1 AND status IN ('queued', 'sent')
           AND (expires_at IS NULL OR expires_at > to_timestamp($2::float8 / 1000))
         ORDER BY issued_at, command_id`,
        [deviceId, nowMs],
      )
    },
    async markSent(ids, atMs) {
      if (ids.length === 0) return
      await db.query(
        `UPDATE commands SET status = 'sent', sent_at = to_timestamp($2::float8 / 1000)
         WHERE command_id = ANY($1::text[]) AND status = 'queued'`,
        [[...ids].sort(), atMs],
      )
    },
    async expire(nowMs) {
      const rows = await db.query(
        `UPDATE commands SET status = 'expired'
         WHERE status IN ('queued', 'sent') AND expires_at <= to_timestamp($1::float8 / 1000) RETURNING command_id`,
        [nowMs],
      )
      return rows.length
    },
  }
}

/** The columns of a measurement row `o` as a ClockEstimate, and whether a step was found since (a later 'step' row). */
const ESTIMATE_COLS = `o.device_id AS "deviceId", o.measured_at AS "measuredAt", o.offset_ms AS "offsetMs", o.delay_ms AS "delayMs",
  o.command_id AS "commandId", o.seq,
  (SELECT max(s.measured_at) FROM clock_offsets s WHERE s.device_id = o.device_id AND s.source = 'step' AND s.measured_at > o.measured_at) AS "stepSuspectedAt"`

export function clockQueries(db: Queryable): Store['clock'] {
  return {
    async latest(deviceId) {
      return (
        await db.query<ClockEstimate>(
          `SELECT ${ESTIMATE_COLS} FROM clock_offsets o WHERE o.device_id = $1 AND o.source IS NULL ORDER BY o.measured_at DESC LIMIT 1`,
          [deviceId],
        )
      )[0]
    },
    async prune(beforeMs) {
      // Each device keeps its latest row (it times what it records next) and its latest measurement
      // (a step row repeats one: ClockEstimate, the dispatcher's age of a device's estimate).
      const [row] = await db.query<{ n: number }>(
        `WITH d AS (DELETE FROM clock_offsets o WHERE o.measured_at < to_timestamp($1::float8 / 1000)
                      AND EXISTS (SELECT 1 FROM clock_offsets n WHERE n.device_id = o.device_id AND n.measured_at > o.measured_at)
                      AND (o.source IS NOT NULL
                           OR EXISTS (SELECT 1 FROM clock_offsets n WHERE n.device_id = o.device_id AND n.measured_at > o.measured_at AND n.source IS NULL))
                    RETURNING 1)
         SELECT count(*)::int8 AS n FROM d`,
        [beforeMs],
      )
      return row?.n ?? 0
    },
    async latestOf(deviceIds) {
      if (deviceIds.length === 0) return []
      return db.query<ClockEstimate>(
        `SELECT l.* FROM unnest($1::text[]) AS d(id)
         CROSS JOIN LATERAL (SELECT ${ESTIMATE_COLS} FROM clock_offsets o
                             WHERE o.device_id = d.id AND o.source IS NULL ORDER BY o.measured_at DESC LIMIT 1) l`,
        [[...new Set(deviceIds)]],
      )
    },
    async history(deviceId) {
      return db.query<ClockRow>(
        `SELECT measured_at AS "measuredAt", offset_ms AS "offsetMs", delay_ms AS "delayMs", command_id AS "commandId", seq,
                coalesce(source, 'sync') AS source
         FROM clock_offsets WHERE device_id = $1 ORDER BY measured_at`,
        [deviceId],
      )
    },
    async recordStep(step) {
      // One statement: the measurement must still be the device's latest row (a sync acknowledged
      // meanwhile, or a step recorded already, wins), and come before the boundary in seq.
      // measured_at: after the measurement, a microsecond off the whole millisecond measurements are
      // stamped on (to_timestamp(receipt ms)), so the sync sent next never collides with it on the key.
      const rows = await db.query(
        `INSERT INTO clock_offsets (device_id, measured_at, offset_ms, delay_ms, command_id, seq, source)
         SELECT l.device_id, greatest(to_timestamp($3::float8 / 1000) - interval '1 microsecond', l.measured_at + interval '1 microsecond'),
                l.offset_ms, l.delay_ms, NULL, $2, 'step'
         FROM (SELECT * FROM clock_offsets WHERE device_id = $1 ORDER BY measured_at DESC LIMIT 1) l
         WHERE l.source IS NULL AND l.seq < $2
           AND abs(extract(epoch FROM l.measured_at) * 1000 - $4::float8) < 0.5
         ON CONFLICT DO NOTHING RETURNING 1`,
        [step.deviceId, step.seq, step.atMs, step.estimateMeasuredAtMs],
      )
      return rows.length > 0
    },
  }
}

export function rejectQueries(db: Queryable): Store['rejects'] {
  return {
    async list(q = {}) {
      const rows = await db.query<RejectRow>(
        `SELECT id, received_at AS "receivedAt", topic, device_id AS "deviceId", payload, code, message, field
         FROM ingest_rejects
         WHERE ($1::timestamptz IS NULL OR received_at >= $1) AND ($2::timestamptz IS NULL OR received_at < $2)
           AND ($3::text IS NULL OR device_id = $3)
         ORDER BY id LIMIT $4`,
        [q.from ?? null, q.to ?? null, q.deviceId ?? null, q.limit ?? 1000],
      )
      // pg gives Buffer, PGlite Uint8Array: one shape for callers.
      return rows.map((r) => ({ ...r, payload: new Uint8Array(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength) }))
    },
    async countByCode() {
      const rows = await db.query<{ code: string; n: number }>('SELECT code, count(*)::int8 AS n FROM ingest_rejects GROUP BY code')
      return Object.fromEntries(rows.map((r) => [r.code, r.n]))
    },
  }
}
