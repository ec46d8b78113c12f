//! Before an import or a flush changes anything: the locks that keep it the
//! only run on its state file and its database, and the check that the
//! state store is the one the database matches (the latest), which also
//! decides what to do with an import left in flight.
//!
//! The database records, with each import a state store commits, that
//! store's generation (a random name renewed at every commit), and, while
//! an import loads, an in-flight marker: the generation it started from,
//! the one it commits, its revisions and the users and keys numbered
//! before it ([`Loading`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::db::{LastImport, Loading, Target};
use crate::progress::Progress;
use crate::runs::{busy, RunInfo, StateFileLock};
use crate::state::{self, StateStore};

use super::select::abbreviate;

/// The locks of one run, held until dropped: the state file's and (with the
/// target's session) the database's.
pub struct Locks {
    _state: StateFileLock,
}

/// How long a run waits for the database's import lock that a killed run's
/// session keeps while the server finishes its last statement.
const KILLED_RUN_WAIT: Duration = Duration::from_secs(600);

/// Takes the state file's lock, then the database's, for `command`; fails
/// naming the run that holds either, having changed nothing.
pub fn lock(
    target: &mut dyn Target,
    state: &Path,
    command: &str,
    progress: &Progress,
) -> Result<Locks> {
    let run = RunInfo::this(command, state);
    let file = match StateFileLock::acquire(state, &run)? {
        Ok(file) => file,
        Err(holder) => {
            busy(&holder, &format!("state store {}", state.display()))?;
            unreachable!("busy fails")
        }
    };
    let mut holder = target.lock(&run, Duration::ZERO)?;
    if let Some(h) = holder.as_ref().filter(|h| h.is_gone() || h.pid == 0) {
        // A run killed mid-statement: the server keeps its session, and the
        // lock, until that statement ends. A holder that never named itself
        // (pid 0) is one killed as it took the lock, whose session is ending.
        progress.warn(&format!(
            "waiting for the server to finish the last statement of a run that was killed \
             ({h}), which holds the database's import lock until then"
        ));
        holder = target.lock(&run, KILLED_RUN_WAIT)?;
    }
    if let Some(holder) = holder {
        busy(&holder, &format!("the database {}", target.url()))?;
    }
    Ok(Locks { _state: file })
}

/// `1 .. 9` for consecutive revisions, else a list (`1, 3, 5`).
pub fn span(revisions: &[u64]) -> String {
    match (revisions.first(), revisions.last()) {
        (Some(a), Some(b)) if revisions.len() as u64 == b - a + 1 => {
            if a == b {
                a.to_string()
            } else {
                format!("{a} .. {b}")
            }
        }
        _ => abbreviate(revisions),
    }
}

