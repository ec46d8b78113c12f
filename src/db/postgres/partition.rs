//! Partitions on PostgreSQL: declarative `RANGE (t)` partitions with the
//! plan and names of MySQL's, and a `DEFAULT` partition in the place of
//! `pLast`.
//!
//! A partition is a table, and all tables share one namespace, so the
//! partition MySQL calls `p20140108` is the table `events_p20140108` (rows
//! of `events` before 2014-01-08, from the previous bound on, or from
//! `MINVALUE` for the first), and `pLast` is `events_plast`, the `DEFAULT`
//! partition. kmdb's [`PartitionMap`] keeps MySQL's names; [`table_of`]
//! gives the table behind one.
//!
//! Extending a plan turns the part of `pLast` the new partitions cover into
//! those partitions, in one transaction, as MySQL's `REORGANIZE PARTITION`
//! does: the `DEFAULT` partition is detached, the new partitions created,
//! its rows before the new end moved into them, and it is attached again.
//! A `CHECK (t >= end)` constraint on it, dropped right after, lets
//! PostgreSQL skip the scans that prove no row of it belongs elsewhere.

use anyhow::{bail, Result};
use postgres::{Client, GenericClient};

use super::Doing;
use crate::dates::Day;
use crate::partition::{self, name_for, PartitionMap};
use crate::table::Table;

/// The table holding `partition` (a name of a [`PartitionMap`]) of `table`.
pub fn table_of(table: Table, partition: &str) -> String {
    format!("{}_{}", table.name(), partition.to_ascii_lowercase())
}

/// A partition's bound as `pg_get_expr(relpartbound, oid)` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    Default,
    /// `FOR VALUES FROM (from) TO (to)`; `None` for `MINVALUE`/`MAXVALUE`,
    /// else `YYYY-MM-DD HH:MM:SS`.
    Range {
        from: Option<String>,
        to: Option<String>,
    },
}

/// Parses `DEFAULT` or `FOR VALUES FROM ('2014-01-01 00:00:00') TO (MAXVALUE)`
/// (the session's `DateStyle` is ISO).
pub fn parse_bound(expr: &str) -> Result<Bound> {
    let expr = expr.trim();
    if expr == "DEFAULT" {
        return Ok(Bound::Default);
    }
    let bad = || anyhow::anyhow!("a partition bound kmdb cannot read: {expr}");
    let rest = expr.strip_prefix("FOR VALUES FROM (").ok_or_else(bad)?;
    let (from, rest) = rest.split_once(") TO (").ok_or_else(bad)?;
    let to = rest.strip_suffix(')').ok_or_else(bad)?;
    let value = |v: &str| -> Result<Option<String>> {
        match v {
            "MINVALUE" | "MAXVALUE" => Ok(None),
            v => {
                let text = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .ok_or_else(bad)?;
                let iso = text.len() == 19
                    && text.bytes().enumerate().all(|(i, b)| match i {
                        4 | 7 => b == b'-',
                        10 => b == b' ',
                        13 | 16 => b == b':',
                        _ => b.is_ascii_digit(),
                    });
                if !iso {
                    return Err(bad());
                }
                Ok(Some(text.to_owned()))
            }
        }
    };
    Ok(Bound::Range {
        from: value(from)?,
        to: value(to)?,
    })
}

