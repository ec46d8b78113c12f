//! What an import is asked to do, as plain, validated values: no clap, no
//! environment (the commands build it, the pipeline follows it).

use std::path::PathBuf;

use crate::db::DatabaseUrl;
use crate::format::InputFormat;
use crate::progress::Mode;
use crate::source::Source;

/// Everything an import needs, validated.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub source: Source,
    pub format: InputFormat,
    /// Keep downloaded files after the import (S3 sources).
    pub keep_files: bool,
    /// Keep the batch files after loading them (for benchmarks of the load).
    pub keep_tsv: bool,
    /// Fill empty partitions through staging tables (MySQL's bulk load).
    pub staging: bool,
    pub database: DatabaseUrl,
    pub state: PathBuf,
    pub work_dir: PathBuf,
    pub revisions: RevisionRange,
    /// Parse threads.
    pub jobs: usize,
    /// Concurrent bulk-load sessions.
    pub load_sessions: usize,
    pub progress: Mode,
    /// Bytes of input per parse task.
    pub chunk_size: usize,
    /// Bytes of rows per batch file.
    pub batch_bytes: usize,
    /// Bytes of duplicate keys kept in memory (see `duplicates`).
    pub duplicate_keys_memory: usize,
}

impl ImportPlan {
    /// Where files downloaded from S3 go.
    pub fn download_dir(&self) -> PathBuf {
        self.work_dir.join("download")
    }
}

/// `--min-revision` .. `--max-revision`, each bound optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevisionRange {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl RevisionRange {
    pub fn contains(&self, revision: u64) -> bool {
        self.min.is_none_or(|m| revision >= m) && self.max.is_none_or(|m| revision <= m)
    }
}

/// Bytes of input per parse task: small enough that a batch of parsed
/// records stays small, big enough to amortize the hand-offs.
pub const CHUNK_SIZE: usize = 1 << 20;

/// The parse threads when `--jobs` is not given: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