/// Checks that `state` is the state store the database matches (the
/// latest), and settles an import left in flight; refuses, changing
/// nothing, a state store of another database or one that is not the
/// latest. Returns the import in flight that this state store started,
/// to finish first.
pub fn check(
    target: &mut dyn Target,
    state: &mut StateStore,
    progress: &Progress,
) -> Result<Option<Loading>> {
    let path = state.path().display().to_string();
    let db_token = target.token()?;
    match state.meta("database_token")? {
        Some(t) if t == db_token => {}
        Some(_) => bail!(
            "state store {path} belongs to another database, or this database was flushed or \
             recreated without it: use the state file of this database (--state), or start \
             over with `kmdb flush --yes` (which empties the data tables and this state store)"
        ),
        None => {}
    }
    let generation = state.generation()?;
    let last = state.last_import_id()?;
    let mut loading = target.loading()?;
    // The state store committed the import in flight, but the run ended
    // before the database heard of it.
    if let (Some(l), Some(id)) = (&loading, last) {
        if l.next == generation && l.import_id == Some(id) {
            target.commit_import(id, &generation)?;
            loading = None;
        }
    }
    let latest = target.last_import()?;
    match last {
        Some(id) => {
            if !target.has_import(id)? {
                bail!(
                    "the database lost the imports state store {path} remembers (import #{id} is \
                     not in kmdb_imports): it was emptied behind kmdb's back; start over with \
                     `kmdb flush --yes`"
                );
            }
            match &latest {
                Some(l) if l.id == id && l.state_generation == generation => {}
                Some(l) if l.id == id && l.state_generation == "legacy" => {
                    // Committed before the database recorded generations.
                    target.commit_import(id, &generation)?;
                }
                Some(l) if l.id >= id => bail!(
                    "state store {path} is not the latest: it matches import #{id}, but {}. \
                     Importing with it would load revisions again under other user ids: restore \
                     the latest state store (the file as that import left it), or start over \
                     with `kmdb flush --yes` and import everything again",
                    committed_since(l, id)
                ),
                _ => bail!(
                    "state store {path} does not match the database: it says it committed \
                     import #{id}, which the database holds as unfinished; restore the latest \
                     state store, or start over with `kmdb flush --yes` and import everything \
                     again"
                ),
            }
        }
        None => {
            if let Some(l) = &latest {
                bail!(
                    "state store {path} has committed no import, but the database already holds \
                     imported data (import #{} of revisions {}, {} UTC, committed by {}): pass the \
                     state file it was loaded with (--state){}, or start over with \
                     `kmdb flush --yes` (which empties the data tables and this state store)",
                    l.id,
                    l.revisions,
                    l.finished_at,
                    committer(l),
                    former_default_hint(state.path())
                );
            }
            if state.identity_count()? > 0 {
                bail!(
                    "state store {path} is new but the database already holds imported data: \
                     pass the state file it was loaded with (--state), or start over with \
                     `kmdb flush --yes`"
                );
            }
        }
    }
    if state.meta("database_token")?.is_none() {
        state.set_meta("database_token", &db_token)?;
    }
    // A marker kept by the state store (kmdb versions before the database
    // kept it) stands for the database's.
    if loading.is_none() {
        if let Some(revisions) = state.in_flight()? {
            loading = Some(Loading {
                base: generation.clone(),
                next: state::random_token(),
                revisions,
                users: state.identity_count()?,
                keys: state.key_count()?,
                filters: state.in_flight_filters()?.unwrap_or_default(),
                import_id: None,
                run: RunInfo::this("import", state.path()),
            });
        }
    }
    match loading {
        None => Ok(None),
        Some(l) if l.base == generation => Ok(Some(l)),
        Some(l) if last.is_none() && latest.is_none() => {
            // A killed first import that no state store committed: its rows
            // carry user ids of its own numbering, which this state store
            // would give to other people.
            progress.warn(&format!(
                "the import of revisions {} ({}) was interrupted and no state store committed \
                 it: removing the rows it loaded before state store {path} imports",
                span(&l.revisions),
                l.run
            ));
            target.remove_revisions(&l.revisions, l.users, l.keys)?;
            target.abandon_loading()?;
            Ok(None)
        }
        Some(l) => bail!(
            "the import of revisions {} that {} started is unfinished in the database, and state \
             store {path} cannot go on from it: run `kmdb import` again with the state store \
             that started it, or start over with `kmdb flush --yes` and import everything again",
            span(&l.revisions),
            l.run
        ),
    }
}

/// What was committed after import #`mine`, or instead of it.
fn committed_since(l: &LastImport, mine: u64) -> String {
    let by = committer(l);
    if l.id == mine {
        format!(
            "another copy of it, {by}, committed import #{} (revisions {}, {} UTC) too",
            l.id, l.revisions, l.finished_at
        )
    } else {
        format!(
            "import #{} (revisions {}, {} UTC) was committed since by {by}",
            l.id, l.revisions, l.finished_at
        )
    }
}

/// `state store /x.sqlite on host h`.
fn committer(l: &LastImport) -> String {
    match (&l.state_store, &l.host) {
        (Some(s), Some(h)) => format!("state store {s} on host {h}"),
        (Some(s), None) => format!("state store {s}"),
        _ => "another state store".into(),
    }
}

/// A hint when the state file's former default name is here.
fn former_default_hint(path: &Path) -> String {
    let former = Path::new(state::FORMER_DEFAULT);
    if former.exists() && path != former {
        format!(
            "; {} here is the state file's former default name: pass --state {} if it is this \
             database's",
            state::FORMER_DEFAULT,
            state::FORMER_DEFAULT
        )
    } else {
        String::new()
    }
}
