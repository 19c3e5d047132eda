-- @when timescaledb
-- Hypertables (TimescaleDB's Apache-licensed core: works embedded and on a server).
SELECT create_hypertable('check_ins', by_range('device_time', INTERVAL '7 days'));
SELECT create_hypertable('telemetry', by_range('device_time', INTERVAL '7 days'));
SELECT create_hypertable('device_status', by_range('device_time', INTERVAL '7 days'));
SELECT create_hypertable('alarms', by_range('device_time', INTERVAL '30 days'));
SELECT create_hypertable('device_presence', by_range('received_at', INTERVAL '7 days'));
