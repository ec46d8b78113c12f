//! The duplicate keys of events (SPEC §10, Mixpanel's `$insert_id`): an
//! event whose key an earlier event had, in this import or an earlier one,
//! is a duplicate.
//!
//! A duplicate has the same `t` as its original, so keys are kept per day
//! of `t`: the state store holds one row per day, its keys as a sorted
//! array of 64-bit values (8 bytes a key), and an import reads only the
//! days its events fall on, when it first meets each. Keys new in this
//! import are kept in memory and written with the rest of the import's
//! state, in its one transaction: a killed import left none behind, so its
//! re-run never takes its own events for duplicates.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::dates::DAY_SECONDS;

/// The keys seen so far: those of earlier imports on the days this import
/// touched, and this import's own.
#[derive(Default)]
pub struct DuplicateKeys {
    days: HashMap<i64, DayKeys>,
    /// The state store the keys of earlier imports are read from (none:
    /// there are none), and a connection to it once one is needed.
    store: Option<PathBuf>,
    conn: Option<Connection>,
    added: u64,
}

/// The keys of one day.
#[derive(Default)]
struct DayKeys {
    /// Stored by earlier imports, sorted.
    stored: Vec<u64>,
    /// Added by this import.
    added: HashSet<u64, BuildHasherDefault<KeyHasher>>,
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
    /// Keys of earlier imports are read from the state store at `store`.
    pub fn new(store: Option<PathBuf>) -> DuplicateKeys {
        DuplicateKeys {
            store,
            ..DuplicateKeys::default()
        }
    }

    /// True when an earlier event had `key` (on the day of `t`, its time);
    /// else remembers it.
    pub fn seen_before(&mut self, t: i64, key: u64) -> Result<bool> {
        let day = t.div_euclid(DAY_SECONDS);
        if !self.days.contains_key(&day) {
            let stored = self.read_day(day)?;
            self.days.insert(
                day,
                DayKeys {
                    stored,
                    added: HashSet::default(),
                },
            );
        }
        let keys = self.days.get_mut(&day).expect("inserted above");
        if keys.stored.binary_search(&key).is_ok() || !keys.added.insert(key) {
            return Ok(true);
        }
        self.added += 1;
        Ok(false)
    }

    /// Keys this import added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// The stored keys of `day`, sorted.
    fn read_day(&mut self, day: i64) -> Result<Vec<u64>> {
        let Some(path) = &self.store else {
            return Ok(Vec::new());
        };
        if self.conn.is_none() {
            let conn = Connection::open(path)
                .with_context(|| format!("opening state store {}", path.display()))?;
            self.conn = Some(conn);
        }
        let conn = self.conn.as_ref().expect("opened above");
        let blob: Option<Vec<u8>> = conn
            .query_row(
                "SELECT keys FROM duplicate_keys WHERE day = ?1",
                [day],
                |r| r.get(0),
            )
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

    /// Each day that gained keys, with all its keys (stored and added) as
    /// the state store keeps them: sorted, 8 bytes each, little-endian.
    pub fn for_each_changed_day(
        &self,
        mut each: impl FnMut(i64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut days: Vec<(&i64, &DayKeys)> = self
            .days
            .iter()
            .filter(|(_, k)| !k.added.is_empty())
            .collect();
        days.sort_by_key(|(day, _)| **day);
        let mut blob = Vec::new();
        for (&day, keys) in days {
            let mut added: Vec<u64> = keys.added.iter().copied().collect();
            added.sort_unstable();
            blob.clear();
            blob.reserve(8 * (keys.stored.len() + added.len()));
            merge(&keys.stored, &added, |k| {
                blob.extend_from_slice(&k.to_le_bytes())
            });
            each(day, &blob)?;
        }
        Ok(())
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
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [(0, vec![1, 2, 3, 5, 9, u64::MAX]), (3, vec![4])]);
        assert!(decode(&[0; 7]).is_err());
        let unsorted: Vec<u8> = [2u64, 1].iter().flat_map(|k| k.to_le_bytes()).collect();
        assert!(decode(&unsorted).is_err());
    }
}
