-- Core schema: reference tables, time-series tables (plain here; 002 turns them
-- into hypertables when TimescaleDB is present), dedup, rejects, commands.
-- Later migrations (plans, cases, coverage) are added as NNN-name.sql by their owners.

-- Reference data ---------------------------------------------------------------

CREATE TABLE grids (
  id            text PRIMARY KEY,
  level         text NOT NULL CHECK (level IN ('district', 'street', 'community')),
  parent_id     text REFERENCES grids (id),
  name          text NOT NULL,
  -- e.g. the 15-digit unit-grid code: county admin code + street + community + sequence
  standard_code text UNIQUE CHECK (standard_code ~ '^[0-9]{15}$'),
  boundary      jsonb,  -- GeoJSON Polygon or MultiPolygon
  time_zone     text NOT NULL DEFAULT 'Asia/Shanghai',
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((level = 'district') = (parent_id IS NULL))
);
CREATE INDEX grids_parent_idx ON grids (parent_id);

CREATE TABLE checkpoints (
  id         text PRIMARY KEY,
  grid_id    text NOT NULL REFERENCES grids (id),
  tag_id     text UNIQUE,  -- NULL for a pure GPS-geofence checkpoint
  name       text NOT NULL,
  lat        double precision CHECK (lat BETWEEN -90 AND 90),
  lon        double precision CHECK (lon BETWEEN -180 AND 180),
  radius_m   double precision NOT NULL DEFAULT 30 CHECK (radius_m > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_grid_idx ON checkpoints (grid_id);

-- Devices and service accounts (kind 'service': API/ingest clients, no grid).
CREATE TABLE devices (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
  kind        text NOT NULL CHECK (kind IN ('patrol', 'sensor', 'service')),
  vendor      text,
  grid_id     text REFERENCES grids (id),
  -- scrypt$N$r$p$saltB64$hashB64 (broker/ hashSecret); the secret itself is never stored
  secret_hash text NOT NULL CHECK (secret_hash LIKE 'scrypt$%'),
  disabled    boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  rotated_at  timestamptz
);
CREATE INDEX devices_grid_idx ON devices (grid_id);

-- Dedup: the exact authority for "(device, seq) seen once". A plain table so its
-- primary key needs no time column (TimescaleDB's unique indexes must include
-- the partitioning column). device_time is kept to tell a re-send (same time)
-- from a conflict (same seq, other time).
CREATE TABLE uplink_seen (
  device_id   text NOT NULL,
  seq         bigint NOT NULL CHECK (seq > 0),
  device_time timestamptz NOT NULL,
  kind        text NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX uplink_seen_received_idx ON uplink_seen (received_at);

-- Time series --------------------------------------------------------------------
-- Every row: device time, server receive time, seq and clock flags. Partitioned
-- (when TimescaleDB is present) by device_time: coverage and the hourly
-- aggregate are about when the patrol happened.

CREATE TABLE check_ins (
  device_id     text NOT NULL,
  seq           bigint NOT NULL,
  device_time   timestamptz NOT NULL,
  received_at   timestamptz NOT NULL,
  grid_id       text,          -- the device's assigned grid at ingest time
  checkpoint_id text,          -- NULL = unknown tag (stored and flagged, never dropped)
  tag_id        text NOT NULL,
  method        text NOT NULL,
  lat           double precision,
  lon           double precision,
  accuracy_m    real,
  badge_id      text,
  battery_pct   smallint,
  clock_future  boolean NOT NULL DEFAULT false,
  clock_ancient boolean NOT NULL DEFAULT false,
  unknown_tag   boolean NOT NULL DEFAULT false,
  UNIQUE (device_id, seq, device_time)
);
CREATE INDEX check_ins_checkpoint_idx ON check_ins (checkpoint_id, device_time);
CREATE INDEX check_ins_grid_idx ON check_ins (grid_id, device_time);

CREATE TABLE telemetry (
  device_id     text NOT NULL,
  seq           bigint NOT NULL,
  idx           smallint NOT NULL,  -- position of the reading in its envelope
  device_time   timestamptz NOT NULL,  -- the reading's own time (envelope time when absent)
  received_at   timestamptz NOT NULL,
  metric        text NOT NULL,
  value         double precision NOT NULL,
  unit          text,
  clock_future  boolean NOT NULL DEFAULT false,
  clock_ancient boolean NOT NULL DEFAULT false,
  UNIQUE (device_id, seq, idx, device_time)
);
CREATE INDEX telemetry_metric_idx ON telemetry (device_id, metric, device_time);

CREATE TABLE device_status (
  device_id        text NOT NULL,
  seq              bigint NOT NULL,
  device_time      timestamptz NOT NULL,
  received_at      timestamptz NOT NULL,
  battery_pct      smallint,
  battery_mv       real,
  signal_dbm       smallint,
  firmware_version text,
  uptime_s         bigint,
  buffered_count   integer,
  boot_count       integer,
  lat              double precision,
  lon              double precision,
  clock_future     boolean NOT NULL DEFAULT false,
  clock_ancient    boolean NOT NULL DEFAULT false,
  UNIQUE (device_id, seq, device_time)
);

CREATE TABLE alarms (
  device_id     text NOT NULL,
  seq           bigint NOT NULL,
  device_time   timestamptz NOT NULL,
  received_at   timestamptz NOT NULL,
  kind          text NOT NULL,
  lat           double precision,
  lon           double precision,
  badge_id      text,
  detail        text,
  clock_future  boolean NOT NULL DEFAULT false,
  clock_ancient boolean NOT NULL DEFAULT false,
  UNIQUE (device_id, seq, device_time)
);
CREATE INDEX alarms_received_idx ON alarms (received_at);

-- Presence events from the broker (connect / disconnect / last will): server time only.
CREATE TABLE device_presence (
  device_id   text NOT NULL,
  received_at timestamptz NOT NULL,
  online      boolean NOT NULL,
  reason      text
);
CREATE INDEX device_presence_device_idx ON device_presence (device_id, received_at);

-- Latest known state per device, upserted by the ingest (what the offline and
-- battery rules read without scanning time series).
CREATE TABLE device_state (
  device_id       text PRIMARY KEY,
  online          boolean,
  presence_at     timestamptz,
  last_seen_at    timestamptz,  -- server time of the last accepted uplink
  last_seq        bigint,
  battery_pct     smallint,
  status_at       timestamptz
);

-- Commands, acks, clocks ---------------------------------------------------------------

CREATE TABLE commands (
  command_id   text PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 64),
  device_id    text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('time_sync', 'config', 'ping')),
  body         jsonb NOT NULL,
  issued_at    timestamptz NOT NULL,
  expires_at   timestamptz,          -- NULL = never
  status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'acked', 'expired')),
  sent_at      timestamptz,
  acked_at     timestamptz,
  ack_status   text,
  ack_detail   text
);
CREATE INDEX commands_pending_idx ON commands (device_id, issued_at) WHERE status IN ('queued', 'sent');

