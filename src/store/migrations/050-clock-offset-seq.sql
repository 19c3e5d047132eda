-- Clock periods (PROTOCOL.md §6, queries/clock.ts): a check-in is timed with the
-- offset of the first time sync its device acknowledged after recording it, found
-- by the ack's seq. Earlier measurements get the seq of the ack they came from
-- (command_acks, by command id). measured_at: stage A reads only the measurements
-- of the last days before a span.
ALTER TABLE clock_offsets ADD COLUMN seq bigint;
UPDATE clock_offsets o SET seq = a.seq
FROM command_acks a
WHERE a.device_id = o.device_id AND a.command_id = o.command_id AND o.seq IS NULL;
CREATE INDEX clock_offsets_measured_idx ON clock_offsets (measured_at);
