-- @when plain
-- Plain tables have no hypertable time index: add the ones range queries need.
CREATE INDEX check_ins_time_idx ON check_ins (device_time);
CREATE INDEX telemetry_time_idx ON telemetry (device_time);
CREATE INDEX device_presence_time_idx ON device_presence (received_at);
