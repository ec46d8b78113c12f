//! [`EventReader`] on MySQL/MariaDB: the SQL of the analysis commands.
//! Slices follow the partitions of `events`; each scan streams rows over a
//! session of its own with the binary protocol (integers and DATETIMEs
//! arrive as numbers, not text).

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use super::{connect, schema};
use crate::dates::days_from_civil;
use crate::db::read::{
    cut, events_sql, int_list, parse_datetime, time_range, Event, EventReader, PropertyFilter,
    PropertyRow, ReadSession, Slice, END_T, MAX_SQL_VALUES, NAMES_PER_QUERY,
};
use crate::db::DatabaseUrl;

/// The tables of one MySQL/MariaDB database, read with sessions that send
/// no file (`LOAD DATA LOCAL` is refused on them).
pub struct MySqlReader {
    url: DatabaseUrl,
}

impl MySqlReader {
    /// Connects once to check the schema.
    pub fn open(url: &DatabaseUrl) -> Result<MySqlReader> {
        let mut conn = connect(url, None)?;
        schema::check(&mut conn)?;
        Ok(MySqlReader { url: url.clone() })
    }

    fn conn(&self) -> Result<Conn> {
        connect(&self.url, None)
    }
}

/// Seconds since the epoch of a UTC civil time (as a DATETIME column holds it).
fn seconds_of(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> i64 {
    days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss
}

fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::UInt(u) => i64::try_from(*u).with_context(|| format!("{what} {u} out of range")),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{what} is not a number: {:?}", String::from_utf8_lossy(b))),
        other => bail!("unexpected {what}: {other:?}"),
    }
}

fn datetime(v: &Value) -> Result<i64> {
    match *v {
        Value::Date(y, m, d, hh, mm, ss, _) => Ok(seconds_of(
            i64::from(y),
            i64::from(m),
            i64::from(d),
            i64::from(hh),
            i64::from(mm),
            i64::from(ss),
        )),
        Value::Bytes(ref b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| parse_datetime(s.get(..19).unwrap_or(s)))
            .with_context(|| format!("unexpected t {:?}", String::from_utf8_lossy(b))),
        ref other => bail!("unexpected t {other:?}"),
    }
}

/// Upper bound of a `RANGE COLUMNS (t)` partition from its description
/// (`'2015-01-01 00:00:00'`, `'2015-01-01'` or `MAXVALUE`).
fn partition_end(description: &str) -> Option<i64> {
    let d = description.trim();
    if d.eq_ignore_ascii_case("MAXVALUE") {
        return Some(END_T);
    }
    parse_datetime(d.trim_matches('\''))
}

impl EventReader for MySqlReader {
    fn has_events(&self) -> Result<bool> {
        let one: Option<i64> = self.conn()?.query_first("SELECT 1 FROM events LIMIT 1")?;
        Ok(one.is_some())
    }

    fn key_ids(&self, names: &[&str]) -> Result<HashMap<String, u32>> {
        let mut conn = self.conn()?;
        let mut ids = HashMap::new();
        for chunk in names.chunks(NAMES_PER_QUERY) {
            let marks = vec!["?"; chunk.len()].join(",");
            let rows: Vec<(u32, Vec<u8>)> = conn
                .exec(
                    format!("SELECT id, string FROM `keys` WHERE string IN ({marks})"),
                    chunk.to_vec(),
                )
                .context("looking up names in keys")?;
            for (id, name) in rows {
                ids.insert(String::from_utf8_lossy(&name).into_owned(), id);
            }
        }
        Ok(ids)
    }

    fn key_names(&self, ids: &[u32]) -> Result<HashMap<u32, String>> {
        let mut conn = self.conn()?;
        let mut names = HashMap::new();
        for chunk in ids.chunks(NAMES_PER_QUERY) {
            let rows: Vec<(u32, Vec<u8>)> = conn
                .query(format!(
                    "SELECT id, string FROM `keys` WHERE id IN ({})",
                    int_list(chunk)
                ))
                .context("looking up names in keys")?;
            for (id, name) in rows {
                names.insert(id, String::from_utf8_lossy(&name).into_owned());
            }
        }
        Ok(names)
    }

