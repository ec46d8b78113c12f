//! `kmdb next`: the most frequent sequences of events right after an event
//! (SPEC §9).

use anyhow::Result;

use crate::analysis::output;
use crate::analysis::run::{self, NextPlan};
use crate::analysis::time::parse_duration;
use crate::args::AnalysisArgs;
use crate::db;
use crate::exit::usage;
use crate::progress::Progress;

/// Longest `--steps`: sequences are kept whole in memory.
const MAX_STEPS: usize = 100;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The event whose followers are counted (its name, byte for byte).
    pub event: String,
    /// Only occurrences with this property value (repeatable; all must hold).
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub conditions: Vec<String>,
    /// Events to take after each occurrence.
    #[arg(long, default_value_t = 1)]
    pub steps: usize,
    /// Only events at most this long after the occurrence: N (seconds), Ns,
    /// Nm, Nh or Nd [default: no limit].
    #[arg(long, value_name = "DURATION")]
    pub within: Option<String>,
    /// Sequences to show, most frequent first (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[command(flatten)]
    pub common: AnalysisArgs,
}

impl Args {
    pub fn plan(&self) -> Result<NextPlan> {
        if self.event.is_empty() {
            return Err(usage("EVENT must not be empty"));
        }
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return Err(usage(format!(
                "--steps must be between 1 and {MAX_STEPS} (got {})",
                self.steps
            )));
        }
        let conditions = self
            .conditions
            .iter()
            .map(|c| match c.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => Err(usage(format!(
                    "--where {c:?}: expected KEY=VALUE, like --where Plan=gold"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let within = self
            .within
            .as_deref()
            .map(|w| parse_duration(w).map_err(|e| usage(format!("--within: {e:#}"))))
            .transpose()?;
        Ok(NextPlan {
            event: self.event.clone(),
            conditions,
            steps: self.steps,
            within,
            range: self.common.range()?,
            top: self.top,
            format: self.common.output(),
            reading: self.common.reading()?,
        })
    }
}

pub fn run(args: &Args) -> Result<()> {
    let plan = args.plan()?;
    let reader = db::event_reader(&args.common.db.url()?)?;
    let progress = Progress::new(plan.reading.progress);
    let report = run::next(&*reader, &plan, &progress)?;
    print!("{}", output::next(&report, plan.format));
    Ok(())
}
