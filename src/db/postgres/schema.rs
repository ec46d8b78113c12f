//! Schema on PostgreSQL: numbered migrations applied in one transaction and
//! recorded, the database's identity token, filters, counts, flush, and the
//! bookkeeping of imports.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use postgres::{Client, GenericClient};

use super::{bigint, Doing};
use crate::db::schema::{new_token, Filters};
use crate::record::Reject;
use crate::report::Accounting;

/// The SQL files of `migrations/postgres/`, applied in order and recorded.
const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "create_tables",
    include_str!("../../../migrations/postgres/0001_create_tables.sql"),
)];

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
    for table in ["events", "properties", "aliases", "users", "keys"] {
        let n: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .doing(&format!("counting the rows of {table}"))?
            .get(0);
        out.push((table, n as u64));
    }
    Ok(out)
}

/// Empties the data tables and the import history, keeping the filters, and
/// gives the database a new token: one transaction, so a flush happens
/// whole or not at all. Returns the new token.
pub fn flush(client: &mut Client) -> Result<String> {
    let mut tx = client.transaction().doing("starting the flush")?;
    tx.batch_execute(
        "TRUNCATE TABLE events, properties, aliases, users, keys, kmdb_imports RESTART IDENTITY",
    )
    .doing("emptying the data tables")?;
    let token = new_token();
    set_token(&mut tx, &token)?;
    tx.commit().doing("committing the flush")?;
    Ok(token)
}

/// Whether `kmdb_imports` holds the import numbered `id`.
pub fn import_exists(client: &mut impl GenericClient, id: u64) -> Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM kmdb_imports WHERE id = $1", &[&bigint(id)])
        .doing("reading kmdb_imports")?
        .is_some())
}

/// Imports recorded in `kmdb_imports`.
pub fn import_count(client: &mut impl GenericClient) -> Result<u64> {
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM kmdb_imports", &[])
        .doing("reading kmdb_imports")?
        .get(0);
    Ok(n as u64)
}

/// `1`, `3-7`: the revisions of an import as `kmdb_imports.revisions` has them.
pub fn revisions_label(revisions: &[(u64, u64)]) -> String {
    match (revisions.first(), revisions.last()) {
        (Some(f), Some(l)) if f.0 == l.0 => f.0.to_string(),
        (Some(f), Some(l)) => format!("{}-{}", f.0, l.0),
        _ => String::new(),
    }
}

/// Records an import's accounting; returns its `kmdb_imports.id`.
pub fn record_import(
    client: &mut impl GenericClient,
    source: &str,
    a: &Accounting,
    revisions: &[(u64, u64)],
    rejects: Option<&Path>,
    took: Duration,
) -> Result<u64> {
    let rejected: Vec<String> = Reject::ALL
        .iter()
        .map(|r| format!("rejected_{}", r.as_str()))
        .collect();
    let counts: Vec<i64> = [a.lines, a.blank, a.events, a.property_sets, a.aliases]
        .into_iter()
        .chain(a.rejected)
        .map(bigint)
        .collect();
    // $1 elapsed seconds, $2 source, $3 revisions, $4 rejects file, then counts.
    let marks: Vec<String> = (0..counts.len()).map(|i| format!("${}", i + 5)).collect();
    let sql = format!(
        "INSERT INTO kmdb_imports(started_at, finished_at, source, revisions, rejects_file,
           lines, blank, events, property_sets, aliases, {})
         VALUES((now() AT TIME ZONE 'UTC') - make_interval(secs => $1),
                now() AT TIME ZONE 'UTC', $2, $3, $4, {})
         RETURNING id",
        rejected.join(", "),
        marks.join(", ")
    );
    let secs = took.as_secs() as f64;
    let revs = revisions_label(revisions);
    let file = rejects.map(|p| p.display().to_string());
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&secs, &source, &revs, &file];
    params.extend(
        counts
            .iter()
            .map(|c| c as &(dyn postgres::types::ToSql + Sync)),
    );
    let id: i64 = client
        .query_one(&sql, &params)
        .doing("recording the import in kmdb_imports")?
        .get(0);
    Ok(id as u64)
}

/// The last import, as `kmdb status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastImport {
    pub id: u64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub finished_at: String,
    pub revisions: String,
    pub lines: u64,
    pub events: u64,
    pub property_sets: u64,
    pub aliases: u64,
    pub rejected: u64,
    pub rejects_file: Option<String>,
}

pub fn last_import(client: &mut impl GenericClient) -> Result<Option<LastImport>> {
    let rejected: Vec<String> = Reject::ALL
        .iter()
        .map(|r| format!("rejected_{}", r.as_str()))
        .collect();
    let row = client
        .query_opt(
            &format!(
                "SELECT id, to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS'), revisions, lines,
                        events, property_sets, aliases, {}, rejects_file
                 FROM kmdb_imports ORDER BY id DESC LIMIT 1",
                rejected.join(" + ")
            ),
            &[],
        )
        .doing("reading the last import")?;
    Ok(row.map(|r| {
        let n = |i: usize| r.get::<_, i64>(i) as u64;
        LastImport {
            id: n(0),
            finished_at: r.get(1),
            revisions: r.get(2),
            lines: n(3),
            events: n(4),
            property_sets: n(5),
            aliases: n(6),
            rejected: n(7),
            rejects_file: r.get(8),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_labelled_as_on_mysql() {
        assert_eq!(revisions_label(&[]), "");
        assert_eq!(revisions_label(&[(4, 10)]), "4");
        assert_eq!(revisions_label(&[(3, 1), (4, 1), (7, 2)]), "3-7");
    }

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
        for reason in Reject::ALL {
            assert!(sql.contains(&format!("rejected_{} bigint", reason.as_str())));
        }
        let code = sql.lines().filter(|l| !l.trim_start().starts_with("--"));
        assert!(code.clone().all(|l| !l.contains('`')), "no MySQL quoting");
    }
}
