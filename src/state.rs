//! The SQLite state store: identities and their groups, interned key strings,
//! imported revisions, the token of the database it belongs to and its
//! generation (renewed at each commit; the database records it with each
//! import, see `pipeline::guard`). State moves forward in one transaction
//! per import, committed only after MySQL holds that import's rows. A new
//! state store lives in memory until its import starts loading.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::duplicates::DuplicateKeys;
use crate::identity::{Ident, Identities};
use crate::intern::Interner;

const STATE_VERSION: &str = "1";

/// Interned strings (event and property names) with dense ids from 1.
#[derive(Default)]
pub struct KeyTable {
    strings: Interner,
    /// Per key: used since loaded (so its `keys` row is written).
    touched: Vec<bool>,
}

impl KeyTable {
    /// The `keys.id` of `s`, assigning the next one when new.
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(i) = self.strings.get(s) {
            self.touched[i as usize] = true;
            return i + 1;
        }
        self.touched.push(true);
        self.strings.push(s) + 1
    }

    /// `(id, string)` of every key used since loaded.
    pub fn touched(&self) -> impl Iterator<Item = (u32, &str)> {
        self.strings
            .since(0)
            .zip(&self.touched)
            .enumerate()
            .filter(|(_, (_, &t))| t)
            .map(|(i, (s, _))| (i as u32 + 1, s))
    }

    fn untouch(&mut self) {
        self.touched.iter_mut().for_each(|t| *t = false);
    }

    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// `(id, string)` of every key from index `from` (0-based) on.
    pub fn since(&self, from: usize) -> impl Iterator<Item = (u32, &str)> {
        self.strings
            .since(from)
            .enumerate()
            .map(move |(i, s)| ((from + i + 1) as u32, s))
    }
}

/// Everything the store holds, loaded in memory for one import.
pub struct Snapshot {
    pub identities: Identities,
    /// Per identity: named in a stored record (so it has a `users` row).
    pub stored: Vec<bool>,
    /// Per identity: its root and stored flag when loaded, to save only what
    /// changed.
    pub saved_roots: Vec<Ident>,
    pub saved_stored: Vec<bool>,
    pub keys: KeyTable,
    pub saved_keys: usize,
    /// Duplicate keys of events (Mixpanel's `$insert_id`), read per day as
    /// the import needs them.
    pub duplicates: DuplicateKeys,
}

pub struct StateStore {
    conn: Connection,
    path: PathBuf,
    /// False for a state store not created yet: it lives in memory until
    /// [`StateStore::persist`], so that a run that fails before loading
    /// anything leaves no file behind.
    on_disk: bool,
}

/// Opens `path` with kmdb's settings.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| failed("opening", path, e))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .map_err(|e| failed("initialising", path, e))?;
    Ok(conn)
}

/// `e`, naming the state file and what was being done with it; SQLite's
/// words for a full disk (`database or disk is full`, or a failed write
/// of its `-shm` file) get a plainer hint.
fn failed(what: &str, path: &Path, e: rusqlite::Error) -> anyhow::Error {
    use rusqlite::ErrorCode::{DiskFull, SystemIoFailure};
    let full = matches!(e.sqlite_error_code(), Some(DiskFull | SystemIoFailure));
    let hint = if full {
        " (is its disk full? free some space, then run this again)"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!("{what} state store {}{hint}", path.display()))
}

