//! `kmdb partition`: splits the partitioned tables by time.

use anyhow::Result;

use crate::args::DbArgs;
use crate::dates::Day;
use crate::db;
use crate::exit::usage;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    /// First day of the planned range (YYYY-MM-DD).
    #[arg(long, env = "KMDB_MIN_DATE")]
    pub min_date: String,
    /// Day the planned range reaches (YYYY-MM-DD).
    #[arg(long, env = "KMDB_MAX_DATE")]
    pub max_date: String,
    /// Days per partition.
    #[arg(long, env = "KMDB_DAYS_PER_PARTITION", default_value_t = 7)]
    pub days_per_partition: u32,
}

pub fn run(args: &Args) -> Result<()> {
    let day = |s: &str, flag: &str| Day::parse(s).map_err(|e| usage(format!("{flag}: {e:#}")));
    let (min, max) = (
        day(&args.min_date, "--min-date")?,
        day(&args.max_date, "--max-date")?,
    );
    let days = args.days_per_partition;
    if days == 0 {
        return Err(usage("--days-per-partition must be at least 1"));
    }
    if max <= min {
        return Err(usage(format!(
            "--max-date ({max}) must be after --min-date ({min})"
        )));
    }
    let bounds = crate::partition::plan(min, max, days)?;
    let url = args.db.url()?;
    let mut target = db::connect(&url)?;
    target.check_schema()?;
    let added = target.add_partitions(&bounds)?;
    println!(
        "{added} partition(s) added per table; plan: {min} .. {max}, \
         {days} day(s) each, plus pLast"
    );
    Ok(())
}
