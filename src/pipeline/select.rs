//! Which revision files an import loads: the listed ones in range and not
//! imported yet, or exactly those of an interrupted import; and the checks
//! that the state store belongs to the database.

use std::collections::{BTreeSet, HashSet};

use anyhow::{bail, Result};

use crate::db::Target;
use crate::plan::RevisionRange;
use crate::progress::Progress;
use crate::source::{Export, RevisionFile};
use crate::state::StateStore;

/// The files to import, in order.
pub struct Selection {
    pub files: Vec<RevisionFile>,
    /// They finish an interrupted import; the other revisions come next.
    pub resumed: bool,
}

/// Picks the files of `export` to import now.
pub fn select(
    export: &Export,
    source: &str,
    range: RevisionRange,
    state: &StateStore,
    progress: &Progress,
) -> Result<Selection> {
    let done: HashSet<u64> = state.imported_revisions()?.into_iter().collect();
    let listed: Vec<u64> = export.files.iter().map(|f| f.revision).collect();
    // An import interrupted before its commit is finished first, over exactly
    // its revisions: its links may already have re-pointed rows.
    let in_flight = state.in_flight()?;
    let files: Vec<RevisionFile> = match &in_flight {
        Some(revs) => {
            progress.log(&format!(
                "resuming the interrupted import of {} revision(s) first; run again for the rest",
                revs.len()
            ));
            let wanted: HashSet<u64> = revs.iter().copied().collect();
            let files: Vec<RevisionFile> = export
                .files
                .iter()
                .filter(|f| wanted.contains(&f.revision))
                .cloned()
                .collect();
            if files.len() != wanted.len() {
                bail!(
                    "the interrupted import of revisions {revs:?} cannot be finished: some of them are not in {source}"
                );
            }
            files
        }
        None => export
            .files
            .iter()
            .filter(|f| range.contains(f.revision) && !done.contains(&f.revision))
            .cloned()
            .collect(),
    };
    warn_out_of_order(progress, source, &listed, &done, &files);
    Ok(Selection {
        files,
        resumed: in_flight.is_some(),
    })
}

/// Says when revisions are missing between the first and the last one known
/// (listed or imported), and when this import brings a revision older than
/// one already imported: links apply in the order imported, so a late
/// revision can give other groups than a one-shot import would (SPEC §5).
/// Imports go on either way: a gap may be real in an export.
fn warn_out_of_order(
    progress: &Progress,
    source: &str,
    listed: &[u64],
    done: &HashSet<u64>,
    files: &[RevisionFile],
) {
    let known: BTreeSet<u64> = listed.iter().chain(done).copied().collect();
    if let (Some(&first), Some(&last)) = (known.first(), known.last()) {
        let missing: Vec<u64> = (first..=last).filter(|r| !known.contains(r)).collect();
        if !missing.is_empty() {
            progress.warn(&format!(
                "{} revision(s) missing from {source} between {first} and {last}: {}",
                missing.len(),
                abbreviate(&missing)
            ));
        }
    }
    if let Some(&newest) = done.iter().max() {
        let late: Vec<u64> = files
            .iter()
            .map(|f| f.revision)
            .filter(|&r| r < newest)
            .collect();
        if !late.is_empty() {
            progress.warn(&format!(
                "revision(s) {} arrived after revision {newest} was imported: their aliases apply \
                 after those of the newer revisions",
                abbreviate(&late)
            ));
        }
    }
}

/// `1, 2, 3` or, for long lists, the first ten and a count.
pub fn abbreviate<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(10).map(T::to_string).collect();
    match items.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// Refuses a state store that belongs to another database, or an empty
/// state store for a database that already holds imported rows.
pub fn check_token(target: &mut dyn Target, state: &StateStore) -> Result<()> {
    let db_token = target.token()?;
    match state.meta("database_token")? {
        Some(t) if t == db_token => {
            // The rows of the imports the state store remembers must still be
            // there: their accounting row is the witness.
            if let Some(last) = state.meta("last_import_id")? {
                let known = match last.parse::<u64>() {
                    Ok(id) => target.has_import(id)?,
                    Err(_) => false,
                };
                if !known {
                    bail!(
                        "the database lost the imports state store {} remembers (import #{last} is not \
                         in kmdb_imports): it was emptied behind kmdb's back; start over with \
                         `kmdb flush --yes`",
                        state.path().display()
                    );
                }
            }
            Ok(())
        }
        Some(_) => bail!(
            "state store {} belongs to another database, or this database was flushed or \
             recreated without it: use the state file of this database, or start over with \
             `kmdb flush --yes` (which empties the data tables and this state store)",
            state.path().display()
        ),
        None => {
            if target.import_count()? > 0 || state.identity_count()? > 0 {
                bail!(
                    "state store {} is new but the database already holds imported data: \
                     pass the state file it was loaded with (--state), or start over with \
                     `kmdb flush --yes`",
                    state.path().display()
                );
            }
            state.set_meta("database_token", &db_token)
        }
    }
}
