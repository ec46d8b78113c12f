-- Which state store the database matches, the import in flight, and who
-- holds the import lock (README "Reliability"), as migrations/mysql/0002.

-- The state store generation that committed each import (NULL before the
-- state store committed it, and on imports older than this migration), and
-- where that state store was.
ALTER TABLE kmdb_imports
  ADD COLUMN IF NOT EXISTS state_generation varchar(64) NULL,
  ADD COLUMN IF NOT EXISTS state_store varchar(1024) NULL,
  ADD COLUMN IF NOT EXISTS host varchar(255) NULL;
UPDATE kmdb_imports SET state_generation = 'legacy';

-- The import that started loading and has not committed (at most one row).
CREATE TABLE IF NOT EXISTS kmdb_loading (
  id smallint NOT NULL PRIMARY KEY,
  state_generation varchar(64) NOT NULL,
  next_generation varchar(64) NOT NULL,
  revisions text NOT NULL,
  users bigint NOT NULL,
  keys bigint NOT NULL,
  filters varchar(64) NOT NULL,
  import_id bigint NULL,
  command varchar(64) NOT NULL,
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  state_store varchar(1024) NOT NULL,
  started_at timestamp NOT NULL
);

-- The run holding the import lock (an advisory lock of the server), as the
-- runs it turns away name it; `backend_pid` is the holder's session.
CREATE TABLE IF NOT EXISTS kmdb_lock_holder (
  id smallint NOT NULL PRIMARY KEY,
  backend_pid bigint NOT NULL,
  command varchar(64) NOT NULL,
  host varchar(255) NOT NULL,
  pid bigint NOT NULL,
  state_store varchar(1024) NOT NULL,
  since timestamp NOT NULL
);
