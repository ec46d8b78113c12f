//! `kmdb parse` (hidden): the parse floor of the benchmarks.

use std::path::PathBuf;

use anyhow::Result;

use crate::format::InputFormat;
use crate::pipeline;
use crate::plan::{default_jobs, CHUNK_SIZE};
use crate::progress::{Mode, Progress};

#[derive(clap::Args, Debug)]
pub struct Args {
    pub source: PathBuf,
    /// Input format of the export.
    #[arg(long, value_enum, default_value_t = InputFormat::Km)]
    pub format: InputFormat,
    /// Parse threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    let progress = Progress::new(Mode::auto(args.quiet));
    let s = pipeline::parse_only(
        &args.source,
        args.format.format(),
        jobs,
        CHUNK_SIZE,
        &progress,
    )?;
    println!(
        "parsed {} file(s): {} bytes, {} lines ({} records) in {:.2} s on {jobs} thread(s): {:.0} MB/s",
        s.files,
        s.bytes,
        s.lines,
        s.records,
        s.seconds,
        s.bytes as f64 / 1e6 / s.seconds.max(1e-9)
    );
    Ok(())
}
