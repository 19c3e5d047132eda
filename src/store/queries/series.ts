import type { Queryable } from '../db.ts'
import type { AlarmRow, CheckInRow, DeviceStateRow, HourlyVisitRow, Store, TelemetryBucketRow, TelemetryRow } from '../types.ts'

const CHECKIN_COLS = `device_id AS "deviceId", seq, device_time AS "deviceTime", received_at AS "receivedAt", grid_id AS "gridId",
  checkpoint_id AS "checkpointId", tag_id AS "tagId", method, lat, lon, badge_id AS "badgeId", battery_pct AS "batteryPct",
  clock_future AS "clockFuture", clock_ancient AS "clockAncient", unknown_tag AS "unknownTag"`

export function checkInQueries(db: Queryable): Store['checkIns'] {
  return {
    async list(q) {
      return db.query<CheckInRow>(
        `SELECT ${CHECKIN_COLS} FROM check_ins
         WHERE device_time >= $1 AND device_time < $2
           AND ($3::text IS NULL OR grid_id = $3)
           AND ($4::text[] IS NULL OR checkpoint_id = ANY($4))
           AND ($5::text IS NULL OR device_id = $5)
         ORDER BY device_time, device_id, seq LIMIT $6`,
        [q.from, q.to, q.gridId ?? null, q.checkpointIds ?? null, q.deviceId ?? null, q.limit ?? 100_000],
      )
    },
    async hourlyVisits(q) {
      return db.query<HourlyVisitRow>(
        `SELECT v.bucket, v.checkpoint_id AS "checkpointId", v.visits::int8 AS visits, v.first_at AS "firstAt", v.last_at AS "lastAt"
         FROM checkpoint_visits_hourly v
         WHERE v.bucket >= $1 AND v.bucket < $2
           AND ($3::text[] IS NULL OR v.checkpoint_id = ANY($3))
           AND ($4::text IS NULL OR v.checkpoint_id IN (SELECT id FROM checkpoints WHERE grid_id = $4))
         ORDER BY v.bucket, v.checkpoint_id`,
        [q.from, q.to, q.checkpointIds ?? null, q.gridId ?? null],
      )
    },
    async count(q = {}) {
      const [row] = await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM check_ins WHERE ($1::text IS NULL OR device_id = $1)', [
        q.deviceId ?? null,
      ])
      return row?.n ?? 0
    },
  }
}

export function telemetryQueries(db: Queryable): Store['telemetry'] {
  return {
    async list(q) {
      return db.query<TelemetryRow>(
        `SELECT device_id AS "deviceId", seq, device_time AS "deviceTime", received_at AS "receivedAt", metric, value, unit
         FROM telemetry WHERE device_id = $1 AND ($2::text IS NULL OR metric = $2) AND device_time >= $3 AND device_time < $4
         ORDER BY device_time, seq, idx LIMIT $5`,
        [q.deviceId, q.metric ?? null, q.from, q.to, q.limit ?? 100_000],
      )
    },
    async buckets(q) {
      // date_bin, not time_bucket: the same answer with or without TimescaleDB.
      return db.query<TelemetryBucketRow>(
        `SELECT date_bin(make_interval(secs => $5), device_time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
                count(*)::int8 AS count, min(value) AS min, max(value) AS max, avg(value) AS avg
         FROM telemetry WHERE device_id = $1 AND metric = $2 AND device_time >= $3 AND device_time < $4
         GROUP BY 1 ORDER BY 1`,
        [q.deviceId, q.metric, q.from, q.to, q.bucketSeconds],
      )
    },
  }
}

const STATE_COLS = `device_id AS "deviceId", online, presence_at AS "presenceAt", last_seen_at AS "lastSeenAt",
  last_seq AS "lastSeq", battery_pct AS "batteryPct", status_at AS "statusAt"`

export function deviceStateQueries(db: Queryable): Store['devicesState'] {
  return {
    async get(id) {
      return (await db.query<DeviceStateRow>(`SELECT ${STATE_COLS} FROM device_state WHERE device_id = $1`, [id]))[0]
    },
    async list() {
      return db.query<DeviceStateRow>(`SELECT ${STATE_COLS} FROM device_state ORDER BY device_id`)
    },
  }
}

export function alarmQueries(db: Queryable): Store['alarms'] {
  return {
    async list(q) {
      return db.query<AlarmRow>(
        `SELECT device_id AS "deviceId", seq, device_time AS "deviceTime", received_at AS "receivedAt", kind, lat, lon,
                badge_id AS "badgeId", detail
         FROM alarms WHERE device_time >= $1 AND device_time < $2 AND ($3::text IS NULL OR device_id = $3)
         ORDER BY device_time, device_id, seq`,
        [q.from, q.to, q.deviceId ?? null],
      )
    },
  }
}
