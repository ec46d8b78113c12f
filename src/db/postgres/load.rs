//! `COPY … FROM STDIN` of kmdb's TSV batches, exactly once.
//!
//! The files are MySQL `LOAD DATA` text (see `crate::rows`); they go to the
//! server in COPY's binary format, converted on the way (`super::binary`),
//! which the server loads faster than text. (U+0000, which no PostgreSQL
//! text holds, never occurs: on this target it becomes U+FFFD upstream,
//! SPEC §8.)
//!
//! A partition (or table) found empty under an exclusive lock is truncated
//! and filled by one plain `COPY … FREEZE` in the same transaction: its rows
//! are written frozen, and on a server with `wal_level = minimal` without
//! WAL. If the load dies, the transaction rolls back and the partition is
//! empty again for the re-run. Any other file is copied into a temporary
//! table and inserted from there with `ON CONFLICT DO NOTHING`, so that a
//! re-run skips the rows already there (`users` and `keys` rows replace
//! theirs instead, as MySQL's `REPLACE`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use postgres::{Client, CopyInWriter, Transaction};

use super::binary::{BinaryRows, Field};
use super::partition::table_of;
use super::{failed, Doing};
use crate::rows::{merge_runs, TsvFile};
use crate::table::Table;

/// Columns of a table's TSV files, in order.
pub fn columns(table: Table) -> &'static str {
    match table {
        Table::Events => "id, t, n, user_id",
        Table::Properties => "id, t, key, value, user_id, event_id",
        Table::Aliases => "id, t, name1, name2, applied",
    }
}

/// The types of [`columns`] (migrations/postgres/0001_create_tables.sql).
fn fields(table: Table) -> &'static [Field] {
    use Field::*;
    match table {
        Table::Events => &[Int8, Timestamp, Int4, Int8],
        Table::Properties => &[Int8, Timestamp, Int4, Text, Int8, Int8],
        Table::Aliases => &[Int8, Timestamp, Text, Text, Int2],
    }
}

/// The tables whose rows replace the rows with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// `id, name, alias_of`; names are unique.
    Users,
    /// `id, string`; strings are unique.
    Keys,
}

impl Replace {
    pub fn table(self) -> &'static str {
        match self {
            Replace::Users => "users",
            Replace::Keys => "keys",
        }
    }

    pub fn columns(self) -> &'static str {
        match self {
            Replace::Users => "id, name, alias_of",
            Replace::Keys => "id, string",
        }
    }

    /// The types of [`Replace::columns`].
    fn fields(self) -> &'static [Field] {
        match self {
            Replace::Users => &[Field::Int8, Field::Text, Field::Int8],
            Replace::Keys => &[Field::Int4, Field::Text],
        }
    }

    /// The unique column besides `id`, and the columns an update sets.
    fn unique(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Replace::Users => ("name", &["name", "alias_of"]),
            Replace::Keys => ("string", &["string"]),
        }
    }
}

/// What a file's rows do to the rows already there with the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnConflict {
    /// They stay (`(t, id)` is the same row: a re-run).
    Skip,
    Replace(Replace),
}

/// Where rows go: `table` (a partition or a plain table) of `parent`.
struct Target<'a> {
    table: &'a str,
    parent: &'a str,
    columns: &'a str,
    fields: &'static [Field],
    on_conflict: OnConflict,
}

impl Target<'static> {
    /// The `users` or `keys` table, whose rows replace theirs.
    fn replacing(which: Replace) -> Target<'static> {
        Target {
            table: which.table(),
            parent: which.table(),
            columns: which.columns(),
            fields: which.fields(),
            on_conflict: OnConflict::Replace(which),
        }
    }
}

/// `COPY table (columns) FROM STDIN`, binary format, frozen or not.
pub fn copy_sql(table: &str, columns: &str, freeze: bool) -> String {
    let freeze = if freeze { ", FREEZE" } else { "" };
    format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary{freeze})")
}

/// Name of the session's temporary table for rows of `parent`.
fn stage_of(parent: &str) -> String {
    format!("kmdb_stage_{parent}")
}

