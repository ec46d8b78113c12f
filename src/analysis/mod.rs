//! Analysis over the loaded tables (SPEC §9): `kmdb funnel` and `kmdb next`.
//!
//! The database is read once per run through [`EventReader`] (the seam in
//! `db::read`, one implementation per database): the events a run needs and
//! the properties its `where` conditions name, streamed in any order.
//! [`reader`] spills them to buckets by person, then sorts each bucket by
//! `(user, t, id)` and hands every person's events to a [`Tally`]: the
//! funnels of [`funnel`] (all of a run's funnels in the same pass) or the
//! sequences of [`next`]. No SQL here: everything is database-free.

pub mod funnel;
pub mod html;
pub mod next;
pub mod output;
pub mod reader;
pub mod run;
pub mod time;

use std::collections::HashMap;

pub use crate::db::read::{Event, EventReader, PropertyFilter};

/// A hash map with foldhash: the maps below are looked up once per row
/// read, where std's SipHash would cost more than the lookup.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// An event satisfies the `where` condition `cond` (a stored property of the
/// event with that key and exactly that value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub user: i64,
    pub event: i64,
    pub cond: u32,
}

/// Folds persons' events into counts. The reader gives each worker thread
/// its own tally and merges them at the end.
pub trait Tally: Send {
    /// One person's events in `(t, id)` order, and the marks of those events
    /// sorted by `(event, cond)`.
    fn person(&mut self, events: &[Event], marks: &[Mark]);

    /// Adds another worker's counts.
    fn merge(&mut self, other: Self);
}

/// The `where` conditions of a run, `(key, value)` pairs numbered from 0,
/// and the lookup that turns a property row into a condition.
#[derive(Debug, Default)]
pub struct Conditions {
    by_key: FastMap<u32, FastMap<Box<[u8]>, u32>>,
    count: u32,
}

impl Conditions {
    /// The number of the condition `key = value`, added if new.
    pub fn add(&mut self, key: u32, value: &str) -> u32 {
        let values = self.by_key.entry(key).or_default();
        if let Some(&id) = values.get(value.as_bytes()) {
            return id;
        }
        let id = self.count;
        values.insert(value.as_bytes().into(), id);
        self.count += 1;
        id
    }

    /// The condition a property row satisfies, if any.
    pub fn lookup(&self, key: u32, value: &[u8]) -> Option<u32> {
        self.by_key.get(&key)?.get(value).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The properties that hold every condition.
    pub fn filter(&self) -> PropertyFilter {
        let mut keys: Vec<u32> = self.by_key.keys().copied().collect();
        keys.sort_unstable();
        let mut values: Vec<String> = self
            .by_key
            .values()
            .flat_map(|v| v.keys())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        values.sort_unstable();
        values.dedup();
        PropertyFilter { keys, values }
    }
}

/// The marks of event `id` in a person's marks sorted by `(event, cond)`.
pub fn marks_of(marks: &[Mark], id: i64) -> &[Mark] {
    if marks.is_empty() {
        return marks;
    }
    let start = marks.partition_point(|m| m.event < id);
    let len = marks[start..].partition_point(|m| m.event == id);
    &marks[start..start + len]
}

/// Whether every condition of `wanted` (sorted) is among `marks` (sorted by
/// condition).
pub fn satisfies(wanted: &[u32], marks: &[Mark]) -> bool {
    let mut have = marks.iter().map(|m| m.cond);
    wanted
        .iter()
        .all(|&w| have.by_ref().find(|&c| c >= w) == Some(w))
}

/// Names, event names and values are cut to 255 characters when loaded
/// (SPEC §3); a name in a funnel file or on the command line is cut the same
/// way, so that a long name copied from the export still matches.
pub fn cut_255(s: &str) -> &str {
    match s.char_indices().nth(255) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(event: i64, cond: u32) -> Mark {
        Mark {
            user: 1,
            event,
            cond,
        }
    }

    #[test]
    fn marks_of_an_event() {
        let marks = [mark(3, 0), mark(5, 1), mark(5, 4), mark(9, 2)];
        assert_eq!(marks_of(&marks, 5), &marks[1..3]);
        assert_eq!(marks_of(&marks, 4), &[] as &[Mark]);
        assert_eq!(marks_of(&marks, 10), &[] as &[Mark]);
        assert_eq!(marks_of(&[], 1), &[] as &[Mark]);
    }

    #[test]
    fn satisfies_needs_every_condition() {
        let marks = [mark(5, 1), mark(5, 4), mark(5, 7)];
        assert!(satisfies(&[], &marks));
        assert!(satisfies(&[], &[]));
        assert!(satisfies(&[1, 7], &marks));
        assert!(satisfies(&[1, 4, 7], &marks));
        assert!(!satisfies(&[2], &marks));
        assert!(!satisfies(&[1, 8], &marks));
        assert!(!satisfies(&[0, 1], &marks));
        assert!(!satisfies(&[1], &[]));
    }

    #[test]
    fn conditions_are_numbered_once() {
        let mut c = Conditions::default();
        assert_eq!(c.add(7, "v1"), 0);
        assert_eq!(c.add(7, "v2"), 1);
        assert_eq!(c.add(8, "v1"), 2);
        assert_eq!(c.add(7, "v1"), 0);
        assert_eq!(c.lookup(7, b"v2"), Some(1));
        assert_eq!(c.lookup(7, b"v3"), None);
        assert_eq!(c.lookup(9, b"v1"), None);
        let filter = c.filter();
        assert_eq!(filter.keys, vec![7, 8]);
        assert_eq!(filter.values, vec!["v1", "v2"]);
    }

    #[test]
    fn names_are_cut_like_the_loader_cuts_them() {
        let long = "é".repeat(300);
        assert_eq!(cut_255(&long).chars().count(), 255);
        assert_eq!(cut_255("short"), "short");
    }
}
