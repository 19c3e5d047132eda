import type { Queryable } from '../db.ts'
import type { RulesRepositories } from '../rules-types.ts'

const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::int8`
const ts = (i: number) => `to_timestamp($${i}::float8 / 1000)`

/** What the device rules (offline, battery, alarm, threshold) read; ids are `device:seq[:idx]`. */
export function rulesInputQueries(db: Queryable): RulesRepositories['rulesInputs'] {
  return {
    async battery(fromMs, toMs) {
      return db.query(
        `SELECT s.device_id || ':' || s.seq AS id, s.device_id AS "deviceId", d.grid_id AS "gridId", s.battery_pct::int AS percent,
                ${ms('s.device_time')} AS "atMs"
         FROM device_status s JOIN devices d ON d.id = s.device_id
         WHERE s.battery_pct IS NOT NULL AND d.grid_id IS NOT NULL AND s.device_time >= ${ts(1)} AND s.device_time < ${ts(2)}
         ORDER BY s.device_id, s.device_time, s.seq`,
        [fromMs, toMs],
      )
    },
    async alarms(fromMs, toMs) {
      return db.query(
        `SELECT a.device_id || ':' || a.seq AS id, a.device_id AS "deviceId", d.grid_id AS "gridId", a.kind,
                ${ms('a.device_time')} AS "atMs", a.lat, a.lon
         FROM alarms a JOIN devices d ON d.id = a.device_id
         WHERE d.grid_id IS NOT NULL AND a.received_at >= ${ts(1)} AND a.received_at < ${ts(2)}
         ORDER BY a.device_id, a.device_time, a.seq`,
        [fromMs, toMs],
      )
    },
    async presence() {
      return db.query(
        `SELECT d.id AS "deviceId", d.grid_id AS "gridId", ${ms('d.created_at')} AS "registeredAtMs",
                ${ms('s.last_seen_at')} AS "lastSeenAtMs", d.disabled
         FROM devices d LEFT JOIN device_state s ON s.device_id = d.id
         WHERE d.kind IN ('patrol', 'sensor') AND d.grid_id IS NOT NULL ORDER BY d.id`,
      )
    },
    async telemetry(metric, fromMs, toMs) {
      return db.query(
        `SELECT t.device_id || ':' || t.seq || ':' || t.idx AS id, t.device_id AS "sensorId", d.grid_id AS "gridId", t.metric, t.value,
                ${ms('t.device_time')} AS "atMs"
         FROM telemetry t JOIN devices d ON d.id = t.device_id
         WHERE t.metric = $1 AND d.grid_id IS NOT NULL AND t.device_time >= ${ts(2)} AND t.device_time < ${ts(3)}
         ORDER BY t.device_id, t.device_time, t.seq, t.idx`,
        [metric, fromMs, toMs],
      )
    },
  }
}
