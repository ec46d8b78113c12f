//! Command-line arguments (clap), read once and turned into validated plans.
//! No other module reads the environment or clap types.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::db::DatabaseUrl;
use crate::partition::Day;
use crate::pipeline::{ImportPlan, Source};
use crate::progress::Mode;
use crate::source::s3::S3Config;

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
    /// Download an S3 export to a local directory.
    Download {
        /// s3://bucket[/prefix]
        source: Option<String>,
        #[command(flatten)]
        s3: S3Args,
        /// Directory to write the export to (laid out like the bucket).
        #[arg(long)]
        to: PathBuf,
        /// First revision to download.
        #[arg(long, env = "KMDB_MIN_REVISION")]
        min_revision: Option<u64>,
        /// Last revision to download.
        #[arg(long, env = "KMDB_MAX_REVISION")]
        max_revision: Option<u64>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Write a synthetic export for tests and benchmarks.
    Generate {
        /// Directory to write (revisions/, index.csv, status.csv).
        #[arg(long)]
        out: PathBuf,
        /// Approximate size, e.g. 2GB or 500MiB.
        #[arg(long, conflicts_with = "lines", required_unless_present = "lines")]
        size: Option<String>,
        /// Exact number of lines.
        #[arg(long)]
        lines: Option<u64>,
        /// Seed: the same seed writes the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Gzip every K-th revision file.
        #[arg(long)]
        gzip_every: Option<u32>,
        /// Size of one revision file before compression, e.g. 64MiB.
        #[arg(long, default_value = "64MiB")]
        file_size: String,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Decode and classify a local export without a database (the parse floor).
    #[command(hide = true)]
    Parse {
        source: PathBuf,
        /// Parse threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, short)]
        quiet: bool,
    },
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

/// Where an S3 export is and how to fetch it.
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// S3-compatible endpoint (path-style addressing), e.g. http://127.0.0.1:9000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Concurrent downloads.
    #[arg(long, env = "KMDB_DOWNLOADS", default_value_t = 8)]
    pub downloads: usize,
    /// Bucket used when no SOURCE is given (km-db's variable).
    #[arg(long, env = "AWS_BUCKET", hide = true)]
    pub aws_bucket: Option<String>,
}

impl S3Args {
    /// SOURCE (a directory or s3:// URL), or `s3://$AWS_BUCKET` when absent.
    pub fn source(&self, given: Option<&str>) -> Result<Source> {
        let text = match (given, &self.aws_bucket) {
            (Some(s), _) => s.to_owned(),
            (None, Some(bucket)) if !bucket.is_empty() => format!("s3://{bucket}"),
            _ => bail!("no SOURCE given: pass an export directory or s3://bucket[/prefix] (or set AWS_BUCKET)"),
        };
        if text.starts_with("s3://") || text.starts_with("S3://") {
            if self.downloads == 0 {
                bail!("--downloads must be at least 1");
            }
            Ok(Source::S3 {
                url: text.parse()?,
                config: S3Config {
                    endpoint_url: self.endpoint_url.clone().filter(|e| !e.is_empty()),
                    downloads: self.downloads,
                    ..S3Config::default()
                },
            })
        } else {
            Ok(Source::Local(PathBuf::from(text)))
        }
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Export directory (laid out like the bucket, or a directory of
    /// N.json[.gz]) or s3://bucket[/prefix].
    pub source: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Keep files downloaded from S3 once imported.
    #[arg(long, env = "KMDB_KEEP_FILES")]
    pub keep_files: bool,
    /// Keep the TSV files once loaded (for benchmarks of the load alone).
    #[arg(long, hide = true)]
    pub keep_tsv: bool,
    /// Load every file straight into its partition, never through a staging
    /// table (to measure what staging gains).
    #[arg(long, hide = true)]
    pub no_staging: bool,
    /// MB of rows per TSV file (to measure the effect of file size).
    #[arg(long, hide = true, default_value_t = 32)]
    pub batch_mb: usize,
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
    /// Concurrent LOAD DATA sessions (and 8 more at the end for rows that
    /// came late for partitions already loaded). One more than the server's
    /// cores keeps them busy while a session waits for its exchange or its
    /// pages.
    #[arg(long, env = "KMDB_LOAD_SESSIONS", default_value_t = 3)]
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
        if jobs == 0 || self.load_sessions == 0 || self.batch_mb == 0 {
            bail!("--jobs, --load-sessions and --batch-mb must be at least 1");
        }
        Ok(ImportPlan {
            source: self.s3.source(self.source.as_deref())?,
            keep_files: self.keep_files,
            keep_tsv: self.keep_tsv,
            staging: !self.no_staging,
            database: self.db.url()?,
            state: self.state.clone(),
            work_dir: absolute(&self.work_dir),
            min_revision: self.min_revision,
            max_revision: self.max_revision,
            jobs,
            load_sessions: self.load_sessions,
            progress: Mode::auto(self.quiet),
            chunk_size: CHUNK_SIZE,
            batch_bytes: self.batch_mb << 20,
        })
    }
}

/// `path` made absolute, so that messages and the rejects file name stay
/// meaningful from any directory.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Bytes of input per parse task: small enough that a batch of parsed
/// records stays small, big enough to amortize the hand-offs.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Validated `kmdb partition` arguments.
pub fn partition_plan(min: &str, max: &str, days: u32) -> Result<Vec<Day>> {
    crate::partition::plan(Day::parse(min)?, Day::parse(max)?, days)
}
