//! The load sessions: each takes finished batch files from a channel and
//! bulk-loads them through a [`Loader`] of the target, deleting each file
//! once loaded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::Receiver;

use super::stream::first_error;
use crate::db::Loader;
use crate::identity::Ident;
use crate::progress::Bar;
use crate::rows::{user_line, TsvFile};
use crate::state::Snapshot;

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

/// Starts one thread per loader, each loading the jobs of `rx` until it is
/// closed; a failed session sets `failed` so that the producer stops.
pub fn spawn<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    loaders: Vec<Box<dyn Loader + 'env>>,
    rx: &Receiver<Job>,
    failed: &'env AtomicBool,
    keep_files: bool,
    bar: &'env Bar,
) -> Vec<ScopedJoinHandle<'scope, Result<()>>> {
    loaders
        .into_iter()
        .map(|loader| {
            let rx = rx.clone();
            scope.spawn(move || {
                let r = run(loader, rx, keep_files, bar);
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
) -> Result<()> {
    for job in rx {
        crate::interrupt::check()?;
        match job {
            Job::File(file) => {
                loader.load(&file)?;
                if !keep_files {
                    for part in &file.parts {
                        std::fs::remove_file(part).ok();
                    }
                }
                bar.inc(file.rows);
            }
            Job::Users { path, rows } => {
                loader.load_users(&path)?;
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
