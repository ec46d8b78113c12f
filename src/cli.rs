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
    /// People through funnels, any number of them in one pass (per person,
    /// across aliases).
    Funnel(FunnelArgs),
    /// The most frequent sequences of events right after an event.
    Next(NextArgs),
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

/// Output formats of `kmdb funnel` and `kmdb next`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
}

/// What `kmdb funnel` and `kmdb next` share: the database, the time range,
/// the output format and how the events are read.
#[derive(Args, Debug)]
pub struct AnalysisArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Count only step 1s (or occurrences) at or after this UTC time:
    /// YYYY-MM-DD or YYYY-MM-DD HH:MM:SS.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Count only step 1s (or occurrences) before this UTC time.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Directory for the temporary files that sort events by person
    /// [default: the system's temporary directory].
    #[arg(long, env = "KMDB_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Counting threads (default: all cores).
    #[arg(long, env = "KMDB_JOBS")]
    pub jobs: Option<usize>,
    /// MB of events held in memory before they spill to the work directory.
    #[arg(long, hide = true, default_value_t = 256)]
    pub memory_mb: usize,
    /// Database sessions reading events and properties side by side.
    #[arg(long, env = "KMDB_READ_SESSIONS", default_value_t = 2)]
    pub read_sessions: usize,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

impl AnalysisArgs {
    fn range(&self) -> Result<crate::analysis::run::TimeRange> {
        use crate::analysis::time::{format_datetime, parse_datetime};
        let parse = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| parse_datetime(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
                .transpose()
        };
        let (from, to) = (parse("--from", &self.from)?, parse("--to", &self.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                bail!(
                    "--from {} is not before --to {}: nothing can be counted",
                    format_datetime(f),
                    format_datetime(t)
                );
            }
        }
        Ok(crate::analysis::run::TimeRange { from, to })
    }

    fn format(&self) -> crate::analysis::output::Format {
        use crate::analysis::output::Format;
        use std::io::IsTerminal;
        match self.format {
            Some(FormatArg::Table) => Format::Table,
            Some(FormatArg::Csv) => Format::Csv,
            Some(FormatArg::Json) => Format::Json,
            None if std::io::stdout().is_terminal() => Format::Table,
            None => Format::Json,
        }
    }

    fn reading(&self) -> Result<crate::analysis::run::Reading> {
        let threads = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if threads == 0 || self.read_sessions == 0 {
            bail!("--jobs and --read-sessions must be at least 1");
        }
        Ok(crate::analysis::run::Reading {
            work_dir: absolute(&self.work_dir.clone().unwrap_or_else(std::env::temp_dir)),
            threads,
            sessions: self.read_sessions,
            memory: self.memory_mb << 20,
            progress: Mode::auto(self.quiet),
        })
    }
}

#[derive(Args, Debug)]
pub struct FunnelArgs {
    /// JSON list of funnels: [{"name": "signup", "steps": [{"event": "visited
    /// site"}, {"event": "signed up", "where": {"Plan": "gold"}}], "window": "7d"}]
    pub funnels: PathBuf,
    /// Also write a self-contained HTML page with a chart per funnel.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub common: AnalysisArgs,
}

impl FunnelArgs {
    pub fn plan(&self) -> Result<crate::analysis::run::FunnelPlan> {
        Ok(crate::analysis::run::FunnelPlan {
            file: self.funnels.clone(),
            range: self.common.range()?,
            format: self.common.format(),
            html: self.html.clone(),
            reading: self.common.reading()?,
        })
    }
}

#[derive(Args, Debug)]
pub struct NextArgs {
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

/// Longest `--steps`: sequences are kept whole in memory.
const MAX_NEXT_STEPS: usize = 100;

impl NextArgs {
    pub fn plan(&self) -> Result<crate::analysis::run::NextPlan> {
        if self.event.is_empty() {
            bail!("EVENT must not be empty");
        }
        if !(1..=MAX_NEXT_STEPS).contains(&self.steps) {
            bail!(
                "--steps must be between 1 and {MAX_NEXT_STEPS} (got {})",
                self.steps
            );
        }
        let conditions = self
            .conditions
            .iter()
            .map(|c| match c.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => bail!("--where {c:?}: expected KEY=VALUE, like --where Plan=gold"),
            })
            .collect::<Result<Vec<_>>>()?;
        let within = self
            .within
            .as_deref()
            .map(|w| {
                crate::analysis::time::parse_duration(w)
                    .map_err(|e| anyhow::anyhow!("--within: {e}"))
            })
            .transpose()?;
        Ok(crate::analysis::run::NextPlan {
            event: self.event.clone(),
            conditions,
            steps: self.steps,
            within,
            range: self.common.range()?,
            top: self.top,
            format: self.common.format(),
            reading: self.common.reading()?,
        })
    }
}
