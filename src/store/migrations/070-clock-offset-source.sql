-- Clock steps found by the server (PROTOCOL.md §6, src/commands/clock-steps.ts).
-- A row with source 'step' is no measurement: when a device's envelope proves its
-- clock jumped forward since its latest time sync, the server records that sync's
-- offset again with the seq of the device's last envelope still consistent with
-- it, so the rows recorded before the jump keep that offset (the first row with
-- seq ≥ theirs times them: queries/clock.ts) once the next sync measures the new
-- one. command_id is NULL on such rows. NULL: a time-sync measurement (every
-- earlier row).
ALTER TABLE clock_offsets ADD COLUMN source text CHECK (source IN ('step'));
