//! Which revision files an import loads: the listed ones in range and not
//! imported yet, or exactly those of an interrupted import.

use std::collections::{BTreeSet, HashSet};

use anyhow::{bail, Result};

use crate::db::Loading;
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

/// Picks the files of `export` to import now: those of `resume`, an
/// interrupted import, when there is one.
pub fn select(
    export: &Export,
    source: &str,
    range: RevisionRange,
    state: &StateStore,
    resume: Option<&Loading>,
    progress: &Progress,
) -> Result<Selection> {
    let done: HashSet<u64> = state.imported_revisions()?.into_iter().collect();
    let listed: Vec<u64> = export.files.iter().map(|f| f.revision).collect();
    let in_range: Vec<&RevisionFile> = export
        .files
        .iter()
        .filter(|f| range.contains(f.revision) && !done.contains(&f.revision))
        .collect();
    // An import interrupted before its commit is finished first, over exactly
    // its revisions: its links may already have re-pointed rows.
    let files: Vec<RevisionFile> = match resume {
        Some(l) => {
            let wanted: HashSet<u64> = l.revisions.iter().copied().collect();
            let files: Vec<RevisionFile> = export
                .files
                .iter()
                .filter(|f| wanted.contains(&f.revision))
                .cloned()
                .collect();
            if files.len() != wanted.len() {
                let missing: Vec<u64> = l
                    .revisions
                    .iter()
                    .copied()
                    .filter(|r| !listed.contains(r))
                    .collect();
                bail!(
                    "the interrupted import of revisions {} cannot be finished: revision(s) {} \
                     are not in {source}",
                    super::guard::span(&l.revisions),
                    abbreviate(&missing)
                );
            }
            let rest: Vec<u64> = in_range
                .iter()
                .map(|f| f.revision)
                .filter(|r| !wanted.contains(r))
                .collect();
            let then = match rest.len() {
                0 => String::new(),
                n => format!("; then the {n} other revision(s)"),
            };
            progress.log(&format!(
                "finishing the interrupted import of revisions {} first (started {} UTC){then}",
                super::guard::span(&l.revisions),
                l.run.since
            ));
            files
        }
        None => in_range.into_iter().cloned().collect(),
    };
    warn_out_of_order(progress, source, &listed, &done, &files);
    Ok(Selection {
        files,
        resumed: resume.is_some(),
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
