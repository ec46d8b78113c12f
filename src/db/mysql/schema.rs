//! Schema: numbered migrations, the database's identity token, filters,
//! partitions and the bookkeeping of imports.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::{exec, Flavor};
use crate::dates::Day;
use crate::filters::Filters;
use crate::partition::{self, PartitionMap};
use crate::table::{Table, DATA_TABLES};

/// The SQL files of `migrations/`, applied in order and recorded.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "create_tables",
        include_str!("../../../migrations/mysql/0001_create_tables.sql"),
    ),
    (
        2,
        "state_matching",
        include_str!("../../../migrations/mysql/0002_state_matching.sql"),
    ),
    (
        3,
        "rejected_duplicate",
        include_str!("../../../migrations/mysql/0003_rejected_duplicate.sql"),
    ),
];

/// Creates or upgrades the schema; returns the versions applied now.
pub fn setup(conn: &mut Conn) -> Result<Vec<u32>> {
    let flavor = Flavor::detect(conn)?;
    exec(
        conn,
        "CREATE TABLE IF NOT EXISTS kmdb_migrations (
            version INT NOT NULL PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            applied_at DATETIME NOT NULL
         ) ENGINE=InnoDB",
        "creating kmdb_migrations",
    )?;
    let done: HashSet<u32> = conn
        .query::<u32, _>("SELECT version FROM kmdb_migrations")?
        .into_iter()
        .collect();
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        let sql = sql.replace("{NAME}", flavor.name_collation());
        for statement in statements(&sql) {
            exec(
                conn,
                statement,
                &format!("applying migration {version:04}_{name}"),
            )?;
        }
        conn.exec_drop(
            "INSERT INTO kmdb_migrations(version, name, applied_at) VALUES(?, ?, UTC_TIMESTAMP())",
            (version, name),
        )?;
        applied.push(version);
    }
    conn.query_drop(format!(
        "INSERT IGNORE INTO kmdb_meta(name, value) VALUES('token', '{}')",
        new_token()
    ))?;
    Ok(applied)
}

/// Splits a migration file into statements (no `;` inside literals there).
fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(';').map(str::trim).filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    })
}

/// A fresh random token naming one database's contents.
pub fn new_token() -> String {
    crate::state::random_token()
}

/// Fails with "run `kmdb setup`" unless the schema is there and current.
pub fn check(conn: &mut Conn) -> Result<()> {
    let present: Option<String> = conn.query_first(
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name = 'kmdb_migrations'",
    )?;
    if present.is_none() {
        bail!("the database has no kmdb schema: run `kmdb setup` first");
    }
    let latest: Option<u32> = conn.query_first("SELECT MAX(version) FROM kmdb_migrations")?;
    let want = MIGRATIONS.last().map(|m| m.0);
    if latest < want {
        bail!("the database schema is out of date: run `kmdb setup` to upgrade it");
    }
    Ok(())
}

/// The database's identity token (see `kmdb setup`).
pub fn token(conn: &mut Conn) -> Result<String> {
    conn.query_first("SELECT value FROM kmdb_meta WHERE name = 'token'")?
        .context("the database has no kmdb token: run `kmdb setup`")
}

pub fn set_token(conn: &mut Conn, token: &str) -> Result<()> {
    conn.exec_drop(
        "REPLACE INTO kmdb_meta(name, value) VALUES('token', ?)",
        (token,),
    )?;
    Ok(())
}

pub fn filters(conn: &mut Conn) -> Result<Filters> {
    let mut read = |table: &str| -> Result<Vec<String>> {
        conn.query::<String, _>(format!("SELECT name FROM {table} ORDER BY name"))
            .with_context(|| format!("reading filter table {table}"))
    };
    Ok(Filters {
        ignored_users: read("ignored_users")?,
        whitelisted_events: read("whitelisted_events")?.into_iter().collect(),
        blacklisted_properties: read("blacklisted_properties")?.into_iter().collect(),
    })
}

/// The partitions of `table`, in order.
pub fn partitions(conn: &mut Conn, table: Table) -> Result<PartitionMap> {
    let rows: Vec<(Option<String>, Option<String>)> = conn.exec(
        "SELECT partition_name, partition_description FROM information_schema.partitions
         WHERE table_schema = DATABASE() AND table_name = ?
         ORDER BY partition_ordinal_position",
        (table.name(),),
    )?;
    let rows: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|(n, d)| Some((n?, d.unwrap_or_default())))
        .collect();
    PartitionMap::from_descriptions(&rows)
}

/// The partitions of `table` that look empty (`TABLE_ROWS` is InnoDB's
/// estimate: good enough to plan loads, which check again).
pub fn empty_partitions(conn: &mut Conn, table: Table) -> Result<Vec<String>> {
    let names: Vec<Option<String>> = conn.exec(
        "SELECT partition_name FROM information_schema.partitions
         WHERE table_schema = DATABASE() AND table_name = ? AND table_rows = 0",
        (table.name(),),
    )?;
    Ok(names.into_iter().flatten().collect())
}

/// The partitions of `table`, refused unless they end with `pLast` as
/// `kmdb setup` makes them.
fn planned_partitions(conn: &mut Conn, table: Table) -> Result<PartitionMap> {
    let map = partitions(conn, table)?;
    if map.name(map.len() - 1) != partition::LAST {
        bail!(
            "table {} is not partitioned the way kmdb expects (no {} partition): \
             was it created by `kmdb setup`?",
            table.name(),
            partition::LAST
        );
    }
    Ok(map)
}

