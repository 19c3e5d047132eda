-- Coverage reports (issue 6): one row per revision of a grid-day. A revision
-- is stored only when the result changed materially (rules/revisions.ts), so
-- re-runs on the same data add nothing; `changes` says what the revision changed.
CREATE TABLE coverage_reports (
  grid_id       text NOT NULL,
  local_date    date NOT NULL,
  revision      integer NOT NULL CHECK (revision > 0),
  plan_version  integer NOT NULL,
  watermark     timestamptz,           -- ingest watermark the report was computed at
  evaluated_at  timestamptz NOT NULL,
  coverage_pct  double precision,
  met           integer NOT NULL,
  missed        integer NOT NULL,
  pending       integer NOT NULL,
  -- json, not jsonb: the text is kept as written, so a stored result compares
  -- equal to a fresh one key for key (rules/revisions.ts diffs serialised figures)
  result        json NOT NULL,
  changes       json NOT NULL DEFAULT '[]',
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (grid_id, local_date, revision)
);
CREATE INDEX coverage_reports_date_idx ON coverage_reports (local_date, grid_id);
