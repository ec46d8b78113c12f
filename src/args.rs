//! Argument groups several subcommands share: the database, the state
//! store, the S3 source, and what the analysis commands share.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::analysis::output::Format as Output;
use crate::analysis::run::{Reading, TimeRange};
use crate::analysis::time::{format_datetime, parse_datetime};
use crate::db::url::URL_FORMS;
use crate::db::{Backend, DatabaseUrl};
use crate::exit::usage;
use crate::progress::Mode;
use crate::source::{s3, Source};
use crate::state;

/// The database.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// mysql://user:password@host:port/database or postgres://user:password@host:port/database
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
    /// The parsed URL; a missing or malformed one is a usage mistake.
    pub fn url(&self) -> Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => {
                DatabaseUrl::parse(url).map_err(|e| usage(e.to_string()))
            }
            _ => Err(usage(format!(
                "no database given: set DATABASE_URL to {URL_FORMS} (or pass --database-url)"
            ))),
        }
    }
}

/// The state store.
#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// State store file (identities, keys, imported revisions) [default:
    /// kmdb-state-HOST-PORT-DATABASE.sqlite in the current directory, one
    /// per database]
    #[arg(long = "state", env = "KMDB_STATE")]
    pub path: Option<PathBuf>,
}

impl StateArgs {
    /// The state file: `--state`, or the default one of the database `url`.
    pub fn path_for(&self, url: &DatabaseUrl) -> PathBuf {
        match &self.path {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => {
                let port = url.port().unwrap_or(match url.backend() {
                    Backend::MySql => 3306,
                    Backend::Postgres => 5432,
                });
                PathBuf::from(state::default_file_name(url.host(), port, &url.database()))
            }
        }
    }
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
                return Err(usage("--downloads must be at least 1"));
            }
            Ok(Source::S3 {
                url: text.parse()?,
                config: s3::S3Config {
                    endpoint_url: self.endpoint_url.clone().filter(|e| !e.is_empty()),
                    downloads: self.downloads,
                    ..s3::S3Config::default()
                },
            })
        } else {
            Ok(Source::Local(PathBuf::from(text)))
        }
    }
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
#[derive(Args, Debug, Clone)]
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
    /// Counting threads [default: all cores].
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
    /// `--from` / `--to`, checked (a usage error names the flag).
    pub fn range(&self) -> Result<TimeRange> {
        let parse = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| parse_datetime(s).map_err(|e| usage(format!("{flag}: {e:#}"))))
                .transpose()
        };
        let (from, to) = (parse("--from", &self.from)?, parse("--to", &self.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(usage(format!(
                    "--from {} is not before --to {}: nothing can be counted",
                    format_datetime(f),
                    format_datetime(t)
                )));
            }
        }
        Ok(TimeRange { from, to })
    }

    /// `--format`, or the default for where stdout goes.
    pub fn output(&self) -> Output {
        use std::io::IsTerminal;
        match self.format {
            Some(FormatArg::Table) => Output::Table,
            Some(FormatArg::Csv) => Output::Csv,
            Some(FormatArg::Json) => Output::Json,
            None if std::io::stdout().is_terminal() => Output::Table,
            None => Output::Json,
        }
    }

    /// How the events are read.
    pub fn reading(&self) -> Result<Reading> {
        let threads = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if threads == 0 || self.read_sessions == 0 {
            return Err(usage("--jobs and --read-sessions must be at least 1"));
        }
        let work_dir = self.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        Ok(Reading {
            work_dir: std::path::absolute(&work_dir).unwrap_or(work_dir),
            threads,
            sessions: self.read_sessions,
            memory: self.memory_mb << 20,
            progress: Mode::auto(self.quiet),
        })
    }
}
