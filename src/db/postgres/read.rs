//! [`EventReader`] on PostgreSQL: the SQL of the analysis commands, as on
//! MySQL. Slices follow the partition tables of `events`; each scan streams
//! its rows over a session of its own (`query_raw`: rows arrive as the
//! server sends them, in the binary format, `t` as microseconds).

use std::collections::HashMap;

use anyhow::{Context, Result};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, ToSql, Type};
use postgres::Client;

use super::{connect, partition, schema, Doing};
use crate::db::read::{
    cut, events_sql, int_list, parse_datetime, time_range, Event, EventReader, PropertyFilter,
    PropertyRow, ReadSession, Slice, END_T, MAX_SQL_VALUES, NAMES_PER_QUERY,
};
use crate::db::DatabaseUrl;
use crate::table::Table;

/// The tables of one PostgreSQL database, read with sessions in UTC.
pub struct PostgresReader {
    url: DatabaseUrl,
}

impl PostgresReader {
    /// Connects once to check the schema.
    pub fn open(url: &DatabaseUrl) -> Result<PostgresReader> {
        let mut client = connect(url)?;
        schema::check(&mut client)?;
        Ok(PostgresReader { url: url.clone() })
    }

    fn client(&self) -> Result<Client> {
        connect(&self.url)
    }
}

/// Seconds since 1970 of a `timestamp` (UTC) in the binary format:
/// microseconds since 2000-01-01 00:00:00.
struct Seconds(i64);

/// Bytes a row of `events` takes in its table: 28 of data, a 24-byte
/// header (aligned to 56) and a 4-byte line pointer.
const EVENT_ROW_BYTES: u64 = 60;

/// 2000-01-01 00:00:00 in seconds since 1970.
const PG_EPOCH: i64 = 946_684_800;

impl<'a> FromSql<'a> for Seconds {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let micros = i64::from_be_bytes(raw.try_into()?);
        Ok(Seconds(micros.div_euclid(1_000_000) + PG_EPOCH))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMP
    }
}

/// Upper bound of a partition of `events` from its catalog bound:
/// `DEFAULT` (`pLast`) and `MAXVALUE` end at [`END_T`].
fn partition_end(expr: &str) -> Result<i64> {
    Ok(match partition::parse_bound(expr)? {
        partition::Bound::Default | partition::Bound::Range { to: None, .. } => END_T,
        partition::Bound::Range { to: Some(to), .. } => parse_datetime(&to)
            .with_context(|| format!("unexpected partition bound of events: {expr}"))?,
    })
}

impl EventReader for PostgresReader {
    fn has_events(&self) -> Result<bool> {
        Ok(self
            .client()?
            .query_opt("SELECT 1 FROM events LIMIT 1", &[])
            .doing("looking for events")?
            .is_some())
    }

    fn key_ids(&self, names: &[&str]) -> Result<HashMap<String, u32>> {
        let mut client = self.client()?;
        let mut ids = HashMap::new();
        // A text holding U+0000 cannot be in `keys` (nor be sent).
        let names: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !n.contains('\0'))
            .collect();
        for chunk in names.chunks(NAMES_PER_QUERY) {
            let rows = client
                .query(
                    "SELECT id, string::text FROM keys WHERE string = ANY($1)",
                    &[&chunk],
                )
                .doing("looking up names in keys")?;
            for r in rows {
                ids.insert(r.get::<_, String>(1), r.get::<_, i32>(0) as u32);
            }
        }
        Ok(ids)
    }

    fn key_names(&self, ids: &[u32]) -> Result<HashMap<u32, String>> {
        let mut client = self.client()?;
        let mut names = HashMap::new();
        for chunk in ids.chunks(NAMES_PER_QUERY) {
            let rows = client
                .query(
                    &format!(
                        "SELECT id, string::text FROM keys WHERE id IN ({})",
                        int_list(chunk)
                    ),
                    &[],
                )
                .doing("looking up names in keys")?;
            for r in rows {
                names.insert(r.get::<_, i32>(0) as u32, r.get::<_, String>(1));
            }
        }
        Ok(names)
    }

    fn slices(&self, from: i64, to: i64) -> Result<Vec<Slice>> {
        let mut client = self.client()?;
        // Checks that the partitions are kmdb's (ranges, then DEFAULT).
        partition::partitions(&mut client, Table::Events)?;
        let rows = client
            .query(
                "SELECT pg_get_expr(c.relpartbound, c.oid), c.reltuples::float8,
                        pg_relation_size(c.oid)
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = to_regclass('events')",
                &[],
            )
            .doing("listing the partitions of events")?;
        let mut partitions = Vec::with_capacity(rows.len());
        for r in rows {
            // reltuples is -1 for a table not analyzed yet (as right after
            // an import): its size tells, the rows having a fixed width.
            let estimate: f64 = r.get(1);
            let rows = if estimate >= 0.0 {
                estimate as u64
            } else {
                r.get::<_, i64>(2).max(0) as u64 / EVENT_ROW_BYTES
            };
            partitions.push((partition_end(r.get(0))?, rows));
        }
        partitions.sort_unstable();
        Ok(cut(&partitions, from, to))
    }

    fn session(&self) -> Result<Box<dyn ReadSession + '_>> {
        Ok(Box::new(PostgresSession {
            client: self.client()?,
        }))
    }
}