/// The statement that moves the staged rows into `target`.
fn insert_sql(target: &Target<'_>) -> String {
    let stage = stage_of(target.parent);
    let (table, columns) = (target.table, target.columns);
    match target.on_conflict {
        OnConflict::Skip => format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"
        ),
        OnConflict::Replace(r) => {
            let (_, update) = r.unique();
            let set: Vec<String> = update
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} \
                 ON CONFLICT (id) DO UPDATE SET {}",
                set.join(", ")
            )
        }
    }
}

/// The statement that first deletes rows that hold a staged row's unique
/// name under another id (MySQL's `REPLACE` deletes them too).
fn evict_sql(target: &Target<'_>) -> Option<String> {
    let OnConflict::Replace(r) = target.on_conflict else {
        return None;
    };
    let (unique, _) = r.unique();
    Some(format!(
        "DELETE FROM {} x USING {} s WHERE x.{unique} = s.{unique} AND x.id <> s.id",
        target.table,
        stage_of(target.parent)
    ))
}

/// What a COPY reads: TSV files (sorted runs, merged on the way when more
/// than one) or rows in memory.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    Files(&'a [PathBuf]),
    Bytes(&'a [u8]),
}

/// A COPY that failed: reading the rows, or on the server's side.
enum CopyError {
    Read(std::io::Error),
    Server(postgres::Error),
}

impl From<std::io::Error> for CopyError {
    /// The COPY writer's errors are the server's, wrapped in `io::Error`;
    /// any other is reading or converting the rows.
    fn from(e: std::io::Error) -> CopyError {
        if e.get_ref()
            .is_some_and(|inner| inner.is::<postgres::Error>())
        {
            let inner = e.into_inner().expect("checked above");
            return match inner.downcast::<postgres::Error>() {
                Ok(server) => CopyError::Server(*server),
                Err(other) => CopyError::Read(std::io::Error::other(other)),
            };
        }
        CopyError::Read(e)
    }
}

/// Streams `rows` into an open COPY of `fields` and finishes it; returns
/// the rows copied.
fn send(
    mut copy: CopyInWriter<'_>,
    fields: &'static [Field],
    rows: Rows<'_>,
) -> Result<u64, CopyError> {
    let mut out = BinaryRows::new(&mut copy, fields);
    match rows {
        Rows::Bytes(b) => out.write_all(b)?,
        Rows::Files([one]) => {
            std::io::copy(&mut File::open(one)?, &mut out)?;
        }
        Rows::Files(parts) => merge_runs(parts, &mut out)?,
    }
    out.finish()?;
    copy.finish().map_err(CopyError::Server)
}

/// One load session, on a connection of its own.
pub struct PgLoader {
    client: Client,
}

impl PgLoader {
    pub fn new(mut client: Client) -> Result<PgLoader> {
        // Staged batches stay in memory (the default is 8 MB); settable only
        // before the session's first temporary table.
        client
            .batch_execute("SET temp_buffers = '256MB'")
            .doing("setting up a load session")?;
        Ok(PgLoader { client })
    }

    /// Loads one TSV file into its partition; returns the rows inserted.
    pub fn load(&mut self, file: &TsvFile) -> Result<u64> {
        let table = table_of(file.table, &file.partition);
        let target = Target {
            table: &table,
            parent: file.table.name(),
            columns: columns(file.table),
            fields: fields(file.table),
            on_conflict: OnConflict::Skip,
        };
        let what = format!("loading {}", file.path.display());
        copy(&mut self.client, &target, Rows::Files(&file.parts), &what)
    }

    /// Loads `users` or `keys` rows, each replacing the row with its id (or
    /// its name); returns the rows inserted or replaced.
    pub fn replace(&mut self, which: Replace, rows: Rows<'_>, what: &str) -> Result<u64> {
        copy(&mut self.client, &Target::replacing(which), rows, what)
    }
}

impl crate::db::Loader for PgLoader {
    fn load(&mut self, file: &TsvFile) -> Result<u64> {
        PgLoader::load(self, file)
    }

