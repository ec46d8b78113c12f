//! `LOAD DATA LOCAL INFILE` of the batch files an import wrote, and the
//! local-infile handler that serves those files and nothing else.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler};

use crate::db::{Loader, PartitionLocks};
use crate::rows::TsvFile;
use crate::table::{Table, USERS, USERS_COLUMNS};

/// The files this process wrote and may hand to the server. A server that
/// asks for any other path (a `LOAD DATA LOCAL` request is the server's to
/// make) is refused.
#[derive(Default)]
pub struct InfileAllowlist {
    /// Name the server may ask for → the files sent for it.
    files: Mutex<HashMap<PathBuf, Vec<PathBuf>>>,
}

impl InfileAllowlist {
    pub fn allow(&self, path: &Path) {
        self.allow_parts(path, &[path.to_owned()]);
    }

    /// Allows `path`, served as the merge of the sorted `parts`.
    pub fn allow_parts(&self, path: &Path, parts: &[PathBuf]) {
        self.files
            .lock()
            .expect("allowlist lock")
            .insert(path.to_owned(), parts.to_vec());
    }

    pub fn revoke(&self, path: &Path) {
        self.files.lock().expect("allowlist lock").remove(path);
    }

    fn parts(&self, path: &Path) -> Option<Vec<PathBuf>> {
        self.files
            .lock()
            .expect("allowlist lock")
            .get(path)
            .cloned()
    }
}

pub(super) fn handler(allow: Arc<InfileAllowlist>) -> LocalInfileHandler {
    LocalInfileHandler::new(move |name, out| {
        let path = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        let Some(parts) = allow.parts(&path) else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "kmdb refuses to send {}: not a file of this import",
                    path.display()
                ),
            ));
        };
        let mut out = StopOnInterrupt(out);
        if parts.len() > 1 {
            crate::rows::merge_runs(&parts, &mut out)?;
            return out.flush();
        }
        let mut file = File::open(&parts[0])?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        out.flush()
    })
}

/// A writer that fails once Ctrl-C was pressed: the server then rolls the
/// `LOAD DATA` back, and a long load stops within a megabyte.
struct StopOnInterrupt<W>(W);

impl<W: Write> Write for StopOnInterrupt<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if crate::interrupt::requested() {
            return Err(io::Error::other("kmdb was interrupted"));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Quotes a path as an SQL string literal (paths are ours, but be exact).
fn quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The `LOAD DATA` statement for one TSV file. `mode` is `IGNORE` (rows of a
/// re-run already there are skipped) or `REPLACE`.
pub fn load_sql(path: &Path, table: &str, partition: &str, columns: &str, mode: &str) -> String {
    let partition = if partition.is_empty() {
        String::new()
    } else {
        format!(" PARTITION ({partition})")
    };
    format!(
        "LOAD DATA LOCAL INFILE {} {mode} INTO TABLE `{table}`{partition} \
         CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' \
         LINES TERMINATED BY '\\n' ({columns})",
        quote(path)
    )
}

/// Loads one file; rows already present (same `(t, id)`) are skipped.
/// Returns the rows inserted.
fn load_straight(conn: &mut Conn, file: &TsvFile) -> Result<u64> {
    let sql = load_sql(
        &file.path,
        file.table.name(),
        &file.partition,
        file.table.columns(),
        "IGNORE",
    );
    run_load(conn, &sql, &file.path)
}

/// Prefix of the staging tables; [`drop_stages`] removes any left behind.
const STAGE_PREFIX: &str = "kmdb_stage_";

/// One load session. A file for an empty partition is bulk-loaded into an
/// empty, unpartitioned copy of its table, which then changes place with the
/// partition (`EXCHANGE PARTITION`): with `unique_checks` and
/// `foreign_key_checks` off, InnoDB fills an empty table by sorting each
/// index once, without undo records. Any other file goes straight into its
/// partition with `IGNORE`, so that a re-run skips the rows already there.
pub struct MySqlLoader<'a> {
    conn: Conn,
    /// The files this session's server may ask for.
    allow: Arc<InfileAllowlist>,
    session: usize,
    locks: &'a PartitionLocks,
    staging: bool,
    /// Staging tables this session created; each is empty between files.
    stages: HashSet<Table>,
}

impl<'a> MySqlLoader<'a> {
    pub fn new(
        mut conn: Conn,
        allow: Arc<InfileAllowlist>,
        session: usize,
        locks: &'a PartitionLocks,
        staging: bool,
    ) -> Result<MySqlLoader<'a>> {
        if staging {
            conn.query_drop("SET unique_checks = 0, foreign_key_checks = 0")?;
        }
        Ok(MySqlLoader {
            conn,
            allow,
            session,
            locks,
            staging,
            stages: HashSet::new(),
        })
    }

