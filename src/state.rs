//! The SQLite state store: identities and their groups, interned key strings,
//! imported revisions, and the token of the database it belongs to. State
//! moves forward in one transaction per import, committed only after MySQL
//! holds that import's rows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
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
}

impl StateStore {
    /// Opens (creating if absent) the state file.
    pub fn open(path: &Path) -> Result<StateStore> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening state store {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS identities(id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 root INTEGER NOT NULL, stored INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS keys(id INTEGER PRIMARY KEY, string TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS revisions(revision INTEGER PRIMARY KEY,
                 lines INTEGER NOT NULL, import_id INTEGER NOT NULL, imported_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS duplicate_keys(day INTEGER PRIMARY KEY, keys BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS duplicate_keys_pending(day INTEGER PRIMARY KEY,
                 keys BLOB NOT NULL);",
        )
        .with_context(|| format!("initialising state store {}", path.display()))?;
        let store = StateStore {
            conn,
            path: path.to_owned(),
        };
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

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Revisions of an import that started loading but did not commit.
    pub fn in_flight(&self) -> Result<Option<Vec<u64>>> {
        Ok(self
            .meta("in_flight")?
            .map(|v| v.split(',').filter_map(|r| r.parse().ok()).collect()))
    }

    /// The filters digest recorded with [`Self::in_flight`].
    pub fn in_flight_filters(&self) -> Result<Option<String>> {
        self.meta("in_flight_filters")
    }

    /// Records, durably, the revisions an import is about to load and the
    /// digest of the filters it loads them with.
    pub fn set_in_flight(&self, revisions: &[u64], filters: &str) -> Result<()> {
        let list: Vec<String> = revisions.iter().map(u64::to_string).collect();
        self.set_meta("in_flight_filters", filters)?;
        self.set_meta("in_flight", &list.join(","))
    }

    /// Revisions already imported.
    pub fn imported_revisions(&self) -> Result<Vec<u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT revision FROM revisions ORDER BY revision")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        rows.map(|r| Ok(r? as u64)).collect()
    }

    pub fn identity_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM identities", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Loads identities, groups and keys into memory for an import, and
    /// deletes the duplicate keys an import that died had written aside
    /// (see [`crate::duplicates`]): they were never committed.
    pub fn load(&self) -> Result<Snapshot> {
        self.conn
            .execute("DELETE FROM duplicate_keys_pending", [])
            .with_context(|| format!("clearing state store {}", self.path.display()))?;
        let mut identities = Identities::default();
        let mut stored = Vec::new();
        let mut saved_roots = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, root, stored FROM identities ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            let root: i64 = row.get(2)?;
            if id as usize != identities.len() || root > id {
                bail!(
                    "state store {} is damaged (identity {id})",
                    self.path.display()
                );
            }
            identities.restore(id as Ident, &name, root as Ident);
            stored.push(row.get::<_, i64>(3)? != 0);
            saved_roots.push(root as Ident);
        }
        let mut keys = KeyTable::default();
        let mut stmt = self
            .conn
            .prepare("SELECT id, string FROM keys ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let s: String = row.get(1)?;
            if keys.id(&s) as i64 != id {
                bail!("state store {} is damaged (key {id})", self.path.display());
            }
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

    /// Saves what an import changed and marks its revisions imported, in one
    /// transaction.
    pub fn commit(
        &mut self,
        snap: &mut Snapshot,
        revisions: &[(u64, u64)],
        import_id: u64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let roots = snap.identities.roots();
            let mut put = tx.prepare(
                "INSERT INTO identities(id, name, root, stored) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET root = excluded.root, stored = excluded.stored",
            )?;
            let before = snap.saved_roots.len();
            for (i, &root) in roots.iter().enumerate() {
                let stored = snap.stored.get(i).copied().unwrap_or(false);
                let changed =
                    i >= before || snap.saved_roots[i] != root || snap.saved_stored[i] != stored;
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
            // The days written aside during the import, then those still in
            // memory (whose keys include those written aside).
            tx.execute_batch(
                "INSERT OR REPLACE INTO duplicate_keys(day, keys)
                     SELECT day, keys FROM duplicate_keys_pending;
                 DELETE FROM duplicate_keys_pending;",
            )?;
            let mut put =
                tx.prepare("INSERT OR REPLACE INTO duplicate_keys(day, keys) VALUES(?1, ?2)")?;
            snap.duplicates.for_each_changed_day(|day, keys| {
                put.execute(params![day, keys])?;
                Ok(())
            })?;
            tx.execute(
                "DELETE FROM meta WHERE key IN ('in_flight', 'in_flight_filters')",
                [],
            )?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES('last_import_id', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [import_id.to_string()],
            )?;
        }
        tx.commit()
            .with_context(|| format!("committing state store {}", self.path.display()))?;
        Ok(())
    }

    /// Forgets everything but the database token (`kmdb flush`).
    pub fn clear(&self) -> Result<()> {
        self.conn.execute_batch(
            "BEGIN;
             DELETE FROM identities; DELETE FROM keys; DELETE FROM revisions;
             DELETE FROM duplicate_keys; DELETE FROM duplicate_keys_pending;
             DELETE FROM meta WHERE key IN ('in_flight', 'in_flight_filters', 'last_import_id');
             COMMIT;",
        )?;
        Ok(())
    }
}
