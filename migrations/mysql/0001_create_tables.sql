-- The tables of SPEC section 6, compatible with the km-db gem's.
-- {NAME} is the byte-exact, no-pad collation of the server:
-- utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8.

CREATE TABLE IF NOT EXISTS `keys` (
  id INT NOT NULL PRIMARY KEY,
  string VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL,
  UNIQUE KEY index_keys_on_string (string)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS users (
  id BIGINT NOT NULL PRIMARY KEY,
  name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL,
  alias_of BIGINT NULL,
  UNIQUE KEY index_users_on_name (name),
  KEY index_users_on_alias_of (alias_of)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS events (
  id BIGINT NOT NULL,
  t DATETIME NOT NULL,
  n INT NOT NULL,
  user_id BIGINT NOT NULL,
  PRIMARY KEY (t, id),
  KEY index_events_on_user_id_and_n_and_t (user_id, n, t),
  KEY index_events_on_n (n)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE COLUMNS (t) (PARTITION pLast VALUES LESS THAN (MAXVALUE));

CREATE TABLE IF NOT EXISTS properties (
  id BIGINT NOT NULL,
  t DATETIME NOT NULL,
  `key` INT NOT NULL,
  value VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NULL,
  user_id BIGINT NOT NULL,
  event_id BIGINT NULL,
  PRIMARY KEY (t, id),
  KEY index_properties_on_user_id_and_key_and_t (user_id, `key`, t),
  KEY index_properties_on_event_id (event_id),
  KEY index_properties_on_key (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE COLUMNS (t) (PARTITION pLast VALUES LESS THAN (MAXVALUE));

CREATE TABLE IF NOT EXISTS aliases (
  id BIGINT NOT NULL,
  t DATETIME NOT NULL,
  name1 VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL,
  name2 VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL,
  applied TINYINT NOT NULL,
  PRIMARY KEY (t, id),
  KEY index_aliases_on_name1 (name1),
  KEY index_aliases_on_name2 (name2)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE COLUMNS (t) (PARTITION pLast VALUES LESS THAN (MAXVALUE));

CREATE TABLE IF NOT EXISTS ignored_users (
  name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS whitelisted_events (
  name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS blacklisted_properties (
  name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {NAME} NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- kmdb's own bookkeeping: the database's identity token and every import's
-- accounting (SPEC section 7).
CREATE TABLE IF NOT EXISTS kmdb_meta (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS kmdb_imports (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  started_at DATETIME NOT NULL,
  finished_at DATETIME NOT NULL,
  source VARCHAR(1024) NOT NULL,
  revisions VARCHAR(255) NOT NULL,
  `lines` BIGINT NOT NULL,
  blank BIGINT NOT NULL,
  events BIGINT NOT NULL,
  property_sets BIGINT NOT NULL,
  aliases BIGINT NOT NULL,
  rejected_bad_timestamp BIGINT NOT NULL,
  rejected_empty BIGINT NOT NULL,
  rejected_ignored_user BIGINT NOT NULL,
  rejected_malformed BIGINT NOT NULL,
  rejected_no_identity BIGINT NOT NULL,
  rejected_not_whitelisted BIGINT NOT NULL,
  rejected_numeric_alias BIGINT NOT NULL,
  rejected_self_alias BIGINT NOT NULL,
  rejects_file VARCHAR(1024) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
