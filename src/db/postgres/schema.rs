//! Schema on PostgreSQL: numbered migrations applied in one transaction and
//! recorded, the database's identity token, filters, counts and flush.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use postgres::{Client, GenericClient};

use super::Doing;
use crate::db::mysql::schema::new_token;
use crate::filters::Filters;
use crate::table::DATA_TABLES;

/// The SQL files of `migrations/postgres/`, applied in order and recorded.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "create_tables",
        include_str!("../../../migrations/postgres/0001_create_tables.sql"),
    ),
    (
        2,
        "state_matching",
        include_str!("../../../migrations/postgres/0002_state_matching.sql"),
    ),
    (
        3,
        "rejected_duplicate",
        include_str!("../../../migrations/postgres/0003_rejected_duplicate.sql"),
    ),
];

/// Key of the advisory lock that lets one `kmdb setup` run at a time.
const SETUP_LOCK: i64 = 0x6b6d_6462_7365_7475; // "kmdbsetu"

/// Creates or upgrades the schema; returns the versions applied now. All of
/// it commits at once or not at all (DDL is transactional on PostgreSQL).
pub fn setup(client: &mut Client) -> Result<Vec<u32>> {
    let mut tx = client.transaction().doing("starting the setup")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SETUP_LOCK])
        .doing("waiting for another `kmdb setup` to finish")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kmdb_migrations (
            version integer NOT NULL PRIMARY KEY,
            name varchar(255) NOT NULL,
            applied_at timestamp NOT NULL
         )",
    )
    .doing("creating kmdb_migrations")?;
    let done: HashSet<i32> = tx
        .query("SELECT version FROM kmdb_migrations", &[])
        .doing("reading kmdb_migrations")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&(version as i32)) {
            continue;
        }
        let what = format!("applying migration {version:04}_{name}");
        tx.batch_execute(sql).doing(&what)?;
        tx.execute(
            "INSERT INTO kmdb_migrations(version, name, applied_at)
             VALUES($1, $2, now() AT TIME ZONE 'UTC')",
            &[&(version as i32), &name],
        )
        .doing(&what)?;
        applied.push(version);
    }
    tx.execute(
        "INSERT INTO kmdb_meta(name, value) VALUES('token', $1) ON CONFLICT (name) DO NOTHING",
        &[&new_token()],
    )
    .doing("writing the database token")?;
    tx.commit().doing("committing the setup")?;
    Ok(applied)
}

/// Fails with "run `kmdb setup`" unless the schema is there and current.
pub fn check(client: &mut impl GenericClient) -> Result<()> {
    let present: bool = client
        .query_one("SELECT to_regclass('kmdb_migrations') IS NOT NULL", &[])
        .doing("looking for the kmdb schema")?
        .get(0);
    if !present {
        bail!("the database has no kmdb schema: run `kmdb setup` first");
    }
    let latest: Option<i32> = client
        .query_one("SELECT MAX(version) FROM kmdb_migrations", &[])
        .doing("reading kmdb_migrations")?
        .get(0);
    let want = MIGRATIONS.last().map(|m| m.0 as i32);
    if latest < want {
        bail!("the database schema is out of date: run `kmdb setup` to upgrade it");
    }
    Ok(())
}

/// The database's identity token (see `kmdb setup`).
pub fn token(client: &mut impl GenericClient) -> Result<String> {
    client
        .query_opt("SELECT value FROM kmdb_meta WHERE name = 'token'", &[])
        .doing("reading the database token")?
        .map(|r| r.get(0))
        .context("the database has no kmdb token: run `kmdb setup`")
}

pub fn set_token(client: &mut impl GenericClient, token: &str) -> Result<()> {
    client
        .execute(
            "INSERT INTO kmdb_meta(name, value) VALUES('token', $1)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&token],
        )
        .doing("writing the database token")?;
    Ok(())
}

/// The three filter tables of SPEC §4, as read at the start of an import.
pub fn filters(client: &mut impl GenericClient) -> Result<Filters> {
    let mut read = |table: &str| -> Result<Vec<String>> {
        Ok(client
            .query(&format!("SELECT name FROM {table} ORDER BY name"), &[])
            .doing(&format!("reading filter table {table}"))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    };
    Ok(Filters {
        ignored_users: read("ignored_users")?,
        whitelisted_events: read("whitelisted_events")?.into_iter().collect(),
        blacklisted_properties: read("blacklisted_properties")?.into_iter().collect(),
    })
}

/// Row counts of the data tables, in `kmdb status` order.
pub fn counts(client: &mut impl GenericClient) -> Result<Vec<(&'static str, u64)>> {
    let mut out = Vec::new();
    for table in DATA_TABLES {
        let n: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .doing(&format!("counting the rows of {table}"))?
            .get(0);
        out.push((table, n as u64));
    }
    Ok(out)
}

/// Empties the data tables, the import history and the import in flight,
/// keeping the filters, and gives the database a new token: one
/// transaction, so a flush happens whole or not at all. Returns the new
/// token.
pub fn flush(client: &mut Client) -> Result<String> {
    let mut tx = client.transaction().doing("starting the flush")?;
    tx.batch_execute(
        "TRUNCATE TABLE events, properties, aliases, users, keys, kmdb_imports, kmdb_loading \
         RESTART IDENTITY",
    )
    .doing("emptying the data tables")?;
    let token = new_token();
    set_token(&mut tx, &token)?;
    tx.commit().doing("committing the flush")?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Reject;

    #[test]
    fn the_migration_creates_what_spec_6_lists() {
        let sql = MIGRATIONS[0].2;
        for table in [
            "keys",
            "users",
            "events",
            "properties",
            "aliases",
            "ignored_users",
            "whitelisted_events",
            "blacklisted_properties",
            "kmdb_meta",
            "kmdb_imports",
        ] {
            assert!(
                sql.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
                "{table}"
            );
        }
        let all: String = MIGRATIONS.iter().map(|m| m.2).collect();
        for reason in Reject::ALL {
            assert!(
                all.contains(&format!("rejected_{} bigint", reason.as_str())),
                "{reason:?}"
            );
        }
        let code = all.lines().filter(|l| !l.trim_start().starts_with("--"));
        assert!(code.clone().all(|l| !l.contains('`')), "no MySQL quoting");
    }
}
