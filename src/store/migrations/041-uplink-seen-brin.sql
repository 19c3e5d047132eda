-- uplink_seen.received_at: a BRIN instead of a btree. The btree cost the
-- ingest 3.5–5 µs of database CPU per stored row (of ≈ 14; BENCHMARKS.md,
-- Ingest); a BRIN costs nothing on insert into the table's last, unsummarised
-- block range. Its readers are range reads bounded below, which a BRIN serves
-- because uplink_seen is appended in receipt order: coverage.touched
-- (received_at in (since, until]) and the retention prune (received_at < x).
-- The ingest watermark no longer reads uplink_seen: it is max(device_state.
-- last_seen_at), written by the same statement as the claims (queries/coverage.ts).
-- autosummarize: a completed block range is summarised by autovacuum at once
-- (PGlite has no autovacuum: coverage.touched summarises new ranges itself).
DROP INDEX IF EXISTS uplink_seen_received_idx;
CREATE INDEX uplink_seen_received_brin ON uplink_seen USING brin (received_at) WITH (autosummarize = on);