    fn slices(&self, from: i64, to: i64) -> Result<Vec<Slice>> {
        let rows: Vec<(Option<String>, Option<u64>)> = self.conn()?.query(
            "SELECT PARTITION_DESCRIPTION, TABLE_ROWS FROM information_schema.PARTITIONS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events'
             ORDER BY PARTITION_ORDINAL_POSITION",
        )?;
        let mut partitions = Vec::with_capacity(rows.len());
        for (description, rows) in rows {
            // An unpartitioned table: one slice.
            let end = match description.as_deref() {
                None => END_T,
                Some(d) => partition_end(d)
                    .with_context(|| format!("unexpected partition bound of events: {d}"))?,
            };
            partitions.push((end, rows.unwrap_or(0)));
        }
        Ok(cut(&partitions, from, to))
    }

    fn session(&self) -> Result<Box<dyn ReadSession + '_>> {
        Ok(Box::new(MySqlSession { conn: self.conn()? }))
    }
}

/// A session streaming slices with the binary protocol.
struct MySqlSession {
    conn: Conn,
}

impl ReadSession for MySqlSession {
    fn events(
        &mut self,
        slice: &Slice,
        names: Option<&[u32]>,
        row: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        let Some(sql) = events_sql(slice, names) else {
            return Ok(());
        };
        let result = self.conn.exec_iter(&sql, ()).context("querying events")?;
        for r in result {
            let values = r.context("reading events")?.unwrap();
            let [user, t, id, n] = &values[..] else {
                bail!("expected 4 columns from events, got {}", values.len());
            };
            row(Event {
                user: int(user, "user_id")?,
                t: datetime(t)?,
                id: int(id, "id")?,
                n: int(n, "n")? as u32,
            })?;
        }
        Ok(())
    }

    fn properties(
        &mut self,
        slice: &Slice,
        filter: &PropertyFilter,
        row: &mut dyn FnMut(PropertyRow<'_>) -> Result<()>,
    ) -> Result<()> {
        if filter.keys.is_empty() {
            return Ok(());
        }
        let (values, params): (String, Vec<Value>) = if filter.values.len() <= MAX_SQL_VALUES {
            (
                format!(
                    " AND value IN ({})",
                    vec!["?"; filter.values.len()].join(",")
                ),
                filter
                    .values
                    .iter()
                    .map(|v| Value::from(v.as_str()))
                    .collect(),
            )
        } else {
            (String::new(), Vec::new())
        };
        let sql = format!(
            "SELECT event_id, user_id, `key`, value FROM properties \
             WHERE {} AND event_id IS NOT NULL AND `key` IN ({}){values}",
            time_range(slice),
            int_list(&filter.keys)
        );
        let result = self
            .conn
            .exec_iter(&sql, params)
            .context("querying properties")?;
        for r in result {
            let values = r.context("reading properties")?.unwrap();
            let [event, user, key, value] = &values[..] else {
                bail!("expected 4 columns from properties, got {}", values.len());
            };
            let Value::Bytes(value) = value else {
                continue; // NULL: no value to match
            };
            row(PropertyRow {
                event: int(event, "event_id")?,
                user: int(user, "user_id")?,
                key: int(key, "key")? as u32,
                value,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn partition_bounds() {
        assert_eq!(partition_end("MAXVALUE"), Some(END_T));
        assert_eq!(partition_end("'1970-01-02 00:00:00'"), Some(DAY));
        assert_eq!(partition_end("'1970-01-02'"), Some(DAY));
        assert_eq!(partition_end("'2015-01-01 12:30:05'"), Some(1_420_115_405));
        assert_eq!(partition_end("garbage"), None);
        assert_eq!(partition_end("'2015-01-01 24:00:00'"), None);
        assert_eq!(seconds_of(2015, 1, 1, 0, 0, 1), 1_420_070_401);
    }
}
