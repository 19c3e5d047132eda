-- Several tags per checkpoint: a post with a tag on each side, a damaged tag
-- replaced while devices still carry the old id. tag_id is the primary key, so
-- a tag belongs to one checkpoint at most across the registry. The ingest
-- resolves a check-in's tag through this table (queries/reference.ts byTags).
-- checkpoints.tag_id stays, kept by the store equal to the checkpoint's oldest
-- tag (NULL for a GPS-only checkpoint with no tag): older readers still see one.
-- Backfilled from checkpoints.tag_id, added when the checkpoint was created.
CREATE TABLE checkpoint_tags (
  tag_id        text PRIMARY KEY,
  checkpoint_id text NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
  added_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoint_tags_checkpoint_idx ON checkpoint_tags (checkpoint_id, added_at);
INSERT INTO checkpoint_tags (tag_id, checkpoint_id, added_at)
SELECT tag_id, id, created_at FROM checkpoints WHERE tag_id IS NOT NULL;
