//! The duplicate keys of events (SPEC §10, Mixpanel's `$insert_id`): an
//! event whose key an earlier event had, in this import or an earlier one,
//! is a duplicate.
//!
//! A duplicate has the same `t` as its original, so keys are kept per day
//! of `t`: the state store holds one row per day, its keys as a sorted
//! array of 64-bit values (8 bytes a key), and an import reads only the
//! days its events fall on, when it first meets each. The keys this import
//! adds are written with the rest of its state, in its one transaction: a
//! killed import left none behind, so its re-run never takes its own events
//! for duplicates of themselves.
//!
//! Memory stays bounded whatever the size of the import: when the days in
//! memory hold more than [`MEMORY_BUDGET`] bytes of keys, those used least
//! recently are written (all their keys, merged) to the pending table of
//! the state store and dropped, to be read again from there if an event
//! falls on them again. Pending rows become the days' keys in the import's
//! final transaction; an import that dies leaves them behind, and the next
//! import deletes them before it starts. A Mixpanel day file holds the
//! events of its day, so the days in use are those of the last few files.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::dates::DAY_SECONDS;

/// Bytes of keys kept in memory before the days used least recently are
/// written to the state store (about 4 million keys this import added, or
/// 8 million read).
pub const MEMORY_BUDGET: usize = 64 << 20;

/// Memory a key takes: 8 bytes read (a sorted array), about 16 added (a
/// hash set, its control bytes and free slots).
const READ_BYTES: usize = 8;
const ADDED_BYTES: usize = 16;

/// The keys seen so far: those of earlier imports on the days this import
/// touched, and this import's own.
pub struct DuplicateKeys {
    days: HashMap<i64, DayKeys>,
    /// The state store the keys of earlier imports are read from (none:
    /// there are none, and nothing is written aside), and a connection to
    /// it once one is needed.
    store: Option<PathBuf>,
    conn: Option<Connection>,
    /// Days this import wrote to the pending table.
    pending: HashSet<i64>,
    added: u64,
    /// Bytes of keys in `days`, and the most allowed.
    bytes: usize,
    budget: usize,
    /// Counts lookups, to find the days used least recently.
    clock: u64,
}

/// The keys of one day.
#[derive(Default)]
struct DayKeys {
    /// Read from the state store (committed by earlier imports, or pending:
    /// written aside by this one), sorted.
    stored: Vec<u64>,
    /// Added by this import since.
    added: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    /// When it was last used (see `clock`).
    used: u64,
}

