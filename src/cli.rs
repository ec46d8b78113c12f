//! Command-line arguments (clap), read once and turned into validated plans.
//! No other module reads the environment or clap types.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::db::DatabaseUrl;
use crate::partition::Day;
use crate::pipeline::ImportPlan;
use crate::progress::Mode;

#[derive(Parser, Debug)]
#[command(
    name = "kmdb",
    version,
    about = "Bulk-load KissMetrics data exports into MySQL/MariaDB"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// mysql://user:password@host:port/database
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
    pub fn url(&self) -> Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => DatabaseUrl::parse(url),
            _ => bail!(
                "no database given: set DATABASE_URL=mysql://user:password@host:port/database \
                 (or pass --database-url)"
            ),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or upgrade the schema (idempotent).
    Setup {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Split events, properties and aliases into time partitions.
    Partition {
        #[command(flatten)]
        db: DbArgs,
        /// First day of the planned range (YYYY-MM-DD).
        #[arg(long, env = "KMDB_MIN_DATE")]
        min_date: String,
        /// Day the planned range reaches (YYYY-MM-DD).
        #[arg(long, env = "KMDB_MAX_DATE")]
        max_date: String,
        /// Days per partition.
        #[arg(long, env = "KMDB_DAYS_PER_PARTITION", default_value_t = 7)]
        days_per_partition: u32,
    },
    /// Import a KM export directory (revisions/N.json[.gz]).
    Import(ImportArgs),
    /// Show what is imported.
    Status {
        #[command(flatten)]
        db: DbArgs,
        /// State store file.
        #[arg(long, env = "KMDB_STATE", default_value = "kmdb-state.sqlite")]
        state: PathBuf,
    },
    /// Empty the data tables and the state store, keeping the filter tables.
    Flush {
        #[command(flatten)]
        db: DbArgs,
        /// State store file.
        #[arg(long, env = "KMDB_STATE", default_value = "kmdb-state.sqlite")]
        state: PathBuf,
        /// Confirm: this deletes every imported row.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Export directory: laid out like the bucket, or a directory of N.json[.gz].
    pub source: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// State store file (identities, keys, imported revisions).
    #[arg(long, env = "KMDB_STATE", default_value = "kmdb-state.sqlite")]
    pub state: PathBuf,
    /// Directory for TSV files and the rejects file.
    #[arg(long, env = "KMDB_WORK_DIR", default_value = "kmdb-work")]
    pub work_dir: PathBuf,
    /// First revision to import.
    #[arg(long, env = "KMDB_MIN_REVISION")]
    pub min_revision: Option<u64>,
    /// Last revision to import.
    #[arg(long, env = "KMDB_MAX_REVISION")]
    pub max_revision: Option<u64>,
    /// Parse threads (default: all cores).
    #[arg(long, env = "KMDB_JOBS")]
    pub jobs: Option<usize>,
    /// Concurrent LOAD DATA sessions.
    #[arg(long, env = "KMDB_LOAD_SESSIONS", default_value_t = 2)]
    pub load_sessions: usize,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

impl ImportArgs {
    pub fn plan(&self) -> Result<ImportPlan> {
        if let (Some(lo), Some(hi)) = (self.min_revision, self.max_revision) {
            if lo > hi {
                bail!("--min-revision {lo} is above --max-revision {hi}");
            }
        }
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if jobs == 0 || self.load_sessions == 0 {
            bail!("--jobs and --load-sessions must be at least 1");
        }
        Ok(ImportPlan {
            source: self.source.clone(),
            database: self.db.url()?,
            state: self.state.clone(),
            work_dir: self.work_dir.clone(),
            min_revision: self.min_revision,
            max_revision: self.max_revision,
            jobs,
            load_sessions: self.load_sessions,
            progress: Mode::auto(self.quiet),
            chunk_size: 4 << 20,
            batch_bytes: 32 << 20,
        })
    }
}

/// Validated `kmdb partition` arguments.
pub fn partition_plan(min: &str, max: &str, days: u32) -> Result<Vec<Day>> {
    crate::partition::plan(Day::parse(min)?, Day::parse(max)?, days)
}
