//! `LOAD DATA LOCAL INFILE` of the TSV files an import wrote, and the
//! local-infile handler that serves those files and nothing else.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler};

use crate::tsv::TsvFile;

/// The files this process wrote and may hand to the server. A server that
/// asks for any other path (a `LOAD DATA LOCAL` request is the server's to
/// make) is refused.
#[derive(Default)]
pub struct InfileAllowlist {
    files: Mutex<HashSet<PathBuf>>,
}

impl InfileAllowlist {
    pub fn allow(&self, path: &Path) {
        self.files
            .lock()
            .expect("allowlist lock")
            .insert(path.to_owned());
    }

    pub fn revoke(&self, path: &Path) {
        self.files.lock().expect("allowlist lock").remove(path);
    }

    fn permits(&self, path: &Path) -> bool {
        self.files.lock().expect("allowlist lock").contains(path)
    }
}

pub(super) fn handler(allow: Arc<InfileAllowlist>) -> LocalInfileHandler {
    LocalInfileHandler::new(move |name, out| {
        let path = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        if !allow.permits(&path) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "kmdb refuses to send {}: not a file of this import",
                    path.display()
                ),
            ));
        }
        let mut file = File::open(&path)?;
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
pub fn load(conn: &mut Conn, file: &TsvFile) -> Result<u64> {
    let sql = load_sql(
        &file.path,
        file.table.name(),
        &file.partition,
        file.table.columns(),
        "IGNORE",
    );
    run_load(conn, &sql, &file.path)
}

/// Runs a `LOAD DATA` and fails on any warning but a duplicate key, so that
/// a truncated or mangled value never passes silently.
pub fn run_load(conn: &mut Conn, sql: &str, path: &Path) -> Result<u64> {
    conn.query_drop(sql).map_err(|e| match e {
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            anyhow::anyhow!(
                "lost the connection to the MySQL server while loading {} ({e}); when the server \
                 is back, run the same `kmdb import` again: it resumes",
                path.display()
            )
        }
        e => anyhow::Error::new(e).context(format!("loading {}", path.display())),
    })?;
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
