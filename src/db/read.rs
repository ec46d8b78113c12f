//! Reading the loaded tables back for the analysis commands (SPEC §9):
//! [`EventReader`] streams the rows of `events` and the `properties` a
//! `where` names, in any order, slice by slice over sessions of its own, so
//! that one pass reads each row once. `mysql/read.rs` and `postgres/read.rs`
//! implement it.

use std::collections::HashMap;

use anyhow::Result;

use crate::dates::{self, Day};

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

// SQL both targets' readers write alike (standard SQL, no quoting).

/// Names per `IN (...)` list of a lookup.
pub(crate) const NAMES_PER_QUERY: usize = 1000;
/// Values a property scan filters on in SQL; beyond, the reader filters.
pub(crate) const MAX_SQL_VALUES: usize = 20_000;
/// Slices a scan is cut into at most (partitions are merged up to this).
const MAX_SLICES: usize = 100;

/// `YYYY-MM-DD HH:MM:SS` of a time, as SQL compares it.
fn format_datetime(t: i64) -> String {
    String::from_utf8_lossy(&dates::datetime(t)).into_owned()
}

/// `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` as the server prints a DATETIME.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let day = Day::parse(s.get(..10)?).ok()?;
    let time = match s.get(10..)? {
        "" => 0,
        rest => {
            let hms = rest.strip_prefix(' ')?;
            let parts: Vec<i64> = hms
                .split(':')
                .map(|p| (p.len() == 2).then(|| p.parse().ok()).flatten())
                .collect::<Option<_>>()?;
            let [h, m, sec] = parts[..] else { return None };
            if h > 23 || m > 59 || sec > 59 {
                return None;
            }
            h * 3600 + m * 60 + sec
        }
    };
    Some(day.seconds() + time)
}

/// `t >= 'from' AND t < 'to'`, leaving out the bounds every row meets.
pub(crate) fn time_range(slice: &Slice) -> String {
    let mut sql = format!("t >= '{}'", format_datetime(slice.from.max(MIN_T)));
    if slice.to < END_T {
        sql += &format!(" AND t < '{}'", format_datetime(slice.to));
    }
    sql
}

pub(crate) fn int_list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The `SELECT` of the events of `slice` (of the names `names` only, when
/// given: `None` when that list is empty and there is nothing to read).
pub(crate) fn events_sql(slice: &Slice, names: Option<&[u32]>) -> Option<String> {
    let names = match names {
        Some([]) => return None,
        Some(names) => format!(" AND n IN ({})", int_list(names)),
        None => String::new(),
    };
    Some(format!(
        "SELECT user_id, t, id, n FROM events WHERE {}{names}",
        time_range(slice)
    ))
}

/// `from <= t < to` cut at partition ends, merged so that there are at most
/// about `MAX_SLICES` slices of similar estimated size.
pub(crate) fn cut(partitions: &[(i64, u64)], from: i64, to: i64) -> Vec<Slice> {
    let mut pieces = Vec::new();
    let mut lo = MIN_T;
    for &(end, rows) in partitions {
        let (a, b) = (lo.max(from), end.min(to));
        if a < b {
            // A partition cut by from/to holds a share of its rows.
            let share = (b - a) as f64 / (end - lo).max(1) as f64;
            pieces.push(Slice {
                from: a,
                to: b,
                rows: (rows as f64 * share.min(1.0)).ceil() as u64,
            });
        }
        lo = lo.max(end);
    }
    if lo < to {
        pieces.push(Slice {
            from: lo.max(from),
            to,
            rows: 0,
        });
    }
    let total: u64 = pieces.iter().map(|s| s.rows).sum();
    let target = total.div_ceil(MAX_SLICES as u64).max(1);
    let mut slices: Vec<Slice> = Vec::new();
    for p in pieces {
        match slices.last_mut() {
            Some(last) if last.rows + p.rows <= target || p.rows == 0 => {
                last.to = p.to;
                last.rows += p.rows;
            }
            _ => slices.push(p),
        }
    }
    slices
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn slices_follow_partitions_within_the_range() {
        let parts = [(10 * DAY, 100), (20 * DAY, 100), (END_T, 100)];
        let all = cut(&parts, 0, END_T);
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].from, all[0].to, all[0].rows), (0, 10 * DAY, 100));
        assert_eq!((all[2].from, all[2].to), (20 * DAY, END_T));
        // A range inside the second partition: one slice, a share of its rows.
        let some = cut(&parts, 12 * DAY, 17 * DAY);
        assert_eq!(
            some,
            vec![Slice {
                from: 12 * DAY,
                to: 17 * DAY,
                rows: 50
            }]
        );
        // No partitions at all: one slice.
        assert_eq!(
            cut(&[], 5, 9),
            vec![Slice {
                from: 5,
                to: 9,
                rows: 0
            }]
        );
        // Slices are consecutive and cover the range.
        let many: Vec<(i64, u64)> = (1..=1000).map(|d| (d * DAY, 10)).collect();
        let s = cut(&many, 0, END_T);
        assert!(s.len() <= MAX_SLICES + 1, "{}", s.len());
        assert_eq!(s[0].from, 0);
        assert_eq!(s.last().unwrap().to, END_T);
        assert!(s.windows(2).all(|w| w[0].to == w[1].from));
        assert_eq!(s.iter().map(|s| s.rows).sum::<u64>(), 10_000);
    }
}
