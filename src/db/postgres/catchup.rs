//! The statements that bring earlier imports' rows in line with this one
//! (SPEC §4, §5): re-pointing the rows of merged groups, deleting those of
//! groups now ignored, and removing what an interrupted import loaded. The
//! same steps as the MySQL side's, each run in one transaction here.

use std::collections::HashSet;

use anyhow::Result;
use postgres::{Client, GenericClient};

use super::{bigint, Doing};
use crate::resolve::{row_id, Catchup};
use crate::state::Snapshot;
use crate::tsv::Table;

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
pub fn remove_uncommitted(
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

/// Re-points and deletes rows of earlier imports, as `c` says, and clears
/// `snap.stored` for identities that lose their `users` row. One
/// transaction.
pub fn apply_catchup(client: &mut Client, c: &Catchup, snap: &mut Snapshot) -> Result<()> {
    if c.drop_users.is_empty() && c.remap.is_empty() {
        return Ok(());
    }
    let mut tx = client.transaction().doing("starting the catch-up")?;
    if !c.drop_users.is_empty() {
        // Identities named only by an alias with an ignored identity (one
        // that was not applied) lose their reason to be a user too.
        let dropped: HashSet<&str> = c.drop_names.iter().map(String::as_str).collect();
        let mut partners: HashSet<String> = HashSet::new();
        for (a, b) in aliases_naming(&mut tx, &c.drop_names)? {
            partners.extend([a, b].into_iter().filter(|n| !dropped.contains(n.as_str())));
        }
        for name in partners {
            let Some(id) = snap.identities.get(&name) else {
                continue;
            };
            let user = id as u64 + 1;
            let named = aliases_naming(&mut tx, std::slice::from_ref(&name))?
                .iter()
                .any(|(a, b)| {
                    let other = if *a == name { b } else { a };
                    !dropped.contains(other.as_str())
                });
            if !named && !has_rows(&mut tx, user)? {
                tx.execute("DELETE FROM users WHERE id = $1", &[&bigint(user)])
                    .doing("deleting a user named only with ignored users")?;
                if let Some(s) = snap.stored.get_mut(id as usize) {
                    *s = false;
                }
            }
        }
        let ids: Vec<u64> = c.drop_users.iter().copied().collect();
        delete_rows_of_users(&mut tx, &ids)?;
        delete_names(&mut tx, &c.drop_names)?;
        prune_keys(&mut tx)?;
    }
    if !c.remap.is_empty() {
        let pairs: Vec<(u64, u64)> = c.remap.iter().map(|(&a, &b)| (a, b)).collect();
        repoint(&mut tx, &pairs)?;
    }
    tx.commit().doing("committing the catch-up")
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
pub fn has_rows(client: &mut impl GenericClient, user: u64) -> Result<bool> {
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
pub fn delete_names(client: &mut impl GenericClient, names: &[String]) -> Result<()> {
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
pub fn prune_keys(client: &mut impl GenericClient) -> Result<()> {
    client
        .batch_execute(
            "DELETE FROM keys k WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.n = k.id)
             AND NOT EXISTS (SELECT 1 FROM properties p WHERE p.key = k.id)",
        )
        .doing("pruning unused keys")
}

/// Rows carrying the user `old` of a pair carry its `new` one instead.
pub fn repoint(client: &mut impl GenericClient, pairs: &[(u64, u64)]) -> Result<()> {
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