/// The keys are hashes already: they are their own hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl DuplicateKeys {
    /// Keys of earlier imports are read from the state store at `store`
    /// (its `duplicate_keys` tables).
    pub fn new(store: Option<PathBuf>) -> DuplicateKeys {
        DuplicateKeys::with_budget(store, MEMORY_BUDGET)
    }

    /// [`DuplicateKeys::new`] keeping about `budget` bytes of keys in memory
    /// at most.
    pub fn with_budget(store: Option<PathBuf>, budget: usize) -> DuplicateKeys {
        DuplicateKeys {
            days: HashMap::new(),
            store,
            conn: None,
            pending: HashSet::new(),
            added: 0,
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    /// Keeps about `budget` bytes of keys in memory at most.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// True when an earlier event had `key` (on the day of `t`, its time);
    /// else remembers it.
    pub fn seen_before(&mut self, t: i64, key: u64) -> Result<bool> {
        let day = t.div_euclid(DAY_SECONDS);
        if !self.days.contains_key(&day) {
            let stored = self.read_day(day)?;
            self.bytes += stored.len() * READ_BYTES;
            let keys = DayKeys {
                stored,
                ..DayKeys::default()
            };
            self.days.insert(day, keys);
        }
        self.clock += 1;
        let keys = self.days.get_mut(&day).expect("inserted above");
        keys.used = self.clock;
        let seen = keys.stored.binary_search(&key).is_ok() || !keys.added.insert(key);
        if !seen {
            self.added += 1;
            self.bytes += ADDED_BYTES;
        }
        if self.bytes > self.budget {
            self.spill(day)?;
        }
        Ok(seen)
    }

    /// Keys this import added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Days written to the pending table so far.
    pub fn spilled(&self) -> usize {
        self.pending.len()
    }

    /// A connection to the state store at `path`, opened once. What it
    /// writes (the pending table) need not be durable by itself: it counts
    /// only once the import's final transaction, on another connection,
    /// has committed after it, and that commit syncs the whole log.
    fn conn<'c>(conn: &'c mut Option<Connection>, path: &Path) -> Result<&'c Connection> {
        if conn.is_none() {
            let c = Connection::open(path)
                .with_context(|| format!("opening state store {}", path.display()))?;
            c.execute_batch("PRAGMA synchronous=OFF; PRAGMA busy_timeout=10000;")
                .with_context(|| format!("opening state store {}", path.display()))?;
            *conn = Some(c);
        }
        Ok(conn.as_ref().expect("opened above"))
    }

    /// The keys of `day` in the state store (those this import wrote aside,
    /// if it did), sorted.
    fn read_day(&mut self, day: i64) -> Result<Vec<u64>> {
        let Some(path) = &self.store else {
            return Ok(Vec::new());
        };
        let sql = if self.pending.contains(&day) {
            "SELECT keys FROM duplicate_keys_pending WHERE day = ?1"
        } else {
            "SELECT keys FROM duplicate_keys WHERE day = ?1"
        };
        let conn = Self::conn(&mut self.conn, path)?;
        let blob: Option<Vec<u8>> = conn
            .query_row(sql, [day], |r| r.get(0))
            .optional()
            .with_context(|| format!("reading state store {}", path.display()))?;
        match blob {
            None => Ok(Vec::new()),
            Some(blob) => decode(&blob).with_context(|| {
                format!(
                    "state store {} is damaged (duplicate keys of day {day})",
                    path.display()
                )
            }),
        }
    }

    /// Writes the days used least recently (never `current`) to the pending
    /// table and drops them, down to half the budget.
    fn spill(&mut self, current: i64) -> Result<()> {
        let Some(path) = self.store.clone() else {
            return Ok(()); // nowhere to write them: they stay
        };
        let mut order: Vec<(u64, i64)> = self
            .days
            .iter()
            .filter(|(&day, _)| day != current)
            .map(|(&day, k)| (k.used, day))
            .collect();
        order.sort_unstable();
        let mut out = Vec::new();
        for (_, day) in order {
            if self.bytes <= self.budget / 2 {
                break;
            }
            let keys = self.days.remove(&day).expect("listed above");
            self.bytes -= keys.bytes();
            if !keys.added.is_empty() {
                out.push((day, keys));
            }
        }
        let conn = Self::conn(&mut self.conn, &path)?;
        let write = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            {
                let mut put = tx.prepare(
                    "INSERT OR REPLACE INTO duplicate_keys_pending(day, keys) VALUES(?1, ?2)",
                )?;
                let mut blob = Vec::new();
                for (day, keys) in &out {
                    keys.write(&mut blob);
                    put.execute(rusqlite::params![day, blob])?;
                }
            }
            tx.commit()
        };
        write().with_context(|| format!("writing state store {}", path.display()))?;
        self.pending.extend(out.iter().map(|(day, _)| *day));
        Ok(())
    }

    /// Each day in memory that gained keys, with all its keys (read and
    /// added) as the state store keeps them: sorted, 8 bytes each,
    /// little-endian. (The days written aside are in the pending table.)
    pub fn for_each_changed_day<E>(
        &self,
        mut each: impl FnMut(i64, &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut days: Vec<(&i64, &DayKeys)> = self
            .days
            .iter()
            .filter(|(_, k)| !k.added.is_empty())
            .collect();
        days.sort_by_key(|(day, _)| **day);
        let mut blob = Vec::new();
        for (&day, keys) in days {
            keys.write(&mut blob);
            each(day, &blob)?;
        }
        Ok(())
    }
}

impl DayKeys {
    fn bytes(&self) -> usize {
        self.stored.len() * READ_BYTES + self.added.len() * ADDED_BYTES
    }

    /// All the day's keys as the state store keeps them, into `blob`.
    fn write(&self, blob: &mut Vec<u8>) {
        let mut added: Vec<u64> = self.added.iter().copied().collect();
        added.sort_unstable();
        blob.clear();
        blob.reserve(8 * (self.stored.len() + added.len()));
        merge(&self.stored, &added, |k| {
            blob.extend_from_slice(&k.to_le_bytes())
        });
    }
}

/// Sorted `a` and `b` (disjoint) in order, to `out`.
fn merge(a: &[u64], b: &[u64], mut out: impl FnMut(u64)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out(a[i]);
            i += 1;
        } else {
            out(b[j]);
            j += 1;
        }
    }
    a[i..].iter().chain(&b[j..]).for_each(|&k| out(k));
}

