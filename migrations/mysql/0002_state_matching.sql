-- Which state store the database matches, the import in flight, and who
-- holds the import lock (README "Reliability").

-- The state store generation that committed each import (NULL before the
-- state store committed it, and on imports older than this migration), and
-- where that state store was.
ALTER TABLE kmdb_imports
  ADD COLUMN state_generation VARCHAR(64) NULL,
  ADD COLUMN state_store VARCHAR(1024) NULL,
  ADD COLUMN host VARCHAR(255) NULL;
UPDATE kmdb_imports SET state_generation = 'legacy';

-- The import that started loading and has not committed (at most one row):
-- the state store generation it started from and the one it commits, its
-- revisions, the users and keys numbered before it, its filters, its
-- kmdb_imports row once recorded, and who ran it.
CREATE TABLE IF NOT EXISTS kmdb_loading (
  id TINYINT NOT NULL PRIMARY KEY,
  state_generation VARCHAR(64) NOT NULL,
  next_generation VARCHAR(64) NOT NULL,
  revisions MEDIUMTEXT NOT NULL,
  users BIGINT NOT NULL,
  `keys` BIGINT NOT NULL,
  filters VARCHAR(64) NOT NULL,
  import_id BIGINT NULL,
  command VARCHAR(64) NOT NULL,
  host VARCHAR(255) NOT NULL,
  pid BIGINT NOT NULL,
  state_store VARCHAR(1024) NOT NULL,
  started_at DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The run holding the import lock (a named lock of the server), as the
-- runs it turns away name it.
CREATE TABLE IF NOT EXISTS kmdb_lock_holder (
  id TINYINT NOT NULL PRIMARY KEY,
  connection_id BIGINT NOT NULL,
  command VARCHAR(64) NOT NULL,
  host VARCHAR(255) NOT NULL,
  pid BIGINT NOT NULL,
  state_store VARCHAR(1024) NOT NULL,
  since DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
