//! `kmdb partition`: splits the partitioned tables by time, from dates given
//! or from the export's own dates, and re-plans them on request.

use anyhow::{bail, Result};

use crate::args::{DbArgs, S3Args};
use crate::dates::Day;
use crate::db::{self, Target};
use crate::exit::usage;
use crate::format::InputFormat;
use crate::partition::{self, Fit};
use crate::pipeline;
use crate::plan::default_jobs;
use crate::progress::{Mode, Progress};
use crate::source::{self, summary, Source};
use crate::table::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    /// First day of the planned range (YYYY-MM-DD).
    #[arg(
        long,
        env = "KMDB_MIN_DATE",
        required_unless_present = "from_export",
        conflicts_with = "from_export"
    )]
    pub min_date: Option<String>,
    /// Day the planned range reaches (YYYY-MM-DD).
    #[arg(
        long,
        env = "KMDB_MAX_DATE",
        required_unless_present = "from_export",
        conflicts_with = "from_export"
    )]
    pub max_date: Option<String>,
    /// Plan the range the export's rows cover: from its index.csv, else by
    /// reading every line (a local directory or s3://bucket[/prefix]).
    #[arg(long, value_name = "SOURCE")]
    pub from_export: Option<String>,
    /// With --from-export: read every line for the dates even when index.csv
    /// gives them (a local directory only).
    #[arg(long, requires = "from_export")]
    pub scan: bool,
    /// Input format of the export (with --from-export).
    #[arg(long, value_enum, env = "KMDB_FORMAT", default_value_t = InputFormat::Km)]
    pub format: InputFormat,
    #[command(flatten)]
    pub s3: S3Args,
    /// Days per partition.
    #[arg(long, env = "KMDB_DAYS_PER_PARTITION", default_value_t = 7)]
    pub days_per_partition: u32,
    /// Replace the tables' partitions by exactly this plan, moving the rows
    /// already loaded (rewrites the tables: takes a while when they are big).
    #[arg(long)]
    pub replan: bool,
    /// No progress output (for the scan).
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let days = args.days_per_partition;
    if days == 0 {
        return Err(usage("--days-per-partition must be at least 1"));
    }
    let (min, max) = match (&args.min_date, &args.max_date, &args.from_export) {
        (Some(min), Some(max), _) => {
            let day =
                |s: &str, flag: &str| Day::parse(s).map_err(|e| usage(format!("{flag}: {e:#}")));
            let (min, max) = (day(min, "--min-date")?, day(max, "--max-date")?);
            if max <= min {
                return Err(usage(format!(
                    "--max-date ({max}) must be after --min-date ({min})"
                )));
            }
            (min, max)
        }
        (_, _, Some(export)) => export_range(args, export)?,
        _ => {
            return Err(usage(
                "give --min-date and --max-date, or --from-export SOURCE",
            ))
        }
    };
    let bounds = partition::plan(min, max, days).map_err(|e| usage(format!("{e:#}")))?;
    let url = args.db.url()?;
    let mut target = db::connect(&url)?;
    target.check_schema()?;
    let asked = format!("{min} .. {max}, {days} day(s) each, plus pLast");
    let existing = target.partitions(Table::Events)?.day_bounds();
    let differs = differs(&mut *target, &bounds)?;
    if args.replan {
        let changed = target.replan_partitions(&bounds)?;
        match changed {
            0 => println!("the tables already have this plan: {asked}"),
            n => println!(
                "re-planned {n} table(s), rows kept: {} (was {}); plan: {asked}",
                partition::describe(&bounds),
                partition::describe(&existing)
            ),
        }
        return Ok(());
    }
    let added = target.add_partitions(&bounds)?;
    println!("{added} partition(s) added per table; plan: {asked}");
    if differs {
        let kept = match added {
            0 => "nothing was changed".to_owned(),
            n => format!("only the {n} partition(s) past their last bound were added"),
        };
        eprintln!(
            "warning: the tables are partitioned on another plan ({}) than the one asked for \
             ({}): {kept}. To have exactly the plan asked for, run the same command with \
             --replan (it moves the rows already loaded into the new partitions)",
            partition::describe(&existing),
            partition::describe(&bounds)
        );
    }
    Ok(())
}

/// Whether any partitioned table has partitions the plan `bounds` does not
/// extend.
fn differs(target: &mut dyn Target, bounds: &[Day]) -> Result<bool> {
    for table in Table::ALL {
        let existing = target.partitions(table)?.day_bounds();
        if matches!(partition::fit(&existing, bounds), Fit::Differs { .. }) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The range the rows of `export` cover: from its index.csv, or by reading
/// every line.
fn export_range(args: &Args, export: &str) -> Result<(Day, Day)> {
    let src = args.s3.source(Some(export))?;
    let format = args.format.format();
    let progress = Progress::new(Mode::auto(args.quiet));
    if !args.scan {
        let scratch = std::env::temp_dir().join("kmdb-partition-listing");
        let listed = source::list(&src, format, &scratch)?;
        if let Some((lo, hi)) = listed.index_csv.as_deref().and_then(summary::index_times) {
            let (min, max) = partition::range_of(lo, hi);
            println!(
                "{src}: index.csv dates its files {} .. {}: planning {min} .. {max}",
                Day::of(lo.max(0)),
                Day::of(hi.max(0))
            );
            return Ok((min, max));
        }
    }
    let Source::Local(dir) = &src else {
        bail!(
            "{src} has no index.csv with dates: download it (`kmdb download {src} --to DIR`) \
             and plan from the directory, or give --min-date and --max-date"
        );
    };
    progress.log(&format!(
        "{src}: reading every line for the dates of its rows"
    ));
    let days = pipeline::records_per_day(dir, format, default_jobs(), &progress)?;
    let Some((min, max)) = partition::busy_range(&days) else {
        bail!("{src} holds no record with a valid timestamp: nothing to plan");
    };
    let rows: u64 = days.values().sum();
    println!(
        "{src}: {} records dated {min} .. {}: planning {min} .. {max}",
        crate::report::count(rows),
        Day(max.0 - 1)
    );
    Ok((min, max))
}