const TABLES: &str = "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS identities(id INTEGER PRIMARY KEY, name TEXT NOT NULL,
         root INTEGER NOT NULL, stored INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS keys(id INTEGER PRIMARY KEY, string TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS revisions(revision INTEGER PRIMARY KEY,
         lines INTEGER NOT NULL, import_id INTEGER NOT NULL, imported_at TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS duplicate_keys(day INTEGER PRIMARY KEY, keys BLOB NOT NULL);
     CREATE TABLE IF NOT EXISTS duplicate_keys_pending(day INTEGER PRIMARY KEY,
         keys BLOB NOT NULL);";

impl StateStore {
    /// Opens the state file; one that does not exist yet is created in
    /// memory, and on disk by [`Self::persist`].
    pub fn open(path: &Path) -> Result<StateStore> {
        let on_disk = path.exists();
        let conn = if on_disk {
            connect(path)?
        } else {
            Connection::open_in_memory().map_err(|e| failed("creating", path, e))?
        };
        let store = StateStore {
            conn,
            path: path.to_owned(),
            on_disk,
        };
        store
            .conn
            .execute_batch(TABLES)
            .map_err(|e| store.error("initialising", e))?;
        match store.meta("version")? {
            None => store.set_meta("version", STATE_VERSION)?,
            Some(v) if v == STATE_VERSION => {}
            Some(v) => bail!(
                "state store {} has version {v}; this kmdb reads version {STATE_VERSION}",
                path.display()
            ),
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the state file exists (see [`Self::persist`]).
    pub fn on_disk(&self) -> bool {
        self.on_disk
    }

    /// Writes a state store created in memory to its file.
    pub fn persist(&mut self) -> Result<()> {
        if self.on_disk {
            return Ok(());
        }
        let Some(target) = self.path.to_str() else {
            bail!(
                "state store {}: the path is not valid UTF-8; pass another --state",
                self.path.display()
            );
        };
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .map_err(|e| self.error("creating", e))?;
        self.conn = connect(&self.path)?;
        self.on_disk = true;
        Ok(())
    }

    /// `e`, naming the file and what was being done.
    fn error(&self, what: &str, e: rusqlite::Error) -> anyhow::Error {
        failed(what, &self.path, e)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.error("reading", e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES(?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.error("writing", e))?;
        Ok(())
    }

    /// The generation of this state store: a random name given at creation
    /// and renewed at each commit, which the database records with the
    /// import it commits (see `kmdb_imports.state_generation`).
    pub fn generation(&self) -> Result<String> {
        if let Some(g) = self.meta("generation")? {
            return Ok(g);
        }
        let g = random_token();
        self.set_meta("generation", &g)?;
        Ok(g)
    }

    /// The `kmdb_imports` id of the last import this state store committed.
    pub fn last_import_id(&self) -> Result<Option<u64>> {
        Ok(self
            .meta("last_import_id")?
            .and_then(|v| v.parse::<u64>().ok()))
    }

    /// Revisions of an import that started loading but did not commit, as
    /// kmdb versions that kept this marker in the state store wrote it (the
    /// database keeps it now).
    pub fn in_flight(&self) -> Result<Option<Vec<u64>>> {
        Ok(self
            .meta("in_flight")?
            .map(|v| v.split(',').filter_map(|r| r.parse().ok()).collect()))
    }

    /// The filters digest recorded with [`Self::in_flight`].
    pub fn in_flight_filters(&self) -> Result<Option<String>> {
        self.meta("in_flight_filters")
    }

    /// Revisions already imported.
    pub fn imported_revisions(&self) -> Result<Vec<u64>> {
        let read = || -> rusqlite::Result<Vec<u64>> {
            let mut stmt = self
                .conn
                .prepare("SELECT revision FROM revisions ORDER BY revision")?;
            let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
            rows.map(|r| Ok(r? as u64)).collect()
        };
        read().map_err(|e| self.error("reading", e))
    }

    /// Identities (and so `users` ids) numbered so far.
    pub fn identity_count(&self) -> Result<u64> {
        self.count("identities")
    }

    /// Keys numbered so far.
    pub fn key_count(&self) -> Result<u64> {
        self.count("keys")
    }

    fn count(&self, table: &str) -> Result<u64> {
        self.conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.error("reading", e))
    }

    /// Loads identities, groups and keys into memory for an import, and
    /// deletes the duplicate keys an import that died had written aside
    /// (see [`crate::duplicates`]): they were never committed.
    pub fn load(&self) -> Result<Snapshot> {
        self.conn
            .execute("DELETE FROM duplicate_keys_pending", [])
            .map_err(|e| self.error("clearing", e))?;
        let mut identities = Identities::default();
        let mut stored = Vec::new();
        let mut saved_roots = Vec::new();
        let mut keys = KeyTable::default();
        let mut read = || -> rusqlite::Result<Option<String>> {
            let mut stmt = self
                .conn
                .prepare("SELECT id, name, root, stored FROM identities ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let name: String = row.get(1)?;
                let root: i64 = row.get(2)?;
                if id as usize != identities.len() || root > id {
                    return Ok(Some(format!("identity {id}")));
                }
                identities.restore(id as Ident, &name, root as Ident);
                stored.push(row.get::<_, i64>(3)? != 0);
                saved_roots.push(root as Ident);
            }
            let mut stmt = self
                .conn
                .prepare("SELECT id, string FROM keys ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let s: String = row.get(1)?;
                if keys.id(&s) as i64 != id {
                    return Ok(Some(format!("key {id}")));
                }
            }
            Ok(None)
        };
        if let Some(what) = read().map_err(|e| self.error("reading", e))? {
            bail!("state store {} is damaged ({what})", self.path.display());
        }
        keys.untouch();
        let saved_keys = keys.len();
        Ok(Snapshot {
            identities,
            saved_stored: stored.clone(),
            stored,
            saved_roots,
            keys,
            saved_keys,
            duplicates: DuplicateKeys::new(Some(self.path.clone())),
        })
    }

    /// Saves what an import changed, marks its revisions imported and takes
    /// the generation `generation`, in one transaction.
    pub fn commit(
        &mut self,
        snap: &mut Snapshot,
        revisions: &[(u64, u64)],
        import_id: u64,
        generation: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let mut write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let roots = snap.identities.roots();
                let mut put = tx.prepare(
                    "INSERT INTO identities(id, name, root, stored) VALUES(?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET root = excluded.root, stored = excluded.stored",
                )?;
                let before = snap.saved_roots.len();
                for (i, &root) in roots.iter().enumerate() {
                    let stored = snap.stored.get(i).copied().unwrap_or(false);
                    let changed = i >= before
                        || snap.saved_roots[i] != root
                        || snap.saved_stored[i] != stored;
                    if changed {
                        put.execute(params![
                            i as i64,
                            snap.identities.name(i as Ident),
                            root as i64,
                            stored as i64
                        ])?;
                    }
                }
                let mut put = tx.prepare("INSERT INTO keys(id, string) VALUES(?1, ?2)")?;
                for (id, s) in snap.keys.since(snap.saved_keys) {
                    put.execute(params![id as i64, s])?;
                }
                let mut put = tx.prepare(
                    "INSERT OR REPLACE INTO revisions(revision, lines, import_id, imported_at)
                     VALUES(?1, ?2, ?3, datetime('now'))",
                )?;
                for &(rev, lines) in revisions {
                    put.execute(params![rev as i64, lines as i64, import_id as i64])?;
                }
                // The days written aside during the import, then those still
                // in memory (whose keys include those written aside).
                tx.execute_batch(
                    "INSERT OR REPLACE INTO duplicate_keys(day, keys)
                         SELECT day, keys FROM duplicate_keys_pending;
                     DELETE FROM duplicate_keys_pending;",
                )?;
                let mut put =
                    tx.prepare("INSERT OR REPLACE INTO duplicate_keys(day, keys) VALUES(?1, ?2)")?;
                snap.duplicates
                    .for_each_changed_day(|day, keys| put.execute(params![day, keys]).map(drop))?;
                tx.execute(
                    "DELETE FROM meta WHERE key IN ('in_flight', 'in_flight_filters')",
                    [],
                )?;
                let mut put = tx.prepare(
                    "INSERT INTO meta(key, value) VALUES(?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?;
                put.execute(params!["last_import_id", import_id.to_string()])?;
                put.execute(params!["generation", generation])?;
            }
            tx.commit()
        };
        write(&mut self.conn).map_err(|e| failed("committing", &path, e))
    }

    /// Forgets everything but the database token, and takes a new
    /// generation (`kmdb flush`).
    pub fn clear(&self) -> Result<()> {
        self.conn
            .execute_batch(&format!(
                "BEGIN;
                 DELETE FROM identities; DELETE FROM keys; DELETE FROM revisions;
                 DELETE FROM duplicate_keys; DELETE FROM duplicate_keys_pending;
                 DELETE FROM meta WHERE key IN ('in_flight', 'in_flight_filters', 'last_import_id');
                 INSERT OR REPLACE INTO meta(key, value) VALUES('generation', '{}');
                 COMMIT;",
                random_token()
            ))
            .map_err(|e| self.error("emptying", e))
    }
}

/// A fresh random name (32 hex digits): database tokens, state store
/// generations.
pub fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The state file of a database when `--state` is not given:
/// `kmdb-state-HOST-PORT-DATABASE.sqlite`, in the current directory. A
/// character other than a letter, a digit, `.`, `_` or `-` becomes `_`, and
/// then a digest of the exact names is added, so that two databases never
/// share a file.
pub fn default_file_name(host: &str, port: u16, database: &str) -> String {
    let raw = format!("{host}-{port}-{database}");
    let clean: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(180)
        .collect();
    if clean == raw {
        return format!("kmdb-state-{clean}.sqlite");
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in raw.as_bytes() {
        hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("kmdb-state-{clean}-{:08x}.sqlite", hash as u32)
}

/// The state file's default name before it followed the database.
pub const FORMER_DEFAULT: &str = "kmdb-state.sqlite";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_names_follow_the_database() {
        assert_eq!(
            default_file_name("127.0.0.1", 3306, "km"),
            "kmdb-state-127.0.0.1-3306-km.sqlite"
        );
        let odd = default_file_name("db.example.com", 3306, "a/b c");
        assert!(
            odd.starts_with("kmdb-state-db.example.com-3306-a_b_c-"),
            "{odd}"
        );
        assert_ne!(odd, default_file_name("db.example.com", 3306, "a_b/c"));
        assert!(!default_file_name("h", 1, "../x").contains('/'));
    }

    #[test]
    fn a_new_state_store_is_written_only_when_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("st.sqlite");
        let mut store = StateStore::open(&path).unwrap();
        store.set_meta("database_token", "t").unwrap();
        let generation = store.generation().unwrap();
        assert!(!path.exists());
        store.persist().unwrap();
        assert!(path.exists());
        drop(store);
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.meta("database_token").unwrap().as_deref(), Some("t"));
        assert_eq!(store.generation().unwrap(), generation);
    }

    #[test]
    fn every_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("st.sqlite");
        let mut store = StateStore::open(&path).unwrap();
        store.persist().unwrap();
        // A database that cannot grow: SQLite says "database or disk is full".
        let pages: i64 = store
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        store
            .conn
            .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
        let long = "x".repeat(1 << 16);
        let err = format!("{:#}", store.set_meta("big", &long).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("full"), "{err}");
        let mut snap = store.load().unwrap();
        snap.keys.id(&long);
        let err = format!("{:#}", store.commit(&mut snap, &[], 1, "g").unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
