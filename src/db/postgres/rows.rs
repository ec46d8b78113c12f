//! Statements on rows already loaded: removing an interrupted import's
//! rows, the catch-up of earlier imports' rows (SPEC §4, §5: re-pointing
//! merged groups' rows, deleting ignored ones'), and the history of
//! imports.

use anyhow::Result;
use postgres::types::ToSql;
use postgres::{Client, GenericClient};

use super::{bigint, Doing};
use crate::db::{self, ImportRecord, LastImport};
use crate::report::Accounting;
use crate::resolve::row_id;
use crate::table::Table;

/// `id BETWEEN first AND last OR …`: the ids of the rows of `revisions`.
pub fn revision_ranges(revisions: &[u64]) -> String {
    let ranges: Vec<String> = revisions
        .iter()
        .map(|&r| format!("id BETWEEN {} AND {}", row_id(r, 0), row_id(r + 1, 0) - 1))
        .collect();
    if ranges.is_empty() {
        "false".to_owned()
    } else {
        ranges.join(" OR ")
    }
}

/// Deletes what an interrupted import may have loaded: the rows of its
/// revisions, and the users and keys numbered after the `users` and `keys`
/// the state store knows.
pub fn remove_revisions(
    client: &mut Client,
    revisions: &[u64],
    users: u64,
    keys: u64,
) -> Result<()> {
    let mut tx = client
        .transaction()
        .doing("removing the interrupted import's rows")?;
    let ranges = revision_ranges(revisions);
    for table in Table::ALL {
        let name = table.name();
        tx.batch_execute(&format!("DELETE FROM {name} WHERE {ranges}"))
            .doing(&format!(
                "removing the interrupted import's rows from {name}"
            ))?;
    }
    tx.execute("DELETE FROM users WHERE id > $1", &[&bigint(users)])
        .doing("removing the interrupted import's users")?;
    tx.execute(
        "DELETE FROM keys WHERE id > $1",
        &[&(keys.min(i32::MAX as u64) as i32)],
    )
    .doing("removing the interrupted import's keys")?;
    tx.commit()
        .doing("committing the removal of the interrupted import's rows")
}

/// The `(name1, name2)` of the aliases that name any of `names`.
pub fn aliases_naming(
    client: &mut impl GenericClient,
    names: &[String],
) -> Result<Vec<(String, String)>> {
    Ok(client
        .query(
            "SELECT name1, name2 FROM aliases WHERE name1 = ANY($1) OR name2 = ANY($1)",
            &[&names],
        )
        .doing("finding aliases of ignored users")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Whether events or properties rows carry the user `user`.
pub fn user_has_rows(client: &mut impl GenericClient, user: u64) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM events WHERE user_id = $1)
                 OR EXISTS(SELECT 1 FROM properties WHERE user_id = $1)",
            &[&bigint(user)],
        )
        .doing("looking for rows of a user")?
        .get(0))
}

/// Deletes the events and properties rows of the users `ids`.
pub fn delete_rows_of_users(client: &mut impl GenericClient, ids: &[u64]) -> Result<()> {
    let ids: Vec<i64> = ids.iter().map(|&i| bigint(i)).collect();
    for table in ["events", "properties"] {
        client
            .execute(
                &format!("DELETE FROM {table} WHERE user_id = ANY($1)"),
                &[&ids],
            )
            .doing(&format!("deleting rows of ignored users from {table}"))?;
    }
    Ok(())
}

/// Deletes the users named `names` and the aliases naming them.
pub fn delete_identities(client: &mut impl GenericClient, names: &[String]) -> Result<()> {
    client
        .execute("DELETE FROM users WHERE name = ANY($1)", &[&names])
        .doing("deleting ignored users")?;
    client
        .execute(
            "DELETE FROM aliases WHERE name1 = ANY($1) OR name2 = ANY($1)",
            &[&names],
        )
        .doing("deleting aliases of ignored users")?;
    Ok(())
}

/// Names no event or property uses any more leave the dictionary, as if
/// never seen (the import puts back any it uses again).
pub fn delete_unused_keys(client: &mut impl GenericClient) -> Result<()> {
    client
        .batch_execute(
            "DELETE FROM keys k WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.n = k.id)
             AND NOT EXISTS (SELECT 1 FROM properties p WHERE p.key = k.id)",
        )
        .doing("pruning unused keys")
}

