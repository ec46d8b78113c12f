//! The load sessions: each takes finished batch files from a channel and
//! bulk-loads them through a [`Loader`] of the target, deleting each file
//! once loaded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::Receiver;

use super::stream::first_error;
use crate::db::Loader;
use crate::identity::Ident;
use crate::progress::Bar;
use crate::report::TableLoad;
use crate::rows::{user_line, TsvFile};
use crate::state::Snapshot;
use crate::table::{DATA_TABLES, USERS};

/// What a load session loads.
pub enum Job {
    /// A batch file of a partitioned table.
    File(TsvFile),
    /// The `users` rows of the import (see [`write_users`]).
    Users { path: PathBuf, rows: u64 },
}

impl Job {
    pub fn rows(&self) -> u64 {
        match self {
            Job::File(f) => f.rows,
            Job::Users { rows, .. } => *rows,
        }
    }
}

/// Rows loaded and time spent per table, over every session.
#[derive(Default)]
pub struct Loads {
    per_table: Mutex<Vec<(&'static str, u64, Duration)>>,
}

impl Loads {
    pub fn add(&self, table: &'static str, rows: u64, took: Duration) {
        let mut per = self.per_table.lock().expect("load statistics");
        match per.iter_mut().find(|(t, ..)| *t == table) {
            Some((_, r, d)) => {
                *r += rows;
                *d += took;
            }
            None => per.push((table, rows, took)),
        }
    }

    /// Every data table, in [`DATA_TABLES`] order, loaded or not.
    pub fn tables(&self) -> Vec<TableLoad> {
        let per = self.per_table.lock().expect("load statistics");
        DATA_TABLES
            .iter()
            .map(|&table| {
                let (rows, took) = per
                    .iter()
                    .find(|(t, ..)| *t == table)
                    .map_or((0, Duration::ZERO), |&(_, r, d)| (r, d));
                TableLoad {
                    table,
                    rows,
                    seconds: took.as_secs_f64(),
                }
            })
            .collect()
    }
}

/// Starts one thread per loader, each loading the jobs of `rx` until it is
/// closed; a failed session sets `failed` so that the producer stops.
pub fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    loaders: Vec<Box<dyn Loader + 'env>>,
    rx: &Receiver<Job>,
    failed: &'env AtomicBool,
    keep_files: bool,
    bar: &'env Bar,
    loads: &'env Loads,
) -> Vec<ScopedJoinHandle<'scope, Result<()>>> {
    loaders
        .into_iter()
        .map(|loader| {
            let rx = rx.clone();
            scope.spawn(move || {
                let r = run(loader, rx, keep_files, bar, loads);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                r
            })
        })
        .collect()
}

/// One session: loads jobs as they come, deleting each file once loaded.
fn run(
    mut loader: Box<dyn Loader + '_>,
    rx: Receiver<Job>,
    keep_files: bool,
    bar: &Bar,
    loads: &Loads,
) -> Result<()> {
    for job in rx {
        crate::interrupt::check()?;
        let started = Instant::now();
        match job {
            Job::File(file) => {
                let rows = loader.load(&file)?;
                loads.add(file.table.name(), rows, started.elapsed());
                if !keep_files {
                    for part in &file.parts {
                        std::fs::remove_file(part).ok();
                    }
                }
                bar.inc(file.rows);
            }
            Job::Users { path, rows } => {
                // Its rows, not the statement's count: REPLACE counts a
                // replaced row twice.
                loader.load_users(&path)?;
                loads.add(USERS, rows, started.elapsed());
                std::fs::remove_file(&path).ok();
                bar.inc(rows);
            }
        }
    }
    loader.finish()
}

/// `result`, or the first error of the sessions; an error itself when a
/// session panicked.
pub fn joined(
    result: Result<()>,
    sessions: Vec<ScopedJoinHandle<'_, Result<()>>>,
) -> Result<Result<()>> {
    sessions.into_iter().try_fold(result, |result, session| {
        let r = session
            .join()
            .map_err(|_| anyhow!("a load session panicked"))?;
        Ok(first_error(result, r))
    })
}

/// Writes the `users` rows that are new or whose canonical changed to
/// `path`, for a load session; `None` when there are none.
pub fn write_users(path: PathBuf, snap: &mut Snapshot, before: &[Ident]) -> Result<Option<Job>> {
    let mut rows = Vec::new();
    let mut count = 0;
    for i in 0..snap.stored.len() {
        if !snap.stored[i] {
            continue;
        }
        let id = i as Ident;
        let canon = snap.identities.canonical(id);
        let dirty = i >= before.len()
            || !snap.saved_stored.get(i).copied().unwrap_or(false)
            || before[i] != canon;
        if !dirty {
            continue;
        }
        count += 1;
        let alias_of = (canon != id).then_some(canon as u64 + 1);
        user_line(&mut rows, i as u64 + 1, snap.identities.name(id), alias_of);
    }
    if rows.is_empty() {
        return Ok(None);
    }
    std::fs::write(&path, rows).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(Job::Users { path, rows: count }))
}