    fn load_users(&mut self, path: &Path) -> Result<u64> {
        let parts = [path.to_owned()];
        let what = format!("loading {}", path.display());
        self.replace(Replace::Users, Rows::Files(&parts), &what)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Copies `rows` into `target` in one transaction, exactly once (see the
/// module's comment); returns the rows inserted (or replaced).
fn copy(client: &mut Client, target: &Target<'_>, rows: Rows<'_>, what: &str) -> Result<u64> {
    let mut tx = client.transaction().doing(what)?;
    // Two sessions must not both find the table empty and fill it.
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        target.table
    ))
    .doing(what)?;
    let row = tx
        .query_one(
            &format!(
                "SELECT EXISTS(SELECT 1 FROM {0}), has_table_privilege('{0}', 'TRUNCATE')",
                target.table
            ),
            &[],
        )
        .doing(what)?;
    let (filled, may_truncate): (bool, bool) = (row.get(0), row.get(1));
    let copied = if !filled && may_truncate {
        // Truncated in this transaction: COPY may freeze its rows and,
        // under wal_level = minimal, skip the WAL.
        tx.batch_execute(&format!("TRUNCATE TABLE {}", target.table))
            .doing(what)?;
        copy_into(&mut tx, target.table, target, true, rows, what)?
    } else if !filled {
        copy_into(&mut tx, target.table, target, false, rows, what)?
    } else {
        let stage = stage_of(target.parent);
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {} INCLUDING DEFAULTS); \
             TRUNCATE TABLE {stage}",
            target.parent
        ))
        .doing(what)?;
        copy_into(&mut tx, &stage, target, false, rows, what)?;
        if let Some(evict) = evict_sql(target) {
            tx.execute(&evict, &[]).doing(what)?;
        }
        tx.execute(&insert_sql(target), &[]).doing(what)?
    };
    tx.commit().doing(what)?;
    Ok(copied)
}

/// One COPY of `rows` into `table` (the target's, or its stage), in `tx`.
fn copy_into(
    tx: &mut Transaction<'_>,
    table: &str,
    target: &Target<'_>,
    freeze: bool,
    rows: Rows<'_>,
    what: &str,
) -> Result<u64> {
    let sql = copy_sql(table, target.columns, freeze);
    let copy = tx.copy_in(&sql).doing(what)?;
    send(copy, target.fields, rows).map_err(|e| match e {
        CopyError::Server(e) => failed(e, what),
        CopyError::Read(e) => anyhow::Error::new(e).context(what.to_owned()),
    })
}

/// Loads `users` or `keys` rows held in memory on `client`, as
/// [`Loader::replace`] does.
pub fn replace_rows(client: &mut Client, which: Replace, rows: &[u8]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    copy(
        client,
        &Target::replacing(which),
        Rows::Bytes(rows),
        &format!("loading {}", which.table()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_columns_are_the_tables_columns_in_postgres_spelling() {
        for table in Table::ALL {
            // The same columns as the MySQL side, without its backquotes.
            assert_eq!(columns(table), table.columns().replace('`', ""));
            assert_eq!(fields(table).len(), columns(table).split(", ").count());
        }
        for which in [Replace::Users, Replace::Keys] {
            assert_eq!(which.fields().len(), which.columns().split(", ").count());
        }
    }

    #[test]
    fn copy_statements() {
        assert_eq!(
            copy_sql("events_p20140108", columns(Table::Events), true),
            "COPY events_p20140108 (id, t, n, user_id) FROM STDIN (FORMAT binary, FREEZE)"
        );
        assert_eq!(
            copy_sql("users", Replace::Users.columns(), false),
            "COPY users (id, name, alias_of) FROM STDIN (FORMAT binary)"
        );
    }

    #[test]
    fn staged_rows_skip_or_replace() {
        let skip = Target {
            table: "events_plast",
            parent: "events",
            columns: columns(Table::Events),
            fields: fields(Table::Events),
            on_conflict: OnConflict::Skip,
        };
        assert_eq!(
            insert_sql(&skip),
            "INSERT INTO events_plast (id, t, n, user_id) SELECT id, t, n, user_id \
             FROM kmdb_stage_events ON CONFLICT DO NOTHING"
        );
        assert_eq!(evict_sql(&skip), None);
        let users = Target::replacing(Replace::Users);
        assert_eq!(
            insert_sql(&users),
            "INSERT INTO users (id, name, alias_of) SELECT id, name, alias_of \
             FROM kmdb_stage_users ON CONFLICT (id) DO UPDATE \
             SET name = EXCLUDED.name, alias_of = EXCLUDED.alias_of"
        );
        assert_eq!(
            evict_sql(&users).unwrap(),
            "DELETE FROM users x USING kmdb_stage_users s WHERE x.name = s.name AND x.id <> s.id"
        );
    }
}
