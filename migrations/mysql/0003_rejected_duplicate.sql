-- Mixpanel exports (SPEC §10): events whose `$insert_id`, identity, name and
-- time repeat an earlier event's are rejected as `duplicate`, counted per
-- import like every other reason. Imports recorded before this migration
-- had none. (A plain ADD COLUMN: MySQL 8 has no IF NOT EXISTS here, and the
-- migration is recorded once applied.)
ALTER TABLE kmdb_imports
  ADD COLUMN rejected_duplicate BIGINT NOT NULL DEFAULT 0 AFTER rejected_bad_timestamp;
