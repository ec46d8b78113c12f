-- Mixpanel exports (SPEC §10): events whose `$insert_id`, identity, name and
-- time repeat an earlier event's are rejected as `duplicate`, counted per
-- import like every other reason, as migrations/mysql/0003. Imports recorded
-- before this migration had none.
ALTER TABLE kmdb_imports
  ADD COLUMN IF NOT EXISTS rejected_duplicate bigint NOT NULL DEFAULT 0;
