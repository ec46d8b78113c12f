//! One import at a time (a named lock of the server, `GET_LOCK`, and the
//! run holding it in `kmdb_lock_holder`) and the import in flight
//! (`kmdb_loading`), which tells which state store the database matches.

use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, TxOpts};

use crate::db::{Loading, RunInfo};

/// The server's lock names are global and at most 64 characters: the
/// database's name, or a digest of it when that is too long.
fn lock_name(conn: &mut Conn) -> Result<String> {
    let db: Option<String> = conn.query_first("SELECT DATABASE()")?;
    let db = db.unwrap_or_default();
    let name = format!("kmdb_import:{db}");
    if name.chars().count() <= 64 {
        return Ok(name);
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in db.as_bytes() {
        hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("kmdb_import:{hash:016x}"))
}

type HolderRow = (u64, String, String, u32, String, String);

fn run_of(row: HolderRow) -> RunInfo {
    let (_, command, host, pid, state_store, since) = row;
    RunInfo {
        command,
        host,
        pid,
        state_store,
        since,
    }
}

pub(super) fn lock(conn: &mut Conn, run: &RunInfo, wait: Duration) -> Result<Option<RunInfo>> {
    let name = lock_name(conn)?;
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (&name, wait.as_secs()))
        .context("taking the database's import lock")?;
    if got.flatten() == Some(1) {
        conn.exec_drop(
            "REPLACE INTO kmdb_lock_holder(id, connection_id, command, host, pid, state_store, since)
             VALUES(1, CONNECTION_ID(), ?, ?, ?, ?, ?)",
            (
                &run.command,
                &run.host,
                run.pid,
                &run.state_store,
                &run.since,
            ),
        )
        .context("naming the holder of the database's import lock")?;
        return Ok(None);
    }
    // The holder names itself just after taking the lock: wait a little
    // for its row.
    for _ in 0..20 {
        let holder: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (&name,))?;
        let Some(holder) = holder.flatten() else {
            break;
        };
        let row: Option<HolderRow> = conn.query_first(
            "SELECT connection_id, command, host, pid, state_store, CAST(since AS CHAR)
             FROM kmdb_lock_holder WHERE id = 1",
        )?;
        match row {
            Some(row) if row.0 == holder => return Ok(Some(run_of(row))),
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    Ok(Some(RunInfo {
        command: "import or flush".into(),
        host: "an unknown host".into(),
        pid: 0,
        state_store: String::new(),
        since: String::new(),
    }))
}

type LoadingRow = (
    String,
    String,
    String,
    u64,
    u64,
    String,
    Option<u64>,
    String,
    String,
    u32,
    String,
    String,
);

pub(super) fn loading(conn: &mut Conn) -> Result<Option<Loading>> {
    let row: Option<LoadingRow> = conn
        .query_first(
            "SELECT state_generation, next_generation, revisions, users, `keys`, filters,
                    import_id, command, host, pid, state_store, CAST(started_at AS CHAR)
             FROM kmdb_loading WHERE id = 1",
        )
        .context("reading the import in flight (kmdb_loading)")?;
    Ok(row.map(
        |(
            base,
            next,
            revisions,
            users,
            keys,
            filters,
            import_id,
            command,
            host,
            pid,
            state,
            since,
        )| {
            Loading {
                base,
                next,
                revisions: revisions
                    .split(',')
                    .filter_map(|r| r.trim().parse().ok())
                    .collect(),
                users,
                keys,
                filters,
                import_id,
                run: RunInfo {
                    command,
                    host,
                    pid,
                    state_store: state,
                    since,
                },
            }
        },
    ))
}

pub(super) fn start_loading(conn: &mut Conn, l: &Loading) -> Result<()> {
    let revisions: Vec<String> = l.revisions.iter().map(u64::to_string).collect();
    let params: Vec<mysql::Value> = vec![
        l.base.as_str().into(),
        l.next.as_str().into(),
        revisions.join(",").into(),
        l.users.into(),
        l.keys.into(),
        l.filters.as_str().into(),
        l.import_id.into(),
        l.run.command.as_str().into(),
        l.run.host.as_str().into(),
        l.run.pid.into(),
        l.run.state_store.as_str().into(),
        l.run.since.as_str().into(),
    ];
    conn.exec_drop(
        "REPLACE INTO kmdb_loading(id, state_generation, next_generation, revisions, users,
             `keys`, filters, import_id, command, host, pid, state_store, started_at)
         VALUES(1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        mysql::Params::Positional(params),
    )
    .context("recording the import in flight (kmdb_loading)")
}

pub(super) fn commit_import(conn: &mut Conn, id: u64, generation: &str) -> Result<()> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    tx.exec_drop(
        "UPDATE kmdb_imports SET state_generation = ? WHERE id = ?",
        (generation, id),
    )?;
    tx.exec_drop("DELETE FROM kmdb_loading WHERE import_id = ?", (id,))?;
    tx.commit()
        .with_context(|| format!("recording that the state store committed import #{id}"))
}

pub(super) fn abandon_loading(conn: &mut Conn) -> Result<()> {
    let mut tx = conn.start_transaction(TxOpts::default())?;
    tx.query_drop("DELETE FROM kmdb_imports WHERE state_generation IS NULL")?;
    tx.query_drop("DELETE FROM kmdb_loading")?;
    tx.commit()
        .context("ending the interrupted import's marker (kmdb_loading)")
}