/// A session streaming slices, one query at a time.
struct PostgresSession {
    client: Client,
}

impl ReadSession for PostgresSession {
    fn events(
        &mut self,
        slice: &Slice,
        names: Option<&[u32]>,
        row: &mut dyn FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        let Some(sql) = events_sql(slice, names) else {
            return Ok(());
        };
        let no_params: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = self
            .client
            .query_raw(sql.as_str(), no_params)
            .doing("querying events")?;
        while let Some(r) = rows.next().doing("reading events")? {
            let t: Seconds = r.try_get(1).doing("reading events")?;
            row(Event {
                user: r.try_get(0).doing("reading events")?,
                t: t.0,
                id: r.try_get(2).doing("reading events")?,
                n: r.try_get::<_, i32>(3).doing("reading events")? as u32,
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
        // Values holding U+0000 cannot be stored (nor sent): none matches.
        let values: Vec<&str> = filter
            .values
            .iter()
            .map(String::as_str)
            .filter(|v| !v.contains('\0'))
            .collect();
        let in_sql = filter.values.len() <= MAX_SQL_VALUES;
        let sql = format!(
            "SELECT event_id, user_id, key, value::text FROM properties \
             WHERE {} AND event_id IS NOT NULL AND key IN ({}){}",
            time_range(slice),
            int_list(&filter.keys),
            if in_sql { " AND value = ANY($1)" } else { "" }
        );
        let params: Vec<&(dyn ToSql + Sync)> = if in_sql { vec![&values] } else { Vec::new() };
        let mut rows = self
            .client
            .query_raw(sql.as_str(), params)
            .doing("querying properties")?;
        while let Some(r) = rows.next().doing("reading properties")? {
            let Some(value) = r
                .try_get::<_, Option<&str>>(3)
                .doing("reading properties")?
            else {
                continue; // NULL: no value to match
            };
            row(PropertyRow {
                event: r.try_get(0).doing("reading properties")?,
                user: r.try_get(1).doing("reading properties")?,
                key: r.try_get::<_, i32>(2).doing("reading properties")? as u32,
                value: value.as_bytes(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ends_come_from_the_catalog_bounds() {
        assert_eq!(partition_end("DEFAULT").unwrap(), END_T);
        assert_eq!(
            partition_end("FOR VALUES FROM (MINVALUE) TO ('1970-01-02 00:00:00')").unwrap(),
            86_400
        );
        assert_eq!(
            partition_end("FOR VALUES FROM ('2015-01-01 00:00:00') TO (MAXVALUE)").unwrap(),
            END_T
        );
        assert!(partition_end("FOR VALUES IN (1)").is_err());
    }

    #[test]
    fn timestamps_count_from_2000() {
        let at = |micros: i64| Seconds::from_sql(&Type::TIMESTAMP, &micros.to_be_bytes()).unwrap();
        assert_eq!(at(0).0, PG_EPOCH);
        assert_eq!(at(1_500_000).0, PG_EPOCH + 1);
        // Before 2000 (and 1970) the second is the one that holds the instant.
        assert_eq!(at(-PG_EPOCH * 1_000_000).0, 0);
        assert_eq!(at(-PG_EPOCH * 1_000_000 - 1).0, -1);
    }
}
