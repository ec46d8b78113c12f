//! Reading the loaded tables back for the analysis commands (SPEC §9):
//! [`EventReader`] streams the rows of `events` and the `properties` a
//! `where` names, in any order, slice by slice over sessions of its own, so
//! that one pass reads each row once. `mysql/read.rs` and `postgres/read.rs`
//! implement it.

use std::collections::HashMap;

use anyhow::Result;

/// The first second `events.t` can hold (SPEC §3): 1970-01-01 00:00:00.
pub const MIN_T: i64 = 0;
/// The second after the last one `events.t` can hold: 10000-01-01 00:00:00.
pub const END_T: i64 = 253_402_300_800;

/// One row of `events`: its person (the canonical `users.id`), time (seconds
/// since 1970, UTC), id (`revision << 40 | line`) and name (`keys.id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub user: i64,
    pub t: i64,
    pub id: i64,
    pub n: u32,
}

/// One row of `properties` that belongs to an event, as scanned.
#[derive(Clone, Copy, Debug)]
pub struct PropertyRow<'a> {
    pub event: i64,
    pub user: i64,
    pub key: u32,
    pub value: &'a [u8],
}

/// A stretch of time `from <= t < to` read by one query, with the
/// database's estimate of the events it holds (for a progress bar).
/// Readers align slices with their partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub from: i64,
    pub to: i64,
    pub rows: u64,
}

/// Which properties to read: those of events (`event_id` not NULL) whose key
/// is one of `keys` and value one of `values`. A reader may return more
/// rows; the caller keeps only the pairs it asked for.
#[derive(Clone, Debug, Default)]
pub struct PropertyFilter {
    pub keys: Vec<u32>,
    pub values: Vec<String>,
}

/// What the analysis commands read from a database (its schema checked when
/// opened). Rows come in any order; scans go through sessions, one per
/// reading thread, so that slices of events and properties are read side by
/// side.
pub trait EventReader: Sync {
    /// Whether `events` holds at least one row.
    fn has_events(&self) -> Result<bool>;

    /// The `keys.id` of those of `names` that are in `keys` (byte-exact).
    fn key_ids(&self, names: &[&str]) -> Result<HashMap<String, u32>>;

    /// The names of `keys` ids.
    fn key_names(&self, ids: &[u32]) -> Result<HashMap<u32, String>>;

    /// `from <= t < to` cut into consecutive slices (by partition where the
    /// tables have them), each with an estimate of its events.
    fn slices(&self, from: i64, to: i64) -> Result<Vec<Slice>>;

    /// A session of its own for one reading thread.
    fn session(&self) -> Result<Box<dyn ReadSession + '_>>;
}

/// One database session streaming slices, one query at a time.
pub trait ReadSession {
    /// `(user_id, t, id, n)` of the events in `slice`, only those named
    /// `names` (`keys.id`) when given.
    fn events(
        &mut self,
        slice: &Slice,
        names: Option<&[u32]>,
        row: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<()>;

    /// `(event_id, user_id, key, value)` of the properties in `slice` that
    /// `filter` asks for.
    fn properties(
        &mut self,
        slice: &Slice,
        filter: &PropertyFilter,
        row: &mut dyn FnMut(PropertyRow<'_>) -> Result<()>,
    ) -> Result<()>;
}