/// Rows carrying the user `old` of a pair carry its `new` one instead.
pub fn repoint_users(client: &mut impl GenericClient, pairs: &[(u64, u64)]) -> Result<()> {
    client
        .batch_execute(
            "CREATE TEMP TABLE IF NOT EXISTS kmdb_remap
               (old_id bigint PRIMARY KEY, new_id bigint NOT NULL);
             TRUNCATE TABLE kmdb_remap",
        )
        .doing("creating the table of merged users")?;
    for part in pairs.chunks(100_000) {
        let old: Vec<i64> = part.iter().map(|p| bigint(p.0)).collect();
        let new: Vec<i64> = part.iter().map(|p| bigint(p.1)).collect();
        client
            .execute(
                "INSERT INTO kmdb_remap SELECT * FROM unnest($1::bigint[], $2::bigint[])",
                &[&old, &new],
            )
            .doing("filling the table of merged users")?;
    }
    // A temporary table has no statistics until analyzed: the planner
    // would guess its size.
    client
        .batch_execute("ANALYZE kmdb_remap")
        .doing("analyzing the table of merged users")?;
    for table in ["events", "properties"] {
        client
            .batch_execute(&format!(
                "UPDATE {table} x SET user_id = r.new_id FROM kmdb_remap r \
                 WHERE x.user_id = r.old_id"
            ))
            .doing(&format!("re-pointing merged users' rows in {table}"))?;
    }
    Ok(())
}

fn accounting_values(a: &Accounting) -> Vec<i64> {
    db::accounting_counts(a).into_iter().map(bigint).collect()
}

/// Adds the import to `kmdb_imports` (or rewrites the row of an earlier
/// try) and names it in `kmdb_loading`, in one transaction.
pub fn record_import(client: &mut Client, import: &ImportRecord<'_>) -> Result<u64> {
    let what = "recording the import in kmdb_imports";
    let columns = db::accounting_columns();
    let counts = accounting_values(import.accounting);
    let secs = import.seconds as f64;
    // $1 seconds, $2 source, $3 revisions, $4 rejects file, $5 state store,
    // $6 host, then the counts.
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &secs,
        &import.source,
        &import.revisions,
        &import.rejects_file,
        &import.state_store,
        &import.host,
    ];
    params.extend(counts.iter().map(|c| c as &(dyn ToSql + Sync)));
    let marks: Vec<String> = (0..columns.len()).map(|i| format!("${}", i + 7)).collect();
    let started = "(now() AT TIME ZONE 'UTC') - make_interval(secs => $1)";
    let mut tx = client.transaction().doing(what)?;
    let replaces = match import.replaces {
        Some(old) => tx
            .query_opt(
                "SELECT id FROM kmdb_imports WHERE id = $1 FOR UPDATE",
                &[&bigint(old)],
            )
            .doing("reading the import's earlier row in kmdb_imports")?
            .map(|r| r.get::<_, i64>(0)),
        None => None,
    };
    let id: i64 = if let Some(old) = replaces {
        let sets: Vec<String> = columns
            .iter()
            .zip(&marks)
            .map(|(c, m)| format!("{c} = {m}"))
            .collect();
        let at = format!("${}", params.len() + 1);
        params.push(&old);
        tx.execute(
            &format!(
                "UPDATE kmdb_imports SET started_at = {started},
                   finished_at = now() AT TIME ZONE 'UTC', source = $2, revisions = $3,
                   rejects_file = $4, state_store = $5, host = $6, {},
                   state_generation = NULL WHERE id = {at}",
                sets.join(", ")
            ),
            &params,
        )
        .doing(what)?;
        old
    } else {
        tx.query_one(
            &format!(
                "INSERT INTO kmdb_imports(started_at, finished_at, source, revisions,
                   rejects_file, state_store, host, {})
                 VALUES({started}, now() AT TIME ZONE 'UTC', $2, $3, $4, $5, $6, {})
                 RETURNING id",
                columns.join(", "),
                marks.join(", ")
            ),
            &params,
        )
        .doing(what)?
        .get(0)
    };
    tx.execute("UPDATE kmdb_loading SET import_id = $1", &[&id])
        .doing("naming the import's row in kmdb_loading")?;
    tx.commit().doing(what)?;
    Ok(id as u64)
}

/// The newest import a state store committed.
pub fn last_import(client: &mut Client) -> Result<Option<LastImport>> {
    let columns = db::accounting_columns();
    let row = client
        .query_opt(
            &format!(
                "SELECT id, to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS'), revisions,
                        rejects_file, state_generation, state_store, host, {}
                 FROM kmdb_imports WHERE state_generation IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                columns.join(", ")
            ),
            &[],
        )
        .doing("reading the last import")?;
    let Some(r) = row else {
        return Ok(None);
    };
    let counts: Vec<u64> = (7..7 + columns.len())
        .map(|i| r.get::<_, i64>(i) as u64)
        .collect();
    let accounting = db::accounting_from(&counts);
    Ok(Some(LastImport {
        id: r.get::<_, i64>(0) as u64,
        finished_at: r.get(1),
        revisions: r.get(2),
        rejects_file: r.get(3),
        state_generation: r.get::<_, Option<String>>(4).unwrap_or_default(),
        state_store: r.get(5),
        host: r.get(6),
        accounting,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_id_ranges() {
        assert_eq!(revision_ranges(&[]), "false");
        assert_eq!(
            revision_ranges(&[1, 3]),
            format!(
                "id BETWEEN {} AND {} OR id BETWEEN {} AND {}",
                1u64 << 40,
                (2u64 << 40) - 1,
                3u64 << 40,
                (4u64 << 40) - 1
            )
        );
    }
}