/// The partitions of `table` in order, from its partitions' `(table name,
/// bound)` rows in any order: ranges that follow each other from `MINVALUE`,
/// then the `DEFAULT` partition, as kmdb creates them. Anything else is
/// refused, naming the table.
pub fn map_from_catalog(table: Table, rows: &[(String, String)]) -> Result<PartitionMap> {
    let prefix = format!("{}_", table.name());
    let unexpected = |why: String| {
        anyhow::anyhow!(
            "table {} is not partitioned the way kmdb expects ({why}): was it created by \
             `kmdb setup` and extended by `kmdb partition`?",
            table.name()
        )
    };
    let mut ranges = Vec::new();
    let mut default = None;
    for (name, expr) in rows {
        let Some(short) = name.strip_prefix(&prefix) else {
            return Err(unexpected(format!("partition {name}")));
        };
        match parse_bound(expr)? {
            Bound::Default => default = Some(short.to_owned()),
            Bound::Range { from, to: Some(to) } => ranges.push((to, from, short.to_owned())),
            Bound::Range { to: None, .. } => {
                return Err(unexpected(format!("partition {name} ends at MAXVALUE")))
            }
        }
    }
    if default.as_deref() != Some(&partition::LAST.to_ascii_lowercase()) {
        return Err(unexpected(format!(
            "no DEFAULT partition {}",
            table_of(table, partition::LAST)
        )));
    }
    ranges.sort();
    let mut previous: Option<&String> = None;
    let mut described = Vec::with_capacity(ranges.len() + 1);
    for (to, from, short) in &ranges {
        if from.as_ref() != previous {
            return Err(unexpected(format!(
                "partition {prefix}{short} starts at {}, not where the one before it ends",
                from.as_deref().unwrap_or("MINVALUE")
            )));
        }
        described.push((short.clone(), format!("'{to}'")));
        previous = Some(to);
    }
    described.push((partition::LAST.to_owned(), "MAXVALUE".to_owned()));
    PartitionMap::from_descriptions(&described)
}

/// `CREATE TABLE` of the partition of `table` holding rows from `from`
/// (`None`: everything before `to`) to `to`.
pub fn create_sql(table: Table, from: Option<Day>, to: Day) -> String {
    let from = match from {
        Some(d) => format!("'{d} 00:00:00'"),
        None => "MINVALUE".to_owned(),
    };
    format!(
        "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({from}) TO ('{to} 00:00:00')",
        table_of(table, &name_for(to)),
        table.name()
    )
}

/// Where the rows of the `DEFAULT` partition fall against the new end of
/// the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultRows {
    /// None before it (or none at all): nothing moves.
    NoneBefore,
    /// Some before it, some after: those before move.
    SomeBefore,
    /// All before it: all move.
    AllBefore,
}

/// Name of the constraint that spares PostgreSQL the scans of the `DEFAULT`
/// partition while the plan is extended.
const BOUND_CHECK: &str = "kmdb_plast_bound";

/// The statements that add the partitions ending at `new` (each after
/// `last`, the current last bound, in order) to `table`, moving the rows
/// of its `DEFAULT` partition they cover. Run in one transaction that
/// holds `table` locked.
pub fn extend_sql(table: Table, last: Option<Day>, new: &[Day], rows: DefaultRows) -> Vec<String> {
    let Some(&end) = new.last() else {
        return Vec::new();
    };
    let (name, default) = (table.name(), table_of(table, partition::LAST));
    let end_text = format!("'{end} 00:00:00'");
    let check =
        format!("ALTER TABLE {default} ADD CONSTRAINT {BOUND_CHECK} CHECK (t >= {end_text})");
    let creates = new.iter().scan(last, |from, &to| {
        let sql = create_sql(table, *from, to);
        *from = Some(to);
        Some(sql)
    });
    let mut out = Vec::new();
    if rows == DefaultRows::NoneBefore {
        out.push(check);
        out.extend(creates);
    } else {
        out.push(format!("ALTER TABLE {name} DETACH PARTITION {default}"));
        out.extend(creates);
        if rows == DefaultRows::AllBefore {
            out.push(format!("INSERT INTO {name} SELECT * FROM {default}"));
            out.push(format!("TRUNCATE TABLE {default}"));
        } else {
            out.push(format!(
                "INSERT INTO {name} SELECT * FROM {default} WHERE t < {end_text}"
            ));
            out.push(format!("DELETE FROM {default} WHERE t < {end_text}"));
        }
        out.push(check);
        out.push(format!(
            "ALTER TABLE {name} ATTACH PARTITION {default} DEFAULT"
        ));
    }
    out.push(format!(
        "ALTER TABLE {default} DROP CONSTRAINT {BOUND_CHECK}"
    ));
    out
}

/// The partitions of `table`, in order.
pub fn partitions(client: &mut impl GenericClient, table: Table) -> Result<PartitionMap> {
    let rows: Vec<(String, String)> = client
        .query(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass($1)",
            &[&table.name()],
        )
        .doing(&format!("listing the partitions of {}", table.name()))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    map_from_catalog(table, &rows)
}

