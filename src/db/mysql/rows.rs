//! Statements on rows already loaded: removing an interrupted import's
//! rows, the catch-up of earlier imports' rows (SPEC §4, §5), and the
//! history of imports.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::exec;
use crate::db::{self, ImportRecord, LastImport};
use crate::resolve::row_id;
use crate::table::Table;

/// Names per statement in the `IN (...)` lists.
const NAMES_PER_STATEMENT: usize = 500;
/// Ids per statement in the `IN (...)` lists.
const IDS_PER_STATEMENT: usize = 1000;

pub(super) fn remove_revisions(
    conn: &mut Conn,
    revisions: &[u64],
    users: u64,
    keys: u64,
) -> Result<()> {
    let ranges: Vec<String> = runs(revisions)
        .into_iter()
        .map(|(a, b)| format!("id BETWEEN {} AND {}", row_id(a, 0), row_id(b + 1, 0) - 1))
        .collect();
    if !ranges.is_empty() {
        for table in Table::ALL {
            exec(
                conn,
                &format!("DELETE FROM {} WHERE {}", table.name(), ranges.join(" OR ")),
                &format!(
                    "removing the interrupted import's rows from {}",
                    table.name()
                ),
            )?;
        }
    }
    conn.exec_drop("DELETE FROM users WHERE id > ?", (users,))
        .context("removing the interrupted import's users")?;
    conn.exec_drop("DELETE FROM `keys` WHERE id > ?", (keys,))
        .context("removing the interrupted import's keys")?;
    Ok(())
}

/// Runs of consecutive revisions, `(first, last)`, of `revisions` in any order.
fn runs(revisions: &[u64]) -> Vec<(u64, u64)> {
    let mut sorted = revisions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(last) if last.1 + 1 == r => last.1 = r,
            _ => out.push((r, r)),
        }
    }
    out
}

/// `?, ?, ?` for `n` parameters.
fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

pub(super) fn aliases_naming(conn: &mut Conn, names: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in names.chunks(NAMES_PER_STATEMENT) {
        let marks = marks(part.len());
        let params: Vec<mysql::Value> =
            part.iter().chain(part).map(|n| n.as_str().into()).collect();
        let rows: Vec<(String, String)> = conn
            .exec(
                format!("SELECT name1, name2 FROM aliases WHERE name1 IN ({marks}) OR name2 IN ({marks})"),
                params,
            )
            .context("finding aliases of ignored users")?;
        out.extend(rows);
    }
    Ok(out)
}

pub(super) fn user_has_rows(conn: &mut Conn, user: u64) -> Result<bool> {
    let used: Option<u8> = conn.exec_first(
        "SELECT 1 FROM DUAL WHERE EXISTS(SELECT 1 FROM events WHERE user_id = ?)
         OR EXISTS(SELECT 1 FROM properties WHERE user_id = ?)",
        (user, user),
    )?;
    Ok(used.is_some())
}

