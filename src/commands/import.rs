//! `kmdb import`: loads the revisions of an export not imported yet.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::args::{DbArgs, S3Args, StateArgs};
use crate::exit::usage;
use crate::format::InputFormat;
use crate::interrupt;
use crate::pipeline::{self, ImportResult};
use crate::plan::{default_jobs, ImportPlan, RevisionRange, CHUNK_SIZE};
use crate::progress::{Mode, Progress};
use crate::report::{count, LoadTable};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Export directory (laid out like the bucket, or a directory of
    /// N.json[.gz]) or s3://bucket[/prefix].
    pub source: Option<String>,
    /// Input format of the export.
    #[arg(long, value_enum, env = "KMDB_FORMAT", default_value_t = InputFormat::Km)]
    pub format: InputFormat,
    #[command(flatten)]
    pub s3: S3Args,
    /// Keep files downloaded from S3 once imported.
    #[arg(long, env = "KMDB_KEEP_FILES")]
    pub keep_files: bool,
    /// Keep the batch files once loaded (for benchmarks of the load alone).
    #[arg(long, hide = true)]
    pub keep_tsv: bool,
    /// Load every file straight into its partition, never through a staging
    /// table (to measure what staging gains).
    #[arg(long, hide = true)]
    pub no_staging: bool,
    /// MB of rows per batch file (to measure the effect of file size).
    #[arg(long, hide = true, default_value_t = 32)]
    pub batch_mb: usize,
    /// Memory for the duplicate keys of events (Mixpanel's `$insert_id`)
    /// before the days used least recently are written aside to the state
    /// store, e.g. 64MiB.
    #[arg(long, hide = true, default_value = "64MiB")]
    pub duplicate_keys_memory: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Directory for batch files and the rejects file.
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
    /// Concurrent bulk-load sessions (and 8 more at the end for rows that
    /// came late for partitions already loaded). One more than the server's
    /// cores keeps them busy while a session waits for its exchange or its
    /// pages.
    #[arg(long, env = "KMDB_LOAD_SESSIONS", default_value_t = 3)]
    pub load_sessions: usize,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Say what would be imported, from where and into what, and check
    /// the database and the state store; download, load and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl Args {
    /// The validated plan of this import.
    pub fn plan(&self) -> Result<ImportPlan> {
        let revisions = RevisionRange {
            min: self.min_revision,
            max: self.max_revision,
        };
        if let (Some(lo), Some(hi)) = (revisions.min, revisions.max) {
            if lo > hi {
                return Err(usage(format!(
                    "--min-revision {lo} is above --max-revision {hi}"
                )));
            }
        }
        let jobs = self.jobs.unwrap_or_else(default_jobs);
        if jobs == 0 || self.load_sessions == 0 || self.batch_mb == 0 {
            return Err(usage(
                "--jobs, --load-sessions and --batch-mb must be at least 1",
            ));
        }
        let duplicate_keys_memory = crate::generate::parse_size(&self.duplicate_keys_memory)
            .map_err(|e| usage(format!("--duplicate-keys-memory: {e:#}")))?;
        let database = self.db.url()?;
        Ok(ImportPlan {
            source: self.s3.source(self.source.as_deref())?,
            format: self.format,
            keep_files: self.keep_files,
            keep_tsv: self.keep_tsv,
            staging: !self.no_staging,
            state: self.state.path_for(&database),
            database,
            work_dir: absolute(&self.work_dir),
            revisions,
            jobs,
            load_sessions: self.load_sessions,
            progress: Mode::auto(self.quiet),
            chunk_size: CHUNK_SIZE,
            batch_bytes: self.batch_mb << 20,
            duplicate_keys_memory: usize::try_from(duplicate_keys_memory).unwrap_or(usize::MAX),
        })
    }
}

/// `path` made absolute, so that messages and the rejects file name stay
/// meaningful from any directory.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

pub fn run(args: &Args) -> Result<()> {
    let plan = args.plan()?;
    let progress = Progress::new(plan.progress);
    // Ctrl-C and SIGTERM stop the import cleanly (exit code 130).
    interrupt::install();
    if args.dry_run {
        let preview = pipeline::preview::dry_run(&plan, &progress)?;
        print!("{preview}");
        if !preview.problems.is_empty() {
            anyhow::bail!("the import would stop: {}", preview.problems.join("; "));
        }
        return Ok(());
    }
    // An interrupted import is finished first, then the rest is imported.
    pipeline::import(&plan, &progress, &mut print_result)
}

/// The accounting of one import, on stdout.
fn print_result(result: &ImportResult) {
    let (Some(first), Some(last)) = (result.revisions.first(), result.revisions.last()) else {
        return;
    };
    let secs = result.seconds;
    println!(
        "imported revisions {first} .. {last} in {secs:.1} s ({} events/s)",
        count((result.accounting.events as f64 / secs.max(0.001)) as u64)
    );
    print!("{}", result.accounting);
    print!(
        "{}",
        LoadTable {
            tables: &result.tables,
            seconds: secs
        }
    );
    if let Some(path) = &result.rejects_file {
        println!("rejected lines written to {}", path.display());
    }
}
