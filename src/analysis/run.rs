//! The two commands over an [`EventReader`]: resolve names, plan one pass,
//! read it, and turn the counts into results.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::funnel::{Funnel, FunnelResult, FunnelSet};
use super::next::NextQuery;
use super::output::{Format, NextReport};
use super::reader::{self, Pass, ReadOptions};
use super::time::{format_duration, END_T, MIN_T};
use super::{cut_255, Conditions, EventReader};
use crate::progress::{Mode, Progress};

/// `--from` / `--to`: step 1's (or the anchor's) `from <= t < to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl TimeRange {
    fn from(&self) -> i64 {
        self.from.unwrap_or(MIN_T)
    }

    fn to(&self) -> i64 {
        self.to.unwrap_or(END_T)
    }
}

/// How a run reads the database.
#[derive(Clone, Debug)]
pub struct Reading {
    /// Where buckets spill (a directory of its own is made there).
    pub work_dir: PathBuf,
    pub threads: usize,
    /// Database sessions reading side by side.
    pub sessions: usize,
    /// Bytes of rows held in memory before buckets spill to files.
    pub memory: usize,
    pub progress: Mode,
}

/// A validated `kmdb funnel`.
#[derive(Clone, Debug)]
pub struct FunnelPlan {
    pub file: PathBuf,
    pub range: TimeRange,
    pub format: Format,
    pub html: Option<PathBuf>,
    pub reading: Reading,
}

/// A validated `kmdb next`.
#[derive(Clone, Debug)]
pub struct NextPlan {
    pub event: String,
    pub conditions: Vec<(String, String)>,
    pub steps: usize,
    pub within: Option<i64>,
    pub range: TimeRange,
    /// Sequences shown; 0 for all.
    pub top: usize,
    pub format: Format,
    pub reading: Reading,
}

fn check_not_empty(db: &dyn EventReader) -> Result<()> {
    if !db.has_events()? {
        bail!(
            "the database holds no events: import an export first (`kmdb import SOURCE`), \
             or point DATABASE_URL at the database you imported into"
        );
    }
    Ok(())
}

fn options<'a>(reading: &Reading, progress: &'a Progress) -> ReadOptions<'a> {
    ReadOptions {
        work_dir: reading.work_dir.clone(),
        threads: reading.threads.max(1),
        sessions: reading.sessions.max(1),
        progress,
        memory: reading.memory,
    }
}

/// Every funnel of `funnels`, in one pass over the events.
pub fn funnels(
    db: &dyn EventReader,
    funnels: Vec<Funnel>,
    range: TimeRange,
    reading: &Reading,
    progress: &Progress,
) -> Result<Vec<FunnelResult>> {
    check_not_empty(db)?;
    let mut names: Vec<&str> = funnels
        .iter()
        .flat_map(|f| &f.steps)
        .flat_map(|s| {
            std::iter::once(s.event.as_str()).chain(s.conditions.iter().map(|(k, _)| k.as_str()))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let keys = db.key_ids(&names)?;
    let set = FunnelSet::new(funnels, &keys, range.from(), range.to());
    if set.names().is_empty() {
        // No step's event was ever seen: nobody entered any funnel.
        return Ok(set.results(&set.tally()));
    }
    // A later step is at most the window after a step 1 before --to.
    let end = range.to().saturating_add(set.max_window()).min(END_T);
    let slices = db.slices(range.from(), end)?;
    let conditions = set.conditions();
    let pass = Pass {
        slices,
        names: Some(set.names().to_vec()),
        properties: (!conditions.is_empty()).then(|| (conditions.filter(), conditions)),
    };
    let tally = reader::run(db, &pass, || set.tally(), &options(reading, progress))?;
    Ok(set.results(&tally))
}

/// What follows each occurrence of `plan.event`.
pub fn next(db: &dyn EventReader, plan: &NextPlan, progress: &Progress) -> Result<NextReport> {
    check_not_empty(db)?;
    let event = cut_255(&plan.event);
    let mut names: Vec<&str> = vec![event];
    names.extend(plan.conditions.iter().map(|(k, _)| cut_255(k)));
    let keys = db.key_ids(&names)?;
    let mut conditions = Conditions::default();
    let needs = plan
        .conditions
        .iter()
        .map(|(k, v)| {
            keys.get(cut_255(k))
                .map(|&key| conditions.add(key, cut_255(v)))
        })
        .collect::<Option<Vec<u32>>>()
        .map(|mut c| {
            c.sort_unstable();
            c.dedup();
            c
        });
    let query = NextQuery {
        anchor: keys.get(event).copied(),
        needs,
        steps: plan.steps,
        within: plan.within,
        from: plan.range.from(),
        to: plan.range.to(),
    };
    let mut report = NextReport {
        event: plan.event.clone(),
        conditions: plan.conditions.clone(),
        steps: plan.steps,
        within: plan.within.map(format_duration),
        occurrences: 0,
        sequences: Vec::new(),
    };
    if !query.can_match() {
        return Ok(report);
    }
    // The next events of an anchor before --to: any time later, or up to
    // --within after it.
    let end = match plan.within {
        Some(w) => query.to.saturating_add(w).min(END_T),
        None => END_T,
    };
    let slices = db.slices(query.from, end)?;
    let pass = Pass {
        slices,
        names: None,
        properties: (!conditions.is_empty()).then(|| (conditions.filter(), &conditions)),
    };
    let tally = reader::run(
        db,
        &pass,
        || query.tally(),
        &options(&plan.reading, progress),
    )?;
    let names = db.key_names(&tally.ids())?;
    report.occurrences = tally.occurrences;
    report.sequences = tally.ranked(&names, plan.top);
    Ok(report)
}
