//! `kmdb funnel`: people through any number of funnels, in one pass over
//! the loaded events (SPEC §9).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::analysis::run::{self, FunnelPlan};
use crate::analysis::time::format_datetime;
use crate::analysis::{funnel, html, output};
use crate::args::AnalysisArgs;
use crate::db;
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON list of funnels: [{"name": "signup", "steps": [{"event": "visited
    /// site"}, {"event": "signed up", "where": {"Plan": "gold"}}], "window": "7d"}]
    pub funnels: PathBuf,
    /// Also write a self-contained HTML page with a chart per funnel.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub common: AnalysisArgs,
}

impl Args {
    pub fn plan(&self) -> Result<FunnelPlan> {
        Ok(FunnelPlan {
            file: self.funnels.clone(),
            range: self.common.range()?,
            format: self.common.output(),
            html: self.html.clone(),
            reading: self.common.reading()?,
        })
    }
}

/// The funnel file is checked whole before the database is read.
pub fn run(args: &Args) -> Result<()> {
    let plan = args.plan()?;
    let url = args.common.db.url()?;
    let text = std::fs::read_to_string(&plan.file)
        .with_context(|| format!("reading the funnel file {}", plan.file.display()))?;
    let funnels = funnel::parse_funnels(&text).with_context(|| plan.file.display().to_string())?;
    let reader = db::event_reader(&url)?;
    let progress = Progress::new(plan.reading.progress);
    let results = run::funnels(&*reader, funnels, plan.range, &plan.reading, &progress)?;
    if let Some(path) = &plan.html {
        let info = html::PageInfo {
            from: plan.range.from.map(format_datetime),
            to: plan.range.to.map(format_datetime),
            database: url.database(),
        };
        std::fs::write(path, html::page(&results, &info))
            .with_context(|| format!("writing the HTML page {}", path.display()))?;
        progress.log(&format!("wrote {}", path.display()));
    }
    print!("{}", output::funnels(&results, plan.format));
    Ok(())
}