pub(super) fn delete_rows_of_users(conn: &mut Conn, users: &[u64]) -> Result<()> {
    for part in users.chunks(IDS_PER_STATEMENT) {
        let list = part
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for table in [Table::Events, Table::Properties] {
            exec(
                conn,
                &format!("DELETE FROM {} WHERE user_id IN ({list})", table.name()),
                &format!("deleting rows of ignored users from {}", table.name()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn delete_identities(conn: &mut Conn, names: &[String]) -> Result<()> {
    for part in names.chunks(NAMES_PER_STATEMENT) {
        let marks = marks(part.len());
        let params: Vec<mysql::Value> = part.iter().map(|n| n.as_str().into()).collect();
        conn.exec_drop(
            format!("DELETE FROM users WHERE name IN ({marks})"),
            params.clone(),
        )
        .context("deleting ignored users")?;
        let both: Vec<mysql::Value> = params.iter().chain(params.iter()).cloned().collect();
        conn.exec_drop(
            format!("DELETE FROM aliases WHERE name1 IN ({marks}) OR name2 IN ({marks})"),
            both,
        )
        .context("deleting aliases of ignored users")?;
    }
    Ok(())
}

pub(super) fn repoint_users(conn: &mut Conn, remap: &[(u64, u64)]) -> Result<()> {
    if remap.is_empty() {
        return Ok(());
    }
    exec(
        conn,
        "CREATE TEMPORARY TABLE IF NOT EXISTS kmdb_remap (old_id BIGINT PRIMARY KEY, new_id BIGINT NOT NULL)",
        "creating the table of merged users",
    )?;
    exec(conn, "TRUNCATE TABLE kmdb_remap", "emptying kmdb_remap")?;
    for part in remap.chunks(IDS_PER_STATEMENT) {
        let values = part
            .iter()
            .map(|(a, b)| format!("({a},{b})"))
            .collect::<Vec<_>>()
            .join(",");
        exec(
            conn,
            &format!("INSERT INTO kmdb_remap VALUES {values}"),
            "listing merged users",
        )?;
    }
    for table in [Table::Events, Table::Properties] {
        exec(
            conn,
            &format!(
                "UPDATE {} x JOIN kmdb_remap r ON x.user_id = r.old_id SET x.user_id = r.new_id",
                table.name()
            ),
            &format!("re-pointing merged users' rows in {}", table.name()),
        )?;
    }
    Ok(())
}

/// The counted columns of `kmdb_imports`, quoted (`lines` is a reserved word).
fn accounting_columns() -> Vec<String> {
    db::accounting_columns()
        .into_iter()
        .map(|c| format!("`{c}`"))
        .collect()
}

pub(super) fn record_import(conn: &mut Conn, import: &ImportRecord<'_>) -> Result<u64> {
    let columns = accounting_columns();
    let mut params: Vec<mysql::Value> = vec![
        import.source.as_str().into(),
        import.revisions.as_str().into(),
    ];
    params.extend(
        db::accounting_counts(import.accounting)
            .into_iter()
            .map(mysql::Value::from),
    );
    params.push(import.rejects_file.clone().into());
    params.push(import.state_store.as_str().into());
    params.push(import.host.as_str().into());
    let started = format!("UTC_TIMESTAMP() - INTERVAL {} SECOND", import.seconds);
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    // An earlier try of this import whose state commit failed recorded a
    // row: it is rewritten, so that each import has one.
    let replaces = match import.replaces {
        Some(old) => tx
            .exec_first::<u64, _, _>(
                "SELECT id FROM kmdb_imports WHERE id = ? FOR UPDATE",
                (old,),
            )
            .context("reading the import's earlier row in kmdb_imports")?,
        None => None,
    };
    let id = if let Some(old) = replaces {
        let sets: Vec<String> = ["source", "revisions"]
            .into_iter()
            .map(str::to_owned)
            .chain(columns.iter().cloned())
            .chain(["rejects_file", "state_store", "host"].map(str::to_owned))
            .map(|c| format!("{c} = ?"))
            .collect();
        let mut with_id = params.clone();
        with_id.push(old.into());
        tx.exec_drop(
            format!(
                "UPDATE kmdb_imports SET started_at = {started}, finished_at = UTC_TIMESTAMP(), {},
                 state_generation = NULL WHERE id = ?",
                sets.join(", ")
            ),
            mysql::Params::Positional(with_id),
        )
        .context("recording the import in kmdb_imports")?;
        old
    } else {
        tx.exec_drop(
            format!(
                "INSERT INTO kmdb_imports(started_at, finished_at, source, revisions, {},
                     rejects_file, state_store, host)
                 VALUES({started}, UTC_TIMESTAMP(), ?, ?, {}, ?, ?, ?)",
                columns.join(", "),
                marks(columns.len())
            ),
            mysql::Params::Positional(params),
        )
        .context("recording the import in kmdb_imports")?;
        tx.last_insert_id()
            .context("the server gave no id to the kmdb_imports row")?
    };
    tx.exec_drop("UPDATE kmdb_loading SET import_id = ?", (id,))
        .context("naming the import's row in kmdb_loading")?;
    tx.commit()
        .context("recording the import in kmdb_imports")?;
    Ok(id)
}

pub(super) fn last_import(conn: &mut Conn) -> Result<Option<LastImport>> {
    let columns = accounting_columns();
    let row: Option<mysql::Row> = conn
        .query_first(format!(
            "SELECT id, CAST(finished_at AS CHAR), revisions, rejects_file, {},
                 state_generation, state_store, host
             FROM kmdb_imports WHERE state_generation IS NOT NULL ORDER BY id DESC LIMIT 1",
            columns.join(", ")
        ))
        .context("reading the last import")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let counts: Vec<u64> = (4..4 + columns.len())
        .map(|i| row.get::<u64, _>(i).unwrap_or(0))
        .collect();
    let accounting = db::accounting_from(&counts);
    let at = 4 + columns.len();
    Ok(Some(LastImport {
        state_generation: row
            .get::<Option<String>, _>(at)
            .flatten()
            .unwrap_or_default(),
        state_store: row.get::<Option<String>, _>(at + 1).flatten(),
        host: row.get::<Option<String>, _>(at + 2).flatten(),
        id: row.get(0).unwrap_or(0),
        finished_at: row.get(1).unwrap_or_default(),
        revisions: row.get(2).unwrap_or_default(),
        rejects_file: row.get::<Option<String>, _>(3).flatten(),
        accounting,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_coalesce_into_runs() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[5, 1, 2, 3, 9, 8]), vec![(1, 3), (5, 5), (8, 9)]);
    }
}
