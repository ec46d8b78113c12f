//! `kmdb import --dry-run`: what an import would load, from where and into
//! what, with the checks an import makes first; nothing is downloaded,
//! loaded or written (not even the state store).

use std::fmt;
use std::path::Path;

use anyhow::Result;
use indicatif::HumanBytes;

use super::select;
use crate::db;
use crate::partition;
use crate::plan::ImportPlan;
use crate::progress::Progress;
use crate::report::count;
use crate::source::{self, summary, RevisionFile};
use crate::state::StateStore;
use crate::table::Table;

/// Files listed in full before the rest are summed up.
const LISTED: usize = 20;

/// What `kmdb import` would do now.
pub struct Preview {
    pub source: String,
    /// What KM's index.csv and status.csv say, if anything.
    pub km_says: Option<String>,
    pub database: String,
    /// The partitions of `events`, in words.
    pub partitions: String,
    pub state: String,
    pub filters: String,
    /// The revision files the import would load, in order.
    pub files: Vec<RevisionFile>,
    /// They finish an interrupted import.
    pub resumed: bool,
    /// Revisions in range already imported.
    pub already: usize,
    /// What would stop the import, each with its fix (not in the
    /// `Display`: the command fails with them).
    pub problems: Vec<String>,
}

/// Lists and checks what an import of `plan` would do, without doing it.
pub fn dry_run(plan: &ImportPlan, progress: &Progress) -> Result<Preview> {
    let mut problems = Vec::new();
    let mut target = db::connect(&plan.database)?;
    target.check_schema()?;
    if let Err(e) = target.check_bulk_load() {
        problems.push(format!("{e:#}"));
    }
    let state = open_state(&plan.state)?;
    let state_line = match state.imported_revisions()? {
        _ if !plan.state.exists() => format!("{}: not created yet", plan.state.display()),
        revs if revs.is_empty() => format!("{}: nothing imported yet", plan.state.display()),
        revs => format!(
            "{}: {} revision(s) imported ({} .. {})",
            plan.state.display(),
            count(revs.len() as u64),
            revs[0],
            revs[revs.len() - 1]
        ),
    };
    // The checks of an import's guard that only read; the state store's
    // matching in full needs the locks an import takes.
    if let Some(t) = state.meta("database_token")? {
        if t != target.token()? {
            problems.push(format!(
                "state store {} belongs to another database, or this database was flushed or \
                 recreated without it: use the state file of this database (--state), or start \
                 over with `kmdb flush --yes`",
                plan.state.display()
            ));
        }
    }
    if state.last_import_id()?.is_none() && target.last_import()?.is_some() {
        problems.push(format!(
            "state store {} has committed no import, but the database already holds imported \
             data: pass the state file it was loaded with (--state), or start over with \
             `kmdb flush --yes`",
            plan.state.display()
        ));
    }
    let resume = target.loading()?;
    let filters = target.filters()?;
    let bounds = target.partitions(Table::Events)?.day_bounds();

    let format = plan.format.format();
    let export = source::list(&plan.source, format, &plan.download_dir())?;
    let km_says =
        summary::describe_export(export.index_csv.as_deref(), export.status_csv.as_deref());
    let source_name = plan.source.to_string();
    if !export.ignored.is_empty() {
        progress.warn(&format!(
            "{} file(s) in {source_name} look like revisions but are not named {}, \
             and would not be imported: {}",
            export.ignored.len(),
            format.names(),
            select::abbreviate(&export.ignored)
        ));
    }
    let selection = select::select(
        &export,
        &source_name,
        plan.revisions,
        &state,
        resume.as_ref(),
        progress,
    )?;
    let done = state.imported_revisions()?;
    let already = export
        .files
        .iter()
        .filter(|f| plan.revisions.contains(f.revision) && done.contains(&f.revision))
        .count();
    Ok(Preview {
        source: match &export.remote {
            Some(_) => format!("{source_name} (S3: files would be downloaded to {})", {
                plan.download_dir().display()
            }),
            None => format!("{source_name} (local)"),
        },
        km_says,
        database: plan.database.to_string(),
        partitions: partition::describe(&bounds),
        state: state_line,
        filters: format!(
            "ignored_users {}, whitelisted_events {}, blacklisted_properties {}",
            filters.ignored_users.len(),
            filters.whitelisted_events.len(),
            filters.blacklisted_properties.len()
        ),
        files: selection.files,
        resumed: selection.resumed,
        already,
        problems,
    })
}

/// The state store at `path` if it exists, else an empty one in memory
/// (a dry run creates no file).
fn open_state(path: &Path) -> Result<StateStore> {
    if path.exists() {
        StateStore::open(path)
    } else {
        StateStore::open(Path::new(":memory:"))
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dry run: nothing is downloaded, loaded or written")?;
        writeln!(f, "  source       {}", self.source)?;
        if let Some(says) = &self.km_says {
            writeln!(f, "               {says}")?;
        }
        writeln!(f, "  database     {}", self.database)?;
        writeln!(f, "  partitions   {}", self.partitions)?;
        writeln!(f, "  state store  {}", self.state)?;
        writeln!(f, "  filters      {}", self.filters)?;
        let bytes: u64 = self.files.iter().map(|r| r.size).sum();
        match (self.files.first(), self.files.last()) {
            (Some(first), Some(last)) => writeln!(
                f,
                "would import {} revision file(s), {} .. {}, {}{}{}:",
                self.files.len(),
                first.revision,
                last.revision,
                HumanBytes(bytes),
                if self.resumed {
                    " (finishing an interrupted import)"
                } else {
                    ""
                },
                match self.already {
                    0 => String::new(),
                    n => format!("; {n} revision(s) in range already imported"),
                }
            )?,
            _ => writeln!(
                f,
                "would import nothing: every revision in range is already imported \
                 ({} revision(s))",
                self.already
            )?,
        }
        for file in self.files.iter().take(LISTED) {
            writeln!(
                f,
                "  {:>8}  {:>11}  {}",
                file.revision,
                HumanBytes(file.size).to_string(),
                file.path.display()
            )?;
        }
        if self.files.len() > LISTED {
            writeln!(f, "  ... and {} more", self.files.len() - LISTED)?;
        }
        Ok(())
    }
}
