-- A digest of the material content of each report (rules/revisions.ts
-- materialDigest): a re-run recognises an unchanged grid-day without reading
-- its result back. NULL on rows written before it (those are compared in full).
ALTER TABLE coverage_reports ADD COLUMN digest text;