    /// Loads one file; returns the rows inserted.
    fn load_file(&mut self, file: &TsvFile) -> Result<u64> {
        if file.partition.is_empty() || !self.staging {
            return load_straight(&mut self.conn, file);
        }
        // Two sessions must not both find a partition empty and exchange it.
        let _guard = self.locks.lock(file.table, &file.partition);
        let table = file.table.name();
        let from = format!("`{table}` PARTITION (`{}`)", file.partition);
        if self.holds_rows(&from, &file.path)? {
            return load_straight(&mut self.conn, file);
        }
        let Some(stage) = self.stage(file.table) else {
            return load_straight(&mut self.conn, file);
        };
        let sql = load_sql(&file.path, &stage, "", file.table.columns(), "");
        let rows = run_load(&mut self.conn, &sql, &file.path)?;
        self.conn
            .query_drop(format!(
                "ALTER TABLE `{table}` EXCHANGE PARTITION `{}` WITH TABLE `{stage}`",
                file.partition
            ))
            .map_err(|e| failed(e, &file.path))?;
        Ok(rows)
    }

    /// Whether `from` (a table, or a table's partition) holds any row;
    /// errors name `path`, the file about to be loaded.
    fn holds_rows(&mut self, from: &str, path: &Path) -> Result<bool> {
        let row: Option<u8> = self
            .conn
            .query_first(format!("SELECT 1 FROM {from} LIMIT 1"))
            .map_err(|e| failed(e, path))?;
        Ok(row.is_some())
    }

    /// The session's staging table for `table`, created on first use (the
    /// import dropped any left behind, see [`drop_stages`]); `None`
    /// when the server refuses to create it (a user without the CREATE,
    /// DROP or ALTER privilege): the session then loads everything straight.
    ///
    /// It never recalculates its statistics by itself: InnoDB would do it
    /// over and over while a load fills it (each time a tenth more rows came
    /// in), which took a third of the server's time for a 2 GB export. The
    /// partitions still get theirs once exchanged (a test checks it).
    fn stage(&mut self, table: Table) -> Option<String> {
        let stage = format!("{STAGE_PREFIX}{}_{}", table.name(), self.session);
        if self.stages.insert(table) {
            // The name is this session's: one there is a killed run's.
            let created = self.conn.query_drop(format!(
                "DROP TABLE IF EXISTS `{stage}`; CREATE TABLE `{stage}` LIKE `{0}`; \
                 ALTER TABLE `{stage}` REMOVE PARTITIONING; \
                 ALTER TABLE `{stage}` STATS_AUTO_RECALC = 0",
                table.name()
            ));
            if created.is_err() {
                self.stages.remove(&table);
                self.staging = false;
                return None;
            }
        }
        Some(stage)
    }

    /// Loads `path` into `table`, which has no partitions, replacing rows
    /// with the same key (the `users` rows, which may update earlier ones).
    /// Into an empty table (a first import) they go in one bulk load, as
    /// into a staging table: nothing to replace, and the file names each
    /// row once. Otherwise unique checks are on for it: `REPLACE` finds its
    /// duplicates by them.
    fn replace(&mut self, table: &str, columns: &str, path: &Path) -> Result<u64> {
        let sql = load_sql(path, table, "", columns, "REPLACE");
        if !self.staging {
            return run_load(&mut self.conn, &sql, path);
        }
        if !self.holds_rows(&format!("`{table}`"), path)? {
            let bulk = load_sql(path, table, "", columns, "");
            return run_load(&mut self.conn, &bulk, path);
        }
        self.conn.query_drop("SET unique_checks = 1")?;
        let loaded = run_load(&mut self.conn, &sql, path)?;
        self.conn.query_drop("SET unique_checks = 0")?;
        Ok(loaded)
    }