/// A day's keys from their stored bytes.
fn decode(blob: &[u8]) -> Result<Vec<u64>> {
    if blob.len() % 8 != 0 {
        bail!("{} bytes is not a whole number of keys", blob.len());
    }
    let keys: Vec<u64> = blob
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if !keys.is_sorted() {
        bail!("the keys are not sorted");
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_repeat_on_their_day_only() {
        let mut keys = DuplicateKeys::new(None);
        let day = 86_400;
        assert!(!keys.seen_before(day, 7).unwrap());
        assert!(keys.seen_before(day + 5, 7).unwrap());
        assert!(!keys.seen_before(2 * day, 7).unwrap());
        assert!(!keys.seen_before(day - 1, 7).unwrap());
        assert!(!keys.seen_before(day, 8).unwrap());
        assert_eq!(keys.added(), 4);
    }

    /// The days of a state store, as the final transaction leaves them
    /// (see `StateStore::commit`).
    fn committed(path: &Path, keys: &DuplicateKeys) -> Vec<(i64, Vec<u64>)> {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "INSERT OR REPLACE INTO duplicate_keys SELECT day, keys FROM duplicate_keys_pending;
             DELETE FROM duplicate_keys_pending;",
        )
        .unwrap();
        keys.for_each_changed_day(|day, blob| {
            conn.execute(
                "INSERT OR REPLACE INTO duplicate_keys VALUES(?1, ?2)",
                rusqlite::params![day, blob],
            )
            .map(drop)
        })
        .unwrap();
        let mut stmt = conn
            .prepare("SELECT day, keys FROM duplicate_keys ORDER BY day")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, decode(&r.get::<_, Vec<u8>>(1)?).unwrap()))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// With a small budget, days are written aside and read again: the same
    /// duplicates are found, and the same keys committed, as with all of
    /// them in memory; a second import finds the first's.
    #[test]
    fn days_written_aside_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE duplicate_keys(day INTEGER PRIMARY KEY, keys BLOB NOT NULL);
             CREATE TABLE duplicate_keys_pending(day INTEGER PRIMARY KEY, keys BLOB NOT NULL);",
        )
        .unwrap();
        // Keys over 40 days, each event sent again later, sometimes much later.
        let events: Vec<(i64, u64)> = (0..4000u64)
            .flat_map(|i| {
                let t = (i as i64 / 100) * 86_400 + (i as i64 % 100);
                let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let mut out = vec![(t, key)];
                if i % 7 == 0 {
                    out.push((t, key));
                }
                out
            })
            .chain((0..4000u64).step_by(13).map(|i| {
                (
                    (i as i64 / 100) * 86_400 + (i as i64 % 100),
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                )
            }))
            .collect();
        let mut small = DuplicateKeys::with_budget(Some(path.clone()), 200 * ADDED_BYTES);
        let mut large = DuplicateKeys::new(None);
        for &(t, key) in &events {
            assert_eq!(
                small.seen_before(t, key).unwrap(),
                large.seen_before(t, key).unwrap(),
                "{t} {key}"
            );
        }
        assert!(small.spilled() > 30, "{}", small.spilled());
        assert!(small.bytes <= 200 * ADDED_BYTES);
        let got = committed(&path, &small);
        let mut want = Vec::new();
        large
            .for_each_changed_day(|day, blob| {
                want.push((day, decode(blob).unwrap()));
                anyhow::Ok(())
            })
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|d| d.1.len()).sum::<usize>(), 4000);
        // The next import: every key is a duplicate now.
        let mut next = DuplicateKeys::with_budget(Some(path), 200 * ADDED_BYTES);
        assert!(events.iter().all(|&(t, k)| next.seen_before(t, k).unwrap()));
        assert_eq!(next.added(), 0);
    }

    #[test]
    fn merged_days_are_sorted_and_round_trip() {
        let mut keys = DuplicateKeys::new(None);
        for k in [9u64, 3, u64::MAX, 1] {
            keys.seen_before(0, k).unwrap();
        }
        keys.days.get_mut(&0).unwrap().stored = vec![2, 5];
        keys.seen_before(86_400 * 3, 4).unwrap();
        let mut out = Vec::new();
        keys.for_each_changed_day(|day, blob| {
            out.push((day, decode(blob).unwrap()));
            anyhow::Ok(())
        })
        .unwrap();
        assert_eq!(out, [(0, vec![1, 2, 3, 5, 9, u64::MAX]), (3, vec![4])]);
        assert!(decode(&[0; 7]).is_err());
        let unsorted: Vec<u8> = [2u64, 1].iter().flat_map(|k| k.to_le_bytes()).collect();
        assert!(decode(&unsorted).is_err());
    }
}
