-- @when no-tsl
-- Without TimescaleDB's continuous aggregates (plain PostgreSQL, embedded PGlite):
-- the same relation name, same answers. date_bin with the epoch origin buckets
-- exactly as time_bucket does for whole hours.
CREATE VIEW checkpoint_visits_hourly AS
  SELECT date_bin(INTERVAL '1 hour', device_time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
         checkpoint_id,
         count(*) AS visits,
         min(device_time) AS first_at,
         max(device_time) AS last_at
  FROM check_ins
  WHERE checkpoint_id IS NOT NULL
  GROUP BY 1, 2;
