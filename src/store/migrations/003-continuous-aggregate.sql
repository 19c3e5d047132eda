-- @when tsl
-- Compression settings and the hourly continuous aggregate: TimescaleDB's TSL
-- features, present on a TimescaleDB server. Not used embedded: the PGlite
-- build cannot load its TSL module again once a data directory is reopened
-- (seen: "function ... is not supported under the current license", and
-- inserts into a hypertable with a continuous aggregate then fail), so the
-- embedded store gets 004's plain view instead — same answers.
-- Policies (compress after N days, retention) are applied from configuration on
-- every start (src/store/policies.ts), not frozen here.

ALTER TABLE check_ins SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'device_time, seq');
ALTER TABLE telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'device_time, seq, idx');
ALTER TABLE device_status SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'device_time, seq');

-- Real-time aggregate (materialized_only = false) so answers equal the plain
-- fallback's view; the store refreshes it explicitly because embedded PGlite
-- runs no background workers.
CREATE MATERIALIZED VIEW checkpoint_visits_hourly
  WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
  SELECT time_bucket(INTERVAL '1 hour', device_time) AS bucket,
         checkpoint_id,
         count(*) AS visits,
         min(device_time) AS first_at,
         max(device_time) AS last_at
  FROM check_ins
  WHERE checkpoint_id IS NOT NULL
  GROUP BY 1, 2
  WITH NO DATA;
