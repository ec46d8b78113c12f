//! Rows → batch files, one per (table, partition), sorted by `(t, id)` so
//! that the database appends to its clustered index: the line format
//! ([`tsv`]), the batches ([`batch`]), when they are written ([`writer`])
//! and the merge of a held partition's runs ([`merge`]).

mod batch;
mod merge;
mod tsv;
mod writer;

use std::path::PathBuf;

use anyhow::Result;

pub use merge::merge_runs;
pub use tsv::{escape_into, key_line, user_line};
pub use writer::TsvWriter;

use crate::table::Table;

/// Where the resolver puts the rows of stored records.
pub trait RowSink {
    fn event(&mut self, id: u64, t: i64, n: u32, user: u64) -> Result<()>;
    fn property(
        &mut self,
        id: u64,
        t: i64,
        key: u32,
        value: &str,
        user: u64,
        event: Option<u64>,
    ) -> Result<()>;
    fn alias(&mut self, id: u64, t: i64, name1: &str, name2: &str, applied: bool) -> Result<()>;
    /// The rows of one revision are all in.
    fn end_revision(&mut self) -> Result<()>;
}

/// A finished TSV file, ready for `LOAD DATA`.
#[derive(Clone, Debug)]
pub struct TsvFile {
    pub table: Table,
    pub partition: String,
    /// The name the server asks for. A held partition's file is not on
    /// disk: it is its `parts` merged as they are sent (see [`merge_runs`]).
    pub path: PathBuf,
    /// The sorted files behind `path` (just `path` for a plain file).
    pub parts: Vec<PathBuf>,
    pub rows: u64,
    /// Rows that came late for a held partition already released: they
    /// must not load before its file (which would then find it filled).
    pub late: bool,
}