    /// Drops the staging tables (they are empty).
    fn drop_own_stages(&mut self) -> Result<()> {
        for table in std::mem::take(&mut self.stages) {
            let stage = format!("{STAGE_PREFIX}{}_{}", table.name(), self.session);
            self.conn
                .query_drop(format!("DROP TABLE IF EXISTS `{stage}`"))
                .map_err(|e| failed_while(e, &format!("dropping staging table {stage}")))?;
        }
        Ok(())
    }
}

impl Loader for MySqlLoader<'_> {
    fn load(&mut self, file: &TsvFile) -> Result<u64> {
        self.allow.allow_parts(&file.path, &file.parts);
        let loaded = self.load_file(file);
        self.allow.revoke(&file.path);
        loaded
    }

    fn load_users(&mut self, path: &Path) -> Result<u64> {
        self.allow.allow(path);
        let loaded = self.replace(USERS, USERS_COLUMNS, path);
        self.allow.revoke(path);
        loaded
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.drop_own_stages()
    }
}

/// Writes `rows` (TSV lines) to a file in `dir` and loads them into `table`
/// with `REPLACE`.
pub fn replace_rows(
    conn: &mut Conn,
    allow: &InfileAllowlist,
    dir: &Path,
    table: &str,
    columns: &str,
    rows: &[u8],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let path = dir.join(format!("{table}.tsv"));
    std::fs::write(&path, rows).with_context(|| format!("writing {}", path.display()))?;
    allow.allow(&path);
    let sql = load_sql(&path, table, "", columns, "REPLACE");
    let r = run_load(conn, &sql, &path);
    allow.revoke(&path);
    std::fs::remove_file(&path).ok();
    r.map(|_| ())
}

/// Drops staging tables an interrupted import left behind.
pub fn drop_stages(conn: &mut Conn) -> Result<()> {
    let names: Vec<String> = conn.exec(
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_name LIKE ?",
        (format!("{}%", STAGE_PREFIX.replace('_', "\\_")),),
    )?;
    for name in names {
        conn.query_drop(format!("DROP TABLE IF EXISTS `{name}`"))
            .with_context(|| format!("dropping staging table {name}"))?;
    }
    Ok(())
}

/// The error of a statement about the file `path`: a lost connection says
/// so, and that a re-run resumes.
fn failed(e: mysql::Error, path: &Path) -> anyhow::Error {
    failed_while(e, &format!("loading {}", path.display()))
}

/// The error of a statement doing `what`, as [`failed`] words it.
fn failed_while(e: mysql::Error, what: &str) -> anyhow::Error {
    match e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            anyhow::anyhow!(
                "lost the connection to the MySQL server while {what} ({}); when the server \
                 is back, run the same `kmdb import` again: it resumes",
                super::errors::describe(&e)
            )
        }
        e => anyhow::Error::new(e).context(what.to_owned()),
    }
}

/// Runs a `LOAD DATA` and fails on any warning but a duplicate key, so that
/// a truncated or mangled value never passes silently.
pub fn run_load(conn: &mut Conn, sql: &str, path: &Path) -> Result<u64> {
    conn.query_drop(sql).map_err(|e| failed(e, path))?;
    let inserted = conn.affected_rows();
    if conn.warnings() > 0 {
        let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS LIMIT 10")?;
        let bad: Vec<String> = warnings
            .into_iter()
            .filter(|(_, code, _)| *code != 1062)
            .map(|(level, code, msg)| format!("{level} {code}: {msg}"))
            .collect();
        if !bad.is_empty() {
            bail!(
                "loading {}: the server reported {}",
                path.display(),
                bad.join("; ")
            );
        }
    }
    Ok(inserted)
}
