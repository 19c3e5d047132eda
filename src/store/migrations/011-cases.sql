-- Cases and their append-only audit trail (issue 6).
-- DESIGN: gaps raise cases deduplicated inside one transaction keyed by
-- (rule, grid, checkpoint, window): dedup_key is rules/cases/dedup-key.ts
-- `caseKey`, UNIQUE, and every raise is INSERT … ON CONFLICT DO NOTHING.
CREATE TABLE cases (
  id              bigserial PRIMARY KEY,
  dedup_key       text NOT NULL UNIQUE,
  rule            text NOT NULL,
  grid_id         text NOT NULL,
  subject         text,          -- checkpoint (patrol rules) or device/sensor (device rules)
  window_key      text,          -- plan window key, or episode start
  -- the grid-day whose coverage report raised it (patrol rules only): what a
  -- re-evaluation of that day may update or resolve
  report_date     date,
  category        text NOT NULL,
  department      text,
  priority        text NOT NULL CHECK (priority IN ('normal', 'urgent')),
  state           text NOT NULL CHECK (state IN ('reported', 'accepted', 'rejected', 'dispatched', 'handled', 'verified', 'closed', 'reopened')),
  title           text NOT NULL,
  detected_at     timestamptz NOT NULL,
  opened_at       timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  stage_due_at    timestamptz,   -- deadline of the stage the case waits in (NULL when terminal)
  closure_due_at  timestamptz NOT NULL,
  -- set when the rule stopped proposing the case (late data filled the gap,
  -- device back online); the case itself follows the workflow table
  cleared_at      timestamptz,
  evidence        jsonb NOT NULL DEFAULT '[]',
  detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX cases_grid_idx ON cases (grid_id, state);
CREATE INDEX cases_report_idx ON cases (grid_id, report_date) WHERE report_date IS NOT NULL;
CREATE INDEX cases_rule_open_idx ON cases (rule) WHERE cleared_at IS NULL;

-- One row per transition or note. `rule` is the workflow transition id
-- (rules/cases/workflow.ts TRANSITIONS), or 'raise' / 'update' / 'note' for
-- entries that do not change the state (from_state = to_state).
CREATE TABLE case_events (
  id         bigserial PRIMARY KEY,
  case_id    bigint NOT NULL REFERENCES cases (id),
  from_state text,
  to_state   text NOT NULL,
  rule       text NOT NULL,
  actor      text NOT NULL,
  role       text NOT NULL,
  note       text,
  at         timestamptz NOT NULL,
  detail     jsonb
);
CREATE INDEX case_events_case_idx ON case_events (case_id, id);

-- Append-only: the audit trail is evidence, so the database refuses edits.
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'case_events is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER case_events_no_update BEFORE UPDATE OR DELETE ON case_events
  FOR EACH ROW EXECUTE FUNCTION case_events_append_only();
