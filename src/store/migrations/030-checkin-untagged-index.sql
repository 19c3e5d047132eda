-- Coverage stage A (store/queries/coverage.ts) reads a batch's check-ins by
-- checkpoint (check_ins_checkpoint_idx) and by device grid (check_ins_grid_idx)
-- instead of scanning the whole day per batch. Rows the ingest could not
-- resolve (checkpoint_id NULL) are matched by their raw tag: this index finds them.
CREATE INDEX check_ins_untagged_idx ON check_ins (tag_id, device_time) WHERE checkpoint_id IS NULL;
