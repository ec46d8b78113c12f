//! One import at a time (an advisory lock of the server, and the run
//! holding it in `kmdb_lock_holder`) and the import in flight
//! (`kmdb_loading`), as the MySQL side keeps them.

use std::time::{Duration, Instant};

use anyhow::Result;
use postgres::Client;

use super::{bigint, Doing};
use crate::db::{Loading, RunInfo};

/// The advisory lock's key, `(classid, objid)`: "kmdb", 1. Advisory locks
/// belong to one database, so one key serves every database.
const LOCK_KEY: (i32, i32) = (0x6b6d_6462, 1);

pub(super) fn lock(client: &mut Client, run: &RunInfo, wait: Duration) -> Result<Option<RunInfo>> {
    let deadline = Instant::now() + wait;
    loop {
        if try_lock(client, run)? {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The holder names itself just after taking the lock: wait a little
    // for its row. A holder killed before naming itself leaves no row, and
    // its session ends at once: the lock may be free again meanwhile.
    for _ in 0..20 {
        if let Some(holder) = holder(client)? {
            return Ok(Some(holder));
        }
        std::thread::sleep(Duration::from_millis(50));
        if try_lock(client, run)? {
            return Ok(None);
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

/// Takes the database's import lock if it is free, naming `run` its holder.
fn try_lock(client: &mut Client, run: &RunInfo) -> Result<bool> {
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LOCK_KEY.0, &LOCK_KEY.1],
        )
        .doing("taking the database's import lock")?
        .get(0);
    if got {
        client
            .execute(
                "INSERT INTO kmdb_lock_holder(id, backend_pid, command, host, pid, state_store, since)
                 VALUES(1, pg_backend_pid(), $1, $2, $3, $4, COALESCE(NULLIF($5::text, '')::timestamp, now() AT TIME ZONE 'UTC'))
                 ON CONFLICT (id) DO UPDATE SET backend_pid = EXCLUDED.backend_pid,
                   command = EXCLUDED.command, host = EXCLUDED.host, pid = EXCLUDED.pid,
                   state_store = EXCLUDED.state_store, since = EXCLUDED.since",
                &[
                    &run.command,
                    &run.host,
                    &i64::from(run.pid),
                    &run.state_store,
                    &run.since,
                ],
            )
            .doing("naming the holder of the database's import lock")?;
    }
    Ok(got)
}

/// The run named as holding the import lock, if its session holds it.
fn holder(client: &mut Client) -> Result<Option<RunInfo>> {
    let row = client
        .query_opt(
            "SELECT h.command, h.host, h.pid, h.state_store,
                    to_char(h.since, 'YYYY-MM-DD HH24:MI:SS')
             FROM kmdb_lock_holder h
             WHERE h.id = 1 AND h.backend_pid IN (
               SELECT l.pid FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid
                 AND l.objid = $2::int::oid AND l.objsubid = 2
                 AND l.database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database()))",
            &[&LOCK_KEY.0, &LOCK_KEY.1],
        )
        .doing("reading the holder of the database's import lock")?;
    Ok(row.map(|r| RunInfo {
        command: r.get(0),
        host: r.get(1),
        pid: r.get::<_, i64>(2) as u32,
        state_store: r.get(3),
        since: r.get(4),
    }))
}

pub(super) fn loading(client: &mut Client) -> Result<Option<Loading>> {
    let row = client
        .query_opt(
            "SELECT state_generation, next_generation, revisions, users, keys, filters,
                    import_id, command, host, pid, state_store,
                    to_char(started_at, 'YYYY-MM-DD HH24:MI:SS')
             FROM kmdb_loading WHERE id = 1",
            &[],
        )
        .doing("reading the import in flight (kmdb_loading)")?;
    Ok(row.map(|r| Loading {
        base: r.get(0),
        next: r.get(1),
        revisions: r
            .get::<_, String>(2)
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect(),
        users: r.get::<_, i64>(3) as u64,
        keys: r.get::<_, i64>(4) as u64,
        filters: r.get(5),
        import_id: r.get::<_, Option<i64>>(6).map(|i| i as u64),
        run: RunInfo {
            command: r.get(7),
            host: r.get(8),
            pid: r.get::<_, i64>(9) as u32,
            state_store: r.get(10),
            since: r.get(11),
        },
    }))
}

pub(super) fn start_loading(client: &mut Client, l: &Loading) -> Result<()> {
    let revisions: Vec<String> = l.revisions.iter().map(u64::to_string).collect();
    let mut tx = client
        .transaction()
        .doing("recording the import in flight (kmdb_loading)")?;
    tx.execute("DELETE FROM kmdb_loading", &[])
        .doing("recording the import in flight (kmdb_loading)")?;
    tx.execute(
        "INSERT INTO kmdb_loading(id, state_generation, next_generation, revisions, users,
             keys, filters, import_id, command, host, pid, state_store, started_at)
         VALUES(1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, COALESCE(NULLIF($12::text, '')::timestamp, now() AT TIME ZONE 'UTC'))",
        &[
            &l.base,
            &l.next,
            &revisions.join(","),
            &bigint(l.users),
            &bigint(l.keys),
            &l.filters,
            &l.import_id.map(bigint),
            &l.run.command,
            &l.run.host,
            &i64::from(l.run.pid),
            &l.run.state_store,
            &l.run.since,
        ],
    )
    .doing("recording the import in flight (kmdb_loading)")?;
    tx.commit()
        .doing("recording the import in flight (kmdb_loading)")
}

pub(super) fn commit_import(client: &mut Client, id: u64, generation: &str) -> Result<()> {
    let what = format!("recording that the state store committed import #{id}");
    let mut tx = client.transaction().doing(&what)?;
    tx.execute(
        "UPDATE kmdb_imports SET state_generation = $1 WHERE id = $2",
        &[&generation, &bigint(id)],
    )
    .doing(&what)?;
    tx.execute(
        "DELETE FROM kmdb_loading WHERE import_id = $1",
        &[&bigint(id)],
    )
    .doing(&what)?;
    tx.commit().doing(&what)
}

pub(super) fn abandon_loading(client: &mut Client) -> Result<()> {
    let what = "ending the interrupted import's marker (kmdb_loading)";
    let mut tx = client.transaction().doing(what)?;
    tx.batch_execute(
        "DELETE FROM kmdb_imports WHERE state_generation IS NULL; DELETE FROM kmdb_loading",
    )
    .doing(what)?;
    tx.commit().doing(what)
}