/// The partitions of `table` (names of its [`PartitionMap`]) that hold no
/// row: their table has no page (an estimate, good enough to plan loads,
/// which check again: a table whose rows were all deleted still has pages).
pub fn empty_partitions(client: &mut impl GenericClient, table: Table) -> Result<Vec<String>> {
    let prefix = format!("{}_", table.name());
    let map = partitions(client, table)?;
    let empty: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass($1) AND pg_relation_size(c.oid) = 0",
            &[&table.name()],
        )
        .doing(&format!("listing the empty partitions of {}", table.name()))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    Ok((0..map.len())
        .map(|i| map.name(i).to_owned())
        .filter(|name| empty.contains(&format!("{prefix}{}", name.to_ascii_lowercase())))
        .collect())
}

/// Adds the planned partitions past each table's last bound, moving the
/// rows of `pLast` they cover, all in one transaction. Returns the number
/// of partitions added per table.
pub fn extend_partitions(client: &mut Client, bounds: &[Day]) -> Result<usize> {
    let mut tx = client.transaction().doing("starting to add partitions")?;
    let mut added = 0;
    for table in Table::ALL {
        let name = table.name();
        tx.batch_execute(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .doing(&format!("locking {name}"))?;
        let map = partitions(&mut tx, table)?;
        let last = map.last_bound();
        let new: Vec<Day> = bounds
            .iter()
            .copied()
            .filter(|&b| last.is_none_or(|l| b > l))
            .collect();
        if map.len() + new.len() > partition::MAX_PARTITIONS {
            bail!(
                "table {name} would have {} partitions; kmdb allows at most {} (as MySQL)",
                map.len() + new.len(),
                partition::MAX_PARTITIONS
            );
        }
        let Some(end) = new.last() else {
            continue;
        };
        let default = table_of(table, partition::LAST);
        let end = format!("{end} 00:00:00");
        let row = tx
            .query_one(
                &format!(
                    "SELECT EXISTS(SELECT 1 FROM {default} WHERE t < $1::text::timestamp),
                            EXISTS(SELECT 1 FROM {default} WHERE t >= $1::text::timestamp)"
                ),
                &[&end],
            )
            .doing(&format!("looking at the rows of {default}"))?;
        let rows = match (row.get(0), row.get(1)) {
            (false, _) => DefaultRows::NoneBefore,
            (true, true) => DefaultRows::SomeBefore,
            (true, false) => DefaultRows::AllBefore,
        };
        for sql in extend_sql(table, last, &new, rows) {
            tx.batch_execute(&sql)
                .doing(&format!("adding partitions to {name}"))?;
        }
        added = new.len();
    }
    tx.commit().doing("committing the new partitions")?;
    Ok(added)
}

/// The statements that give `table`, whose partitions are `old` (names of
/// its [`PartitionMap`]), exactly the partitions of `bounds` and the
/// `DEFAULT` one: the old partitions are detached and renamed aside, the new
/// ones created, every row copied into them, the old ones dropped. Run in
/// one transaction that holds `table` locked.
pub fn replan_sql(table: Table, old: &[&str], bounds: &[Day]) -> Vec<String> {
    let name = table.name();
    let aside = |p: &str| format!("{}_kmdb_replan", table_of(table, p));
    let mut out = Vec::new();
    for p in old {
        out.push(format!(
            "ALTER TABLE {name} DETACH PARTITION {}",
            table_of(table, p)
        ));
        out.push(format!(
            "ALTER TABLE {} RENAME TO {}",
            table_of(table, p),
            aside(p)
        ));
    }
    let mut from = None;
    for &to in bounds {
        out.push(create_sql(table, from, to));
        from = Some(to);
    }
    out.push(format!(
        "CREATE TABLE {} PARTITION OF {name} DEFAULT",
        table_of(table, partition::LAST)
    ));
    for p in old {
        out.push(format!("INSERT INTO {name} SELECT * FROM {}", aside(p)));
        out.push(format!("DROP TABLE {}", aside(p)));
    }
    out
}

/// Gives each table exactly the partitions of `bounds`, moving its rows; one
/// transaction. Returns the tables changed.
pub fn replan_partitions(client: &mut Client, bounds: &[Day]) -> Result<usize> {
    if bounds.len() + 1 > partition::MAX_PARTITIONS {
        bail!(
            "the plan has {} partitions; kmdb allows at most {} (as MySQL)",
            bounds.len() + 1,
            partition::MAX_PARTITIONS
        );
    }
    let mut tx = client
        .transaction()
        .doing("starting to re-plan partitions")?;
    let mut changed = 0;
    for table in Table::ALL {
        let name = table.name();
        tx.batch_execute(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .doing(&format!("locking {name}"))?;
        let map = partitions(&mut tx, table)?;
        if map.day_bounds() == bounds && map.len() == bounds.len() + 1 {
            continue;
        }
        let old: Vec<&str> = (0..map.len()).map(|i| map.name(i)).collect();
        for sql in replan_sql(table, &old, bounds) {
            tx.batch_execute(&sql)
                .doing(&format!("re-planning the partitions of {name}"))?;
        }
        changed += 1;
    }
    tx.commit().doing("committing the new partitions")?;
    Ok(changed)
}

/// The table of `partition` of `table` (`""`: the table itself).
fn part_table(table: Table, partition: &str) -> String {
    if partition.is_empty() {
        table.name().to_owned()
    } else {
        table_of(table, partition)
    }
}

/// The planner's estimate of the rows of `partition` of `table`; a count
/// when the partition was never analyzed.
pub fn partition_rows(client: &mut Client, table: Table, partition: &str) -> Result<u64> {
    let name = part_table(table, partition);
    let what = format!("estimating the rows of {name}");
    let estimate: f32 = client
        .query_one(
            "SELECT COALESCE((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), 0)",
            &[&name],
        )
        .doing(&what)?
        .get(0);
    if estimate >= 0.0 {
        return Ok(estimate as u64);
    }
    let n: i64 = client
        .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])
        .doing(&what)?
        .get(0);
    Ok(n as u64)
}

