-- Patrol plans (issue 6): versioned per grid. A new `gridpatrol plan set`
-- appends a version; the version in force on a local date is the latest one
-- whose effective_from is on or before it (NULL = always), as rules/plans
-- `planInForce` decides. The plan itself is the validated JSON of planSchema.
CREATE TABLE patrol_plans (
  grid_id        text NOT NULL REFERENCES grids (id),
  version        integer NOT NULL CHECK (version > 0),
  effective_from date,
  plan           jsonb NOT NULL,
  created_by     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (grid_id, version)
);

-- Rules configuration kept in the database so supervisors can change it
-- without a restart: 'calendar' (work calendar), 'categories' (case
-- categories → department and stage deadlines). Values are validated by the
-- rules' zod schemas on read and write.
CREATE TABLE rules_config (
  key        text PRIMARY KEY CHECK (key IN ('calendar', 'categories')),
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
