//! `kmdb generate`: writes a synthetic export (same bytes for the same seed).

use std::path::PathBuf;

use anyhow::Result;

use crate::exit::usage;
use crate::format::InputFormat;
use crate::generate::{self, Amount, GenerateOptions};
use crate::progress::{Mode, Progress};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write (KM: revisions/, index.csv, status.csv;
    /// Mixpanel: one YYYY-MM-DD.json file a day).
    #[arg(long)]
    pub out: PathBuf,
    /// Input format to write an export of.
    #[arg(long, value_enum, default_value_t = InputFormat::Km)]
    pub format: InputFormat,
    /// Approximate size, e.g. 2GB or 500MiB.
    #[arg(long, conflicts_with = "lines", required_unless_present = "lines")]
    pub size: Option<String>,
    /// Exact number of lines.
    #[arg(long)]
    pub lines: Option<u64>,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Gzip every K-th revision file.
    #[arg(long)]
    pub gzip_every: Option<u32>,
    /// Size of one revision file before compression, e.g. 64MiB (Mixpanel:
    /// of one day's file, which sets the number of days).
    #[arg(long, default_value = "64MiB")]
    pub file_size: String,
    /// Mixpanel: the number of day files, in place of --file-size (e.g.
    /// 730 for two years, as a KM export's times span).
    #[arg(long)]
    pub days: Option<u64>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let size = |s: &str| generate::parse_size(s).map_err(|e| usage(format!("{e:#}")));
    let amount = match (&args.size, args.lines) {
        (_, Some(n)) => Amount::Lines(n),
        (Some(s), None) => Amount::Bytes(size(s)?),
        (None, None) => return Err(usage("give --size or --lines")),
    };
    let file_bytes = match (args.format, args.days) {
        (_, None) => size(&args.file_size)?,
        (InputFormat::Km, Some(_)) => {
            return Err(usage(
                "--days is for --format mixpanel (KM files are cut by --file-size)",
            ))
        }
        (InputFormat::Mixpanel, Some(0)) => return Err(usage("--days must be at least 1")),
        (InputFormat::Mixpanel, Some(days)) => {
            let bytes = match amount {
                Amount::Bytes(b) => b,
                Amount::Lines(n) => n.saturating_mul(generate::mixpanel::MEAN_LINE_BYTES),
            };
            bytes.div_ceil(days).max(1)
        }
    };
    let opts = GenerateOptions {
        out: args.out.clone(),
        amount,
        seed: args.seed,
        gzip_every: args.gzip_every,
        file_bytes,
    };
    let progress = Progress::new(Mode::auto(args.quiet));
    let total = match amount {
        Amount::Bytes(b) => b,
        Amount::Lines(n) => match args.format {
            InputFormat::Km => n * 110,
            InputFormat::Mixpanel => n * generate::mixpanel::MEAN_LINE_BYTES,
        },
    };
    let bar = progress.bytes("generate", total);
    let summary = match args.format {
        InputFormat::Km => generate::generate(&opts, &mut |n| bar.inc(n)),
        InputFormat::Mixpanel => generate::mixpanel::generate(&opts, &mut |n| bar.inc(n)),
    };
    bar.end(&summary);
    let summary = summary?;
    println!(
        "wrote {} revision file(s), {} lines, {} bytes to {}",
        summary.files,
        crate::report::count(summary.lines),
        crate::report::count(summary.bytes),
        args.out.display()
    );
    Ok(())
}