pub fn rows_before(client: &mut Client, table: Table, partition: &str, day: Day) -> Result<u64> {
    let name = part_table(table, partition);
    let n: i64 = client
        .query_one(
            &format!("SELECT COUNT(*) FROM {name} WHERE t < $1::text::timestamp"),
            &[&format!("{day} 00:00:00")],
        )
        .doing(&format!("counting the rows of {name} before {day}"))?
        .get(0);
    Ok(n as u64)
}

/// Drops the partitions `drop` of `table`, gives the first range partition
/// left the times before it (from `MINVALUE`, as the plan's first one
/// has), and deletes the rows before `day` from `partition`: one
/// transaction. Returns the rows deleted.
pub fn prune(
    client: &mut Client,
    table: Table,
    drop: &[String],
    partition: &str,
    day: Day,
) -> Result<u64> {
    let name = table.name();
    let what = format!("pruning {name}");
    let mut tx = client.transaction().doing(&what)?;
    if !drop.is_empty() {
        tx.batch_execute(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .doing(&what)?;
        for p in drop {
            let part = table_of(table, p);
            tx.batch_execute(&format!(
                "ALTER TABLE {name} DETACH PARTITION {part}; DROP TABLE {part}"
            ))
            .doing(&format!("dropping partition {part}"))?;
        }
        // The first range partition left starts where a dropped one did.
        let rows: Vec<(String, String)> = tx
            .query(
                "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid)
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = to_regclass($1)",
                &[&name],
            )
            .doing(&what)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let first = rows
            .iter()
            .filter_map(|(part, expr)| match parse_bound(expr) {
                Ok(Bound::Range {
                    from: Some(_),
                    to: Some(to),
                }) => Some((to.clone(), part.clone())),
                _ => None,
            })
            .min();
        let starts_at_min = rows
            .iter()
            .any(|(_, expr)| matches!(parse_bound(expr), Ok(Bound::Range { from: None, .. })));
        if let (Some((to, part)), false) = (first, starts_at_min) {
            // The CHECK spares PostgreSQL the scan proving the rows fit.
            tx.batch_execute(&format!(
                "ALTER TABLE {name} DETACH PARTITION {part};
                 ALTER TABLE {part} ADD CONSTRAINT kmdb_prune_bound CHECK (t < '{to}');
                 ALTER TABLE {name} ATTACH PARTITION {part} FOR VALUES FROM (MINVALUE) TO ('{to}');
                 ALTER TABLE {part} DROP CONSTRAINT kmdb_prune_bound"
            ))
            .doing(&format!("extending {part} to the times before it"))?;
        }
    }
    let deleted = tx
        .execute(
            &format!(
                "DELETE FROM {} WHERE t < $1::text::timestamp",
                part_table(table, partition)
            ),
            &[&format!("{day} 00:00:00")],
        )
        .doing(&format!("deleting the rows of {name} before {day}"))?;
    tx.commit().doing(&what)?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn rows(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, b)| (n.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn partition_tables_are_named_after_their_table() {
        assert_eq!(table_of(Table::Events, "p20140108"), "events_p20140108");
        assert_eq!(table_of(Table::Properties, "pLast"), "properties_plast");
        assert_eq!(table_of(Table::Aliases, partition::LAST), "aliases_plast");
    }

    #[test]
    fn bounds_parse_as_the_catalog_prints_them() {
        assert_eq!(parse_bound("DEFAULT").unwrap(), Bound::Default);
        assert_eq!(
            parse_bound("FOR VALUES FROM (MINVALUE) TO ('2014-01-08 00:00:00')").unwrap(),
            Bound::Range {
                from: None,
                to: Some("2014-01-08 00:00:00".into())
            }
        );
        assert_eq!(
            parse_bound("FOR VALUES FROM ('2014-01-08 00:00:00') TO (MAXVALUE)").unwrap(),
            Bound::Range {
                from: Some("2014-01-08 00:00:00".into()),
                to: None
            }
        );
        for bad in [
            "FOR VALUES IN (1)",
            "FOR VALUES FROM ('08/01/2014 00:00:00') TO (MAXVALUE)",
            "FOR VALUES FROM (MINVALUE) TO ('2014-01-08')",
            "",
        ] {
            let err = parse_bound(bad).unwrap_err().to_string();
            assert!(err.contains("cannot read"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_catalog_gives_mysql_names_in_order() {
        let map = map_from_catalog(
            Table::Events,
            &rows(&[
                ("events_plast", "DEFAULT"),
                (
                    "events_p20140115",
                    "FOR VALUES FROM ('2014-01-08 00:00:00') TO ('2014-01-15 00:00:00')",
                ),
                (
                    "events_p20140108",
                    "FOR VALUES FROM (MINVALUE) TO ('2014-01-08 00:00:00')",
                ),
            ]),
        )
        .unwrap();
        let names: Vec<&str> = (0..map.len()).map(|i| map.name(i)).collect();
        assert_eq!(names, ["p20140108", "p20140115", "pLast"]);
        assert_eq!(map.locate(b"1970-01-01 00:00:00"), 0);
        assert_eq!(map.locate(b"2014-01-08 00:00:00"), 1);
        assert_eq!(map.locate(b"2014-01-15 00:00:00"), 2);
        assert_eq!(map.last_bound(), Some(day("2014-01-15")));

        let setup =
            map_from_catalog(Table::Aliases, &rows(&[("aliases_plast", "DEFAULT")])).unwrap();
        assert_eq!(setup.len(), 1);
        assert_eq!(setup.name(0), "pLast");
        assert_eq!(setup.last_bound(), None);
    }

    #[test]
    fn partitions_kmdb_did_not_make_are_refused() {
        let first = "FOR VALUES FROM (MINVALUE) TO ('2014-01-08 00:00:00')";
        for (list, says) in [
            (vec![], "no DEFAULT partition events_plast"),
            (vec![("events_p20140108", first)], "no DEFAULT partition"),
            (
                vec![("events_plast", "DEFAULT"), ("other", first)],
                "partition other",
            ),
            (
                vec![
                    ("events_plast", "DEFAULT"),
                    (
                        "events_p20140108",
                        "FOR VALUES FROM ('2014-01-01 00:00:00') TO ('2014-01-08 00:00:00')",
                    ),
                ],
                "starts at 2014-01-01 00:00:00",
            ),
            (
                vec![
                    ("events_plast", "DEFAULT"),
                    ("events_p20140108", first),
                    (
                        "events_p20140122",
                        "FOR VALUES FROM ('2014-01-15 00:00:00') TO ('2014-01-22 00:00:00')",
                    ),
                ],
                "not where the one before it ends",
            ),
        ] {
            let err = map_from_catalog(Table::Events, &rows(&list))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("table events is not partitioned"), "{err}");
        }
    }

    #[test]
    fn the_first_partition_holds_everything_before_its_bound() {
        assert_eq!(
            create_sql(Table::Events, None, day("2014-01-08")),
            "CREATE TABLE events_p20140108 PARTITION OF events \
             FOR VALUES FROM (MINVALUE) TO ('2014-01-08 00:00:00')"
        );
        assert_eq!(
            create_sql(
                Table::Properties,
                Some(day("2014-01-08")),
                day("2014-01-15")
            ),
            "CREATE TABLE properties_p20140115 PARTITION OF properties \
             FOR VALUES FROM ('2014-01-08 00:00:00') TO ('2014-01-15 00:00:00')"
        );
    }

    #[test]
    fn a_plan_over_an_empty_default_partition_only_creates() {
        let new = partition::plan(day("2014-01-01"), day("2014-01-20"), 7).unwrap();
        assert_eq!(
            extend_sql(Table::Events, None, &new, DefaultRows::NoneBefore),
            [
                "ALTER TABLE events_plast ADD CONSTRAINT kmdb_plast_bound \
                 CHECK (t >= '2014-01-22 00:00:00')",
                "CREATE TABLE events_p20140108 PARTITION OF events \
                 FOR VALUES FROM (MINVALUE) TO ('2014-01-08 00:00:00')",
                "CREATE TABLE events_p20140115 PARTITION OF events \
                 FOR VALUES FROM ('2014-01-08 00:00:00') TO ('2014-01-15 00:00:00')",
                "CREATE TABLE events_p20140122 PARTITION OF events \
                 FOR VALUES FROM ('2014-01-15 00:00:00') TO ('2014-01-22 00:00:00')",
                "ALTER TABLE events_plast DROP CONSTRAINT kmdb_plast_bound",
            ]
        );
        assert!(extend_sql(Table::Events, None, &[], DefaultRows::AllBefore).is_empty());
    }

    #[test]
    fn extending_moves_the_rows_the_new_partitions_cover() {
        let last = Some(day("2014-01-22"));
        let new = [day("2014-01-29")];
        assert_eq!(
            extend_sql(Table::Aliases, last, &new, DefaultRows::SomeBefore),
            [
                "ALTER TABLE aliases DETACH PARTITION aliases_plast",
                "CREATE TABLE aliases_p20140129 PARTITION OF aliases \
                 FOR VALUES FROM ('2014-01-22 00:00:00') TO ('2014-01-29 00:00:00')",
                "INSERT INTO aliases SELECT * FROM aliases_plast WHERE t < '2014-01-29 00:00:00'",
                "DELETE FROM aliases_plast WHERE t < '2014-01-29 00:00:00'",
                "ALTER TABLE aliases_plast ADD CONSTRAINT kmdb_plast_bound \
                 CHECK (t >= '2014-01-29 00:00:00')",
                "ALTER TABLE aliases ATTACH PARTITION aliases_plast DEFAULT",
                "ALTER TABLE aliases_plast DROP CONSTRAINT kmdb_plast_bound",
            ]
        );
        let all = extend_sql(Table::Aliases, last, &new, DefaultRows::AllBefore);
        assert_eq!(all[2], "INSERT INTO aliases SELECT * FROM aliases_plast");
        assert_eq!(all[3], "TRUNCATE TABLE aliases_plast");
        assert_eq!(all.len(), 7);
    }
}