/// Adds the planned partitions past each table's last bound. Returns the
/// number of partitions added per table.
pub fn extend_partitions(conn: &mut Conn, bounds: &[Day]) -> Result<usize> {
    let mut added = 0;
    for table in Table::ALL {
        let map = planned_partitions(conn, table)?;
        let last = map.last_bound();
        let new: Vec<Day> = bounds
            .iter()
            .copied()
            .filter(|&b| last.is_none_or(|l| b > l))
            .collect();
        if map.len() + new.len() > partition::MAX_PARTITIONS {
            bail!(
                "table {} would have {} partitions; the server allows at most {}",
                table.name(),
                map.len() + new.len(),
                partition::MAX_PARTITIONS
            );
        }
        if new.is_empty() {
            continue;
        }
        exec(
            conn,
            &extend_sql(table.name(), &new),
            &format!("adding partitions to {}", table.name()),
        )?;
        added = new.len();
    }
    Ok(added)
}

/// Gives each table exactly the partitions of `bounds` and `pLast`, moving
/// the rows (a copy of each table that differs). Returns the tables changed.
pub fn replan_partitions(conn: &mut Conn, bounds: &[Day]) -> Result<usize> {
    let mut changed = 0;
    for table in Table::ALL {
        let map = planned_partitions(conn, table)?;
        if map.day_bounds() == bounds && map.len() == bounds.len() + 1 {
            continue;
        }
        let names: Vec<&str> = (0..map.len()).map(|i| map.name(i)).collect();
        exec(
            conn,
            &replan_sql(table.name(), &names, bounds),
            &format!("re-planning the partitions of {}", table.name()),
        )?;
        changed += 1;
    }
    Ok(changed)
}

/// SQL that turns the partitions `names` (all of `table`'s) into those of
/// `bounds` followed by `pLast`.
pub fn replan_sql(table: &str, names: &[&str], bounds: &[Day]) -> String {
    format!(
        "ALTER TABLE `{table}` REORGANIZE PARTITION {} INTO ({})",
        names.join(", "),
        partition_list(bounds)
    )
}

/// `PARTITION p... VALUES LESS THAN ('...'), ..., PARTITION pLast ...`.
fn partition_list(bounds: &[Day]) -> String {
    let mut parts: Vec<String> = bounds
        .iter()
        .map(|&b| {
            format!(
                "PARTITION {} VALUES LESS THAN ('{b}')",
                partition::name_for(b)
            )
        })
        .collect();
    parts.push(format!(
        "PARTITION {} VALUES LESS THAN (MAXVALUE)",
        partition::LAST
    ));
    parts.join(", ")
}

/// SQL that splits `pLast` of `table` into the partitions of `bounds` (all
/// after the table's current last bound) followed by a new `pLast`.
pub fn extend_sql(table: &str, bounds: &[Day]) -> String {
    replan_sql(table, &[partition::LAST], bounds)
}

/// Row counts of the data tables.
pub fn counts(conn: &mut Conn) -> Result<Vec<(&'static str, u64)>> {
    let mut out = Vec::new();
    for table in DATA_TABLES {
        let n: u64 = conn
            .query_first(format!("SELECT COUNT(*) FROM `{table}`"))?
            .unwrap_or(0);
        out.push((table, n));
    }
    Ok(out)
}

/// Empties the data tables, the import history and the import in flight,
/// keeping the filters, and gives the database a new token.
pub fn flush(conn: &mut Conn) -> Result<String> {
    for table in DATA_TABLES
        .into_iter()
        .chain(["kmdb_imports", "kmdb_loading"])
    {
        exec(
            conn,
            &format!("TRUNCATE TABLE `{table}`"),
            &format!("emptying {table}"),
        )?;
    }
    let token = new_token();
    set_token(conn, &token)?;
    Ok(token)
}

/// `` `table` PARTITION (`p`) ``, or just the table for `""`.
fn table_part(table: Table, partition: &str) -> String {
    if partition.is_empty() {
        format!("`{}`", table.name())
    } else {
        format!("`{}` PARTITION (`{partition}`)", table.name())
    }
}

/// InnoDB's estimate of the rows of `partition` of `table`.
pub fn partition_rows(conn: &mut Conn, table: Table, partition: &str) -> Result<u64> {
    let n: Option<Option<u64>> = conn
        .exec_first(
            "SELECT table_rows FROM information_schema.partitions
             WHERE table_schema = DATABASE() AND table_name = ? AND partition_name = ?",
            (table.name(), partition),
        )
        .with_context(|| format!("estimating the rows of {} {partition}", table.name()))?;
    Ok(n.flatten().unwrap_or(0))
}

pub fn rows_before(conn: &mut Conn, table: Table, partition: &str, day: Day) -> Result<u64> {
    let n: Option<u64> = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM {} WHERE t < '{day} 00:00:00'",
            table_part(table, partition)
        ))
        .with_context(|| format!("counting the rows of {} before {day}", table.name()))?;
    Ok(n.unwrap_or(0))
}

pub fn prune(
    conn: &mut Conn,
    table: Table,
    drop: &[String],
    partition: &str,
    day: Day,
) -> Result<u64> {
    let name = table.name();
    if !drop.is_empty() {
        let list: Vec<String> = drop.iter().map(|p| format!("`{p}`")).collect();
        exec(
            conn,
            &format!("ALTER TABLE `{name}` DROP PARTITION {}", list.join(", ")),
            &format!("dropping partitions of {name}"),
        )?;
    }
    conn.query_drop(format!(
        "DELETE FROM {} WHERE t < '{day} 00:00:00'",
        table_part(table, partition)
    ))
    .with_context(|| format!("deleting the rows of {name} before {day}"))?;
    Ok(conn.affected_rows())
}