CREATE TABLE command_acks (
  device_id               text NOT NULL,
  seq                     bigint NOT NULL,
  device_time             timestamptz NOT NULL,
  received_at             timestamptz NOT NULL,
  command_id              text NOT NULL,
  status                  text NOT NULL,
  detail                  text,
  received_device_time    timestamptz,
  nonce_hex               text,
  clock_future            boolean NOT NULL DEFAULT false,
  clock_ancient           boolean NOT NULL DEFAULT false,
  PRIMARY KEY (device_id, seq)
);

-- NTP-style estimates from time-sync round trips (see downlink.proto TimeSync).
CREATE TABLE clock_offsets (
  device_id   text NOT NULL,
  measured_at timestamptz NOT NULL,  -- t3, server receipt of the ack
  offset_ms   double precision NOT NULL,  -- device clock minus server clock
  delay_ms    double precision NOT NULL,  -- round trip minus device processing
  command_id  text,
  PRIMARY KEY (device_id, measured_at)
);

-- Rejects: whatever could not be accepted, raw and byte for byte.
CREATE TABLE ingest_rejects (
  id          bigserial PRIMARY KEY,
  received_at timestamptz NOT NULL,
  topic       text NOT NULL,
  device_id   text,
  payload     bytea NOT NULL,
  code        text NOT NULL,
  message     text NOT NULL,
  field       text
);
CREATE INDEX ingest_rejects_received_idx ON ingest_rejects (received_at);
CREATE INDEX ingest_rejects_device_idx ON ingest_rejects (device_id, received_at);
