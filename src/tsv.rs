//! Rows → TSV files, one per (table, partition) batch, in the escaping of
//! MySQL's default `LOAD DATA` rules and sorted by `(t, id)` so InnoDB
//! appends to its clustered index.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::dates::datetime;
use crate::partition::PartitionMap;
pub use crate::table::Table;

/// Appends `s` escaped for `LOAD DATA ... FIELDS ESCAPED BY '\\'`.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// The first two columns of every table, `id` and `t`, and their tabs.
fn id_and_time(out: &mut Vec<u8>, id: u64, ts: &[u8; 19]) {
    int(out, id);
    out.push(b'\t');
    out.extend_from_slice(ts);
    out.push(b'\t');
}

// Bounds of a row's line: escaping at most doubles a text, hence the
// `2 * len` terms next to these.
/// Digits of the longest `u64`.
const INT_DIGITS: usize = 20;
/// Bytes of a datetime column.
const TIME_BYTES: usize = 19;

/// Appends `n` in decimal (faster than `write!` on this hot path).
fn int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
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

/// Bytes per block of a batch's lines.
const BLOCK_BYTES: usize = 256 << 10;
/// Rows per block of a batch's row entries (256 KiB).
const BLOCK_ROWS: usize = 8 << 10;

/// One buffered row: its sort key and where its line is.
#[derive(Clone, Copy, Default)]
struct Row {
    t: i64,
    id: u64,
    block: u32,
    start: u32,
    end: u32,
}

/// Rows of one (table, partition) waiting to be written. Lines and row
/// entries live in fixed-size blocks that [`Spares`] recycles: a growing
/// batch never copies what it holds, and a new batch reuses the memory of
/// written ones instead of fresh pages the kernel must zero (growing `Vec`s
/// cost a sixth of the resolver thread's time that way).
#[derive(Default)]
struct Batch {
    /// Lines; a line never spans two blocks.
    data: Vec<Vec<u8>>,
    rows: Vec<Vec<Row>>,
    bytes: usize,
    /// The lowest and highest `t`, and whether ids came in rising order
    /// (they do: ids follow the input), for [`sort_rows`].
    t_min: i64,
    t_max: i64,
    last_id: u64,
    ids_fall: bool,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a row whose line `format` writes, at most `max_len` bytes long
    /// (a longer one is still whole, in a block grown for it), straight
    /// into the batch's last block; returns the line's length.
    fn push(
        &mut self,
        t: i64,
        id: u64,
        max_len: usize,
        spares: &mut Spares,
        format: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        if self.is_empty() {
            (self.t_min, self.t_max) = (t, t);
        }
        if self
            .data
            .last()
            .is_none_or(|b| b.capacity() - b.len() < max_len)
        {
            self.data.push(spares.data_block(max_len));
        }
        if self.rows.last().is_none_or(|r| r.len() == r.capacity()) {
            self.rows.push(spares.rows_block());
        }
        let block = self.data.len() - 1;
        let data = &mut self.data[block];
        let start = data.len();
        format(data);
        let row = Row {
            t,
            id,
            block: block as u32,
            start: start as u32,
            end: data.len() as u32,
        };
        if let Some(rows) = self.rows.last_mut() {
            rows.push(row);
        }
        self.t_min = self.t_min.min(t);
        self.t_max = self.t_max.max(t);
        self.ids_fall |= id < self.last_id;
        self.last_id = id;
        let len = data.len() - start;
        self.bytes += len;
        len
    }

    fn line(&self, row: &Row) -> &[u8] {
        &self.data[row.block as usize][row.start as usize..row.end as usize]
    }
}

/// Blocks of written batches, for the next ones; at most `max` of each kind
/// are kept.
struct Spares {
    data: Vec<Vec<u8>>,
    rows: Vec<Vec<Row>>,
    max: usize,
}

impl Spares {
    fn data_block(&mut self, min: usize) -> Vec<u8> {
        match self.data.pop() {
            Some(block) if block.capacity() >= min => block,
            _ => Vec::with_capacity(BLOCK_BYTES.max(min)),
        }
    }

    fn rows_block(&mut self) -> Vec<Row> {
        self.rows
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_ROWS))
    }

    fn keep(&mut self, batch: Batch) {
        for mut block in batch.data {
            if self.data.len() < self.max && block.capacity() == BLOCK_BYTES {
                block.clear();
                self.data.push(block);
            }
        }
        for mut block in batch.rows {
            if self.rows.len() < self.max {
                block.clear();
                self.rows.push(block);
            }
        }
    }
}

/// Buffers rows per (table, partition) and writes them out as sorted TSV
/// files once a batch is big enough (or at the end).
pub struct TsvWriter {
    dir: PathBuf,
    maps: [PartitionMap; 3],
    batches: Vec<Batch>,
    spares: Spares,
    /// The rows of the batch being written, sorted, and the sort's second
    /// buffer (both kept for the next).
    order: Vec<Row>,
    scratch: Vec<Row>,
    /// What goes to the file being written (kept for the next).
    out: Vec<u8>,
    buffered: usize,
    batch_limit: usize,
    total_limit: usize,
    seq: u64,
    last_time: (i64, [u8; 19]),
    /// Per slot: written batches are held on disk until the partition is
    /// released ([`Self::end_revision`]) or [`Self::finish`].
    hold: Vec<bool>,
    /// Per slot: held at the start (so once released, its rows are late).
    was_held: Vec<bool>,
    held: Vec<Vec<TsvFile>>,
    /// Per slot: rows of the current revision (see [`Self::end_revision`]).
    revision_rows: Vec<u64>,
    rows_written: u64,
    /// Files written by the rows pushed since [`Self::take_ready`].
    ready: Vec<TsvFile>,
}

/// Bytes written to a TSV file at a time.
const OUT_BYTES: usize = 1 << 20;

/// A held partition is released once this share or less of a revision's
/// rows (of its table) falls at or before it: the revisions have moved past.
const PASSED_SHARE: f64 = 0.01;
/// Revisions with fewer rows of a table say nothing about where its time is.
const PASSED_MIN_ROWS: u64 = 10_000;

impl TsvWriter {
    /// `batch_limit`: bytes at which one batch is written; `total_limit`:
    /// bytes buffered over all batches before the largest is written.
    pub fn new(
        dir: &Path,
        maps: [PartitionMap; 3],
        batch_limit: usize,
        total_limit: usize,
    ) -> Result<TsvWriter> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating work directory {}", dir.display()))?;
        let n = maps.iter().map(|m| m.len()).sum();
        Ok(TsvWriter {
            dir: dir.to_owned(),
            maps,
            batches: (0..n).map(|_| Batch::default()).collect(),
            spares: Spares {
                data: Vec::new(),
                rows: Vec::new(),
                max: total_limit.div_ceil(BLOCK_BYTES),
            },
            order: Vec::new(),
            scratch: Vec::new(),
            out: Vec::with_capacity(OUT_BYTES),
            buffered: 0,
            batch_limit,
            total_limit,
            seq: 0,
            last_time: (0, datetime(0)),
            hold: vec![false; n],
            was_held: vec![false; n],
            held: (0..n).map(|_| Vec::new()).collect(),
            revision_rows: vec![0; n],
            rows_written: 0,
            ready: Vec::new(),
        })
    }

    /// Holds the rows of `partition` until the end, to load them as one file
    /// (for partitions empty at the start, which then fill in one bulk load).
    pub fn hold(&mut self, table: Table, partition: &str) {
        let offset = self.offset(table);
        let map = &self.maps[table as usize];
        if let Some(i) = (0..map.len()).find(|&i| map.name(i) == partition) {
            self.hold[offset + i] = true;
            self.was_held[offset + i] = true;
        }
    }

    /// Rows written to TSV files so far, held ones included.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    fn offset(&self, table: Table) -> usize {
        self.maps[..table as usize].iter().map(|m| m.len()).sum()
    }

    fn slot(&self, table: Table, t: &[u8; 19]) -> usize {
        self.offset(table) + self.maps[table as usize].locate(t)
    }

    /// Ends a revision: held partitions that the revision has moved past
    /// (at most [`PASSED_SHARE`] of its rows fall in or before them) are
    /// released as one merged file each, so that their bulk load overlaps the
    /// rest of the import. Their later rows (stragglers) load straight into
    /// the now filled partition. KM revisions follow receive time, so a
    /// partition is rarely visited again once passed; a partition that holds
    /// nothing yet stays held.
    pub fn end_revision(&mut self) -> Result<Vec<TsvFile>> {
        let mut files = Vec::new();
        for table in Table::ALL {
            let range = self.offset(table)..self.offset(table) + self.maps[table as usize].len();
            let counts = &self.revision_rows[range.clone()];
            let total: u64 = counts.iter().sum();
            if total < PASSED_MIN_ROWS {
                continue;
            }
            // The first partition past the revision's lowest PASSED_SHARE.
            let mut below = 0;
            let first = counts
                .iter()
                .position(|&n| {
                    below += n;
                    below as f64 > total as f64 * PASSED_SHARE
                })
                .unwrap_or(counts.len());
            for slot in range.start..range.start + first {
                let batched = !self.batches[slot].is_empty();
                if self.hold[slot] && (batched || !self.held[slot].is_empty()) {
                    if batched {
                        self.write_out(slot)?; // held: adds a run
                    }
                    self.hold[slot] = false;
                    let runs = std::mem::take(&mut self.held[slot]);
                    files.extend(self.merged(runs));
                }
            }
        }
        self.revision_rows.iter_mut().for_each(|n| *n = 0);
        Ok(files)
    }

    fn slot_name(&self, slot: usize) -> (Table, &str) {
        let mut slot = slot;
        for table in Table::ALL {
            let map = &self.maps[table as usize];
            if slot < map.len() {
                return (table, map.name(slot));
            }
            slot -= map.len();
        }
        unreachable!("slot out of range")
    }

    pub fn event(&mut self, id: u64, t: i64, n: u32, user: u64) -> Result<()> {
        let ts = self.datetime(t);
        self.push(
            Table::Events,
            t,
            id,
            &ts,
            3 * INT_DIGITS + TIME_BYTES + 4,
            |line| {
                id_and_time(line, id, &ts);
                int(line, n as u64);
                line.push(b'\t');
                int(line, user);
                line.push(b'\n');
            },
        )
    }

    pub fn property(
        &mut self,
        id: u64,
        t: i64,
        key: u32,
        value: &str,
        user: u64,
        event: Option<u64>,
    ) -> Result<()> {
        let ts = self.datetime(t);
        let max_len = 4 * INT_DIGITS + TIME_BYTES + 6 + 2 * value.len();
        self.push(Table::Properties, t, id, &ts, max_len, |line| {
            id_and_time(line, id, &ts);
            int(line, key as u64);
            line.push(b'\t');
            escape_into(line, value.as_bytes());
            line.push(b'\t');
            int(line, user);
            line.push(b'\t');
            match event {
                Some(e) => int(line, e),
                None => line.extend_from_slice(b"\\N"),
            }
            line.push(b'\n');
        })
    }

    pub fn alias(
        &mut self,
        id: u64,
        t: i64,
        name1: &str,
        name2: &str,
        applied: bool,
    ) -> Result<()> {
        let ts = self.datetime(t);
        let max_len = INT_DIGITS + TIME_BYTES + 6 + 2 * (name1.len() + name2.len());
        self.push(Table::Aliases, t, id, &ts, max_len, |line| {
            id_and_time(line, id, &ts);
            escape_into(line, name1.as_bytes());
            line.push(b'\t');
            escape_into(line, name2.as_bytes());
            line.extend_from_slice(if applied { b"\t1\n" } else { b"\t0\n" });
        })
    }

    /// [`datetime`], remembered for the next row: an event's properties
    /// share its time.
    fn datetime(&mut self, t: i64) -> [u8; 19] {
        if self.last_time.0 != t {
            self.last_time = (t, datetime(t));
        }
        self.last_time.1
    }

    fn push(
        &mut self,
        table: Table,
        t: i64,
        id: u64,
        ts: &[u8; 19],
        max_len: usize,
        format: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let slot = self.slot(table, ts);
        self.revision_rows[slot] += 1;
        let batch = &mut self.batches[slot];
        self.buffered += batch.push(t, id, max_len, &mut self.spares, format);
        let full = if batch.bytes >= self.batch_limit {
            slot
        } else if self.buffered >= self.total_limit {
            (0..self.batches.len())
                .max_by_key(|&i| self.batches[i].bytes)
                .unwrap_or(slot)
        } else {
            return Ok(());
        };
        if let Some(file) = self.write_out(full)? {
            self.ready.push(file);
        }
        Ok(())
    }

    /// The files that rows pushed since the last call filled and wrote.
    pub fn take_ready(&mut self) -> Vec<TsvFile> {
        std::mem::take(&mut self.ready)
    }

    /// Writes a batch; returns it unless its slot is held.
    fn write_out(&mut self, slot: usize) -> Result<Option<TsvFile>> {
        let file = self.write(slot)?;
        if self.hold[slot] {
            self.held[slot].push(file);
            return Ok(None);
        }
        Ok(Some(file))
    }

    /// Writes every non-empty batch. Held partitions come first, one file
    /// each, largest first, so that the longest loads start first; then
    /// what is left of the others: rows of partitions never held, and rows
    /// that came late for released ones (marked [`TsvFile::late`]).
    pub fn finish(&mut self) -> Result<Vec<TsvFile>> {
        for slot in 0..self.batches.len() {
            if self.hold[slot] && !self.batches[slot].is_empty() {
                self.write_out(slot)?;
            }
        }
        let mut files: Vec<TsvFile> = std::mem::take(&mut self.held)
            .into_iter()
            .filter_map(|runs| self.merged(runs))
            .collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.rows));
        for slot in 0..self.batches.len() {
            if !self.batches[slot].is_empty() {
                files.extend(self.write_out(slot)?);
            }
        }
        Ok(files)
    }

    /// One file for a held partition's runs, served as their merge.
    fn merged(&self, mut runs: Vec<TsvFile>) -> Option<TsvFile> {
        if runs.len() <= 1 {
            return runs.pop();
        }
        let first = &runs[0];
        let path = self.dir.join(format!(
            "{}.{}.all.tsv",
            first.table.name(),
            first.partition
        ));
        Some(TsvFile {
            table: first.table,
            partition: first.partition.clone(),
            path,
            parts: runs.iter().flat_map(|r| r.parts.iter().cloned()).collect(),
            rows: runs.iter().map(|r| r.rows).sum(),
            late: false,
        })
    }

    fn write(&mut self, slot: usize) -> Result<TsvFile> {
        let batch = std::mem::take(&mut self.batches[slot]);
        self.buffered -= batch.bytes;
        self.order.clear();
        batch.rows.iter().for_each(|rows| self.order.extend(rows));
        sort_rows(&mut self.order, &mut self.scratch, &batch);
        self.seq += 1;
        let (table, partition) = self.slot_name(slot);
        let partition = partition.to_owned();
        let path = self.dir.join(format!(
            "{}.{}.{:06}.tsv",
            table.name(),
            partition,
            self.seq
        ));
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let out = &mut self.out;
        out.clear();
        for row in &self.order {
            out.extend_from_slice(batch.line(row));
            if out.len() >= OUT_BYTES {
                file.write_all(out)
                    .with_context(|| format!("writing {}", path.display()))?;
                out.clear();
            }
        }
        // No fsync: the files are scratch, rewritten by a re-run after a crash.
        file.write_all(out)
            .with_context(|| format!("writing {}", path.display()))?;
        let rows = self.order.len() as u64;
        self.rows_written += rows;
        self.spares.keep(batch);
        Ok(TsvFile {
            table,
            partition,
            parts: vec![path.clone()],
            path,
            rows,
            late: self.was_held[slot] && !self.hold[slot],
        })
    }
}

/// Bits of `t` one pass of [`sort_rows`] sorts by.
const RADIX_BITS: u32 = 11;

/// Sorts a batch's rows by `(t, id)`. Ids come in rising order, so a
/// stable sort by `t` alone does it: a least-significant-digit radix sort
/// on `t - t_min`, two passes for a 28-day partition, several times faster
/// than a comparison sort. Batches whose ids do not rise, or whose times
/// span more than 2^33 seconds, take the comparison sort.
fn sort_rows(rows: &mut Vec<Row>, scratch: &mut Vec<Row>, batch: &Batch) {
    let span = batch.t_max.wrapping_sub(batch.t_min) as u64;
    if batch.ids_fall || span >= 1 << 33 || rows.len() < 256 {
        rows.sort_unstable_by_key(|r| (r.t, r.id));
        return;
    }
    let bits = u64::BITS - span.leading_zeros();
    let digits = 1usize << RADIX_BITS;
    let mask = (digits - 1) as u64;
    scratch.clear();
    scratch.resize(rows.len(), Row::default());
    let mut starts = vec![0usize; digits];
    let mut shift = 0;
    while shift < bits {
        let digit = |r: &Row| ((r.t - batch.t_min) as u64 >> shift & mask) as usize;
        starts.fill(0);
        for r in rows.iter() {
            starts[digit(r)] += 1;
        }
        let mut next = 0;
        for s in starts.iter_mut() {
            (*s, next) = (next, next + *s);
        }
        for r in rows.iter() {
            let d = digit(r);
            scratch[starts[d]] = *r;
            starts[d] += 1;
        }
        std::mem::swap(rows, scratch);
        shift += RADIX_BITS;
    }
}

/// Writes the lines of sorted TSV runs to `out` in `(t, id)` order: a k-way
/// merge, so that a held partition loads as one sorted file.
pub fn merge_runs(parts: &[PathBuf], out: &mut dyn Write) -> std::io::Result<()> {
    merge_runs_with(parts, out, RUN_BUFFER)
}

/// Bytes of each run read at a time by [`merge_runs`].
const RUN_BUFFER: usize = 256 << 10;

fn merge_runs_with(parts: &[PathBuf], out: &mut dyn Write, buffer: usize) -> std::io::Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let mut runs = Vec::with_capacity(parts.len());
    for p in parts {
        runs.push(Run::open(p, buffer)?);
    }
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, run) in runs.iter_mut().enumerate() {
        if let Some(key) = run.advance()? {
            heap.push(Reverse((key, i)));
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let run = &mut runs[i];
        let line = run.line();
        out.write_all(line)?;
        if !line.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
        if let Some(key) = run.advance()? {
            heap.push(Reverse((key, i)));
        }
    }
    Ok(())
}

/// One sorted run being merged: its lines are read in blocks and handed out
/// in place, without a copy per line.
struct Run {
    file: File,
    buf: Vec<u8>,
    /// The current line is `buf[start..end]`; `buf[..filled]` is read.
    start: usize,
    end: usize,
    filled: usize,
    eof: bool,
}

impl Run {
    fn open(path: &Path, buffer: usize) -> std::io::Result<Run> {
        Ok(Run {
            file: File::open(path)?,
            buf: vec![0; buffer.max(1)],
            start: 0,
            end: 0,
            filled: 0,
            eof: false,
        })
    }

    /// Moves to the next line; its sort key, or `None` after the last.
    fn advance(&mut self) -> std::io::Result<Option<(u64, u64)>> {
        use std::io::Read;

        self.start = self.end;
        loop {
            let rest = &self.buf[self.start..self.filled];
            if let Some(i) = memchr::memchr(b'\n', rest) {
                self.end = self.start + i + 1;
                return Ok(Some(sort_key(self.line())));
            }
            if self.eof {
                // A last line without its newline.
                self.end = self.filled;
                return Ok((self.start < self.end).then(|| sort_key(self.line())));
            }
            // Keep the partial line, at the front, and read more.
            self.buf.copy_within(self.start..self.filled, 0);
            self.filled -= self.start;
            (self.start, self.end) = (0, 0);
            if self.filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.file.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn line(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// `(t, id)` of a TSV line (`id` is the first column, `t` the second) as
/// two integers: the 14 digits of `YYYY-MM-DD HH:MM:SS` packed 4 bits
/// each keep their order, and compare without a call to `memcmp`.
fn sort_key(line: &[u8]) -> (u64, u64) {
    let tab = memchr::memchr(b'\t', line).unwrap_or(line.len());
    let id = line[..tab].iter().fold(0u64, |n, &d| {
        n.wrapping_mul(10).wrapping_add(d.wrapping_sub(b'0') as u64)
    });
    let mut t = 0u64;
    if let Some(ts) = line.get(tab + 1..tab + 20) {
        for (i, &d) in ts.iter().enumerate() {
            if !matches!(i, 4 | 7 | 10 | 13 | 16) {
                t = t << 4 | (d.wrapping_sub(b'0') & 0xf) as u64;
            }
        }
    }
    (t, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mysql_specials() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\tb\nc\rd\\e\0f\\N".as_bytes());
        assert_eq!(out, b"a\\tb\\nc\\rd\\\\e\\0f\\\\N");
    }

    #[test]
    fn datetimes() {
        assert_eq!(&datetime(0), b"1970-01-01 00:00:00");
        assert_eq!(&datetime(1_400_000_000), b"2014-05-13 16:53:20");
        assert_eq!(&datetime(951_782_400), b"2000-02-29 00:00:00");
        assert_eq!(&datetime(253_402_300_799), b"9999-12-31 23:59:59");
    }

    /// Maps of one partition, `pLast`, for each table.
    fn one_partition_each() -> [PartitionMap; 3] {
        let last = || PartitionMap::from_descriptions(&[("pLast".into(), "MAXVALUE".into())]);
        [last().unwrap(), last().unwrap(), last().unwrap()]
    }

    /// Batches many blocks long, the second one in recycled blocks, come
    /// out whole and sorted.
    #[test]
    fn batches_spanning_blocks_come_out_whole_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let maps = one_partition_each();
        let mut w = TsvWriter::new(dir.path(), maps, 8 * BLOCK_BYTES, 1 << 30).unwrap();
        let mut files = Vec::new();
        let n = 3 * BLOCK_ROWS as u64;
        for id in 1..=n {
            // Times out of order; long values so lines fill data blocks too.
            let t = 1_400_000_000 + (id * 7919 % 1000) as i64;
            let value = "v".repeat((id % 300) as usize);
            w.property(id, t, 1, &value, 1, Some(id)).unwrap();
            files.extend(w.take_ready());
        }
        files.extend(w.finish().unwrap());
        assert!(files.len() >= 3, "{} files", files.len());
        let mut seen = 0;
        for f in &files {
            let text = std::fs::read_to_string(&f.path).unwrap();
            let keys: Vec<(String, u64)> = text
                .lines()
                .map(|l| {
                    let cols: Vec<&str> = l.split('\t').collect();
                    assert_eq!(cols[3].len() as u64, cols[0].parse::<u64>().unwrap() % 300);
                    (cols[1].to_owned(), cols[0].parse().unwrap())
                })
                .collect();
            assert!(keys.windows(2).all(|k| k[0] <= k[1]), "sorted by (t, id)");
            assert_eq!(keys.len() as u64, f.rows);
            seen += f.rows;
        }
        assert_eq!(seen, n);
    }

    /// The radix sort orders rows as the comparison sort does, for spans of
    /// one to 33 bits, many equal times, and batches it leaves to the
    /// comparison sort (falling ids, huge spans).
    #[test]
    fn rows_sort_by_time_then_id() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let cases: [(u32, usize, bool); 7] = [
            (1, 5_000, false),
            (11, 5_000, false),
            (12, 70_000, false),
            (22, 70_000, false),
            (33, 20_000, false),
            (40, 20_000, false),
            (22, 20_000, true),
        ];
        for (span_bits, n, shuffled_ids) in cases {
            let mut batch = Batch::default();
            let mut spares = Spares {
                data: Vec::new(),
                rows: Vec::new(),
                max: 0,
            };
            let base = -(1i64 << 35) + (next() % 1000) as i64;
            for i in 0..n as u64 {
                let t = base + (next() % (1u64 << span_bits)) as i64;
                let id = if shuffled_ids { next() % 1000 } else { i * 3 };
                batch.push(t, id, 2, &mut spares, |l| l.extend_from_slice(b"x\n"));
            }
            let mut rows: Vec<Row> = batch.rows.iter().flatten().copied().collect();
            let mut expected: Vec<(i64, u64)> = rows.iter().map(|r| (r.t, r.id)).collect();
            expected.sort_unstable();
            sort_rows(&mut rows, &mut Vec::new(), &batch);
            let got: Vec<(i64, u64)> = rows.iter().map(|r| (r.t, r.id)).collect();
            assert!(got == expected, "span 2^{span_bits}, {n} rows");
        }
    }

    #[test]
    fn a_held_partition_comes_as_one_merged_file() {
        let dir = tempfile::tempdir().unwrap();
        let maps = one_partition_each();
        // 64-byte batches: every third row or so writes a run.
        let mut w = TsvWriter::new(dir.path(), maps, 64, 1 << 20).unwrap();
        w.hold(Table::Events, "pLast");
        let mut early = Vec::new();
        let ts = [
            1_400_000_300,
            1_400_000_100,
            1_400_000_200,
            1_400_000_100,
            1_400_000_000,
        ];
        for (id, t) in ts.into_iter().enumerate() {
            w.event(id as u64 + 1, t, 1, 1).unwrap();
            early.extend(w.take_ready());
        }
        assert!(early.is_empty(), "held rows are not sent early");
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 1);
        let f = &files[0];
        assert!(f.parts.len() > 1, "{:?}", f.parts);
        assert_eq!(f.rows, 5);
        assert_eq!(w.rows_written(), 5);
        let mut out = Vec::new();
        merge_runs(&f.parts, &mut out).unwrap();
        let ids: Vec<&str> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert_eq!(ids, ["5", "2", "4", "3", "1"], "sorted by (t, id)");
    }

    /// Runs merge as one sorted file when lines cross the read blocks, the
    /// blocks must grow for a long line, and a run lacks its last newline
    /// (the merge adds it).
    #[test]
    fn runs_merge_across_read_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        let mut parts = Vec::new();
        for run in 0..5u64 {
            let mut rows: Vec<(i64, u64)> = (0..200)
                .map(|i| {
                    (
                        1_400_000_000 + ((i * 7 + run * 13) % 97) as i64 * 3_601,
                        run * 1000 + i,
                    )
                })
                .collect();
            rows.sort();
            let mut text = String::new();
            for (t, id) in &rows {
                let pad = "x".repeat((*id % 40) as usize);
                text.push_str(&format!(
                    "{id}\t{}\t{pad}\n",
                    std::str::from_utf8(&datetime(*t)).unwrap()
                ));
            }
            if run == 3 {
                text.pop();
            }
            let path = dir.path().join(format!("run{run}.tsv"));
            std::fs::write(&path, &text).unwrap();
            parts.push(path);
            all.extend(text.lines().map(str::to_owned));
        }
        all.sort_by_key(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[1].to_owned(), cols[0].parse::<u64>().unwrap())
        });
        let expected = all.join("\n") + "\n";
        for buffer in [1, 16, 100, 256 << 10] {
            let mut out = Vec::new();
            merge_runs_with(&parts, &mut out, buffer).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "buffer {buffer}");
        }
    }

    const DAY: i64 = 86_400;
    /// 2014-01-01 00:00:00 UTC.
    const JAN: i64 = 1_388_534_400;

    fn maps() -> [PartitionMap; 3] {
        let map = || {
            PartitionMap::from_descriptions(&[
                ("p0".into(), "'2014-01-01 00:00:00'".into()),
                ("p1".into(), "'2014-02-01 00:00:00'".into()),
                ("p2".into(), "'2014-03-01 00:00:00'".into()),
                ("pLast".into(), "MAXVALUE".into()),
            ])
            .unwrap()
        };
        [map(), map(), map()]
    }

    /// `n` events from id `first` on, at `t`; returns the files sent.
    fn events(w: &mut TsvWriter, first: u64, n: u64, t: i64) -> Vec<TsvFile> {
        for id in first..first + n {
            w.event(id, t, 1, 1).unwrap();
        }
        w.take_ready()
    }

    fn names(files: &[TsvFile]) -> Vec<(&str, u64)> {
        files
            .iter()
            .map(|f| (f.partition.as_str(), f.rows))
            .collect()
    }

    #[test]
    fn a_held_partition_is_released_once_the_revisions_have_moved_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TsvWriter::new(dir.path(), maps(), 256 << 10, 1 << 30).unwrap();
        for p in ["p0", "p1", "p2", "pLast"] {
            w.hold(Table::Events, p);
        }
        // Revision 1: January.
        assert!(events(&mut w, 1, 20_000, JAN + DAY).is_empty());
        assert!(
            w.end_revision().unwrap().is_empty(),
            "January is still current"
        );
        // Revision 2: February, and 0.5 % stragglers from January.
        assert!(events(&mut w, 100_000, 100, JAN + 2 * DAY).is_empty());
        assert!(events(&mut w, 200_000, 20_000, JAN + 40 * DAY).is_empty());
        let released = w.end_revision().unwrap();
        // p0 held no rows: it stays held.
        assert_eq!(names(&released), [("p1", 20_100)]);
        let mut out = Vec::new();
        merge_runs(&released[0].parts, &mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 20_100);
        // Revision 3: a January straggler now goes straight; December is held.
        assert!(events(&mut w, 300_000, 1, JAN + 3 * DAY).is_empty());
        assert!(events(&mut w, 300_001, 1, JAN - DAY).is_empty());
        assert!(
            w.end_revision().unwrap().is_empty(),
            "too few rows to judge"
        );
        let rest = w.finish().unwrap();
        assert_eq!(names(&rest), [("p2", 20_000), ("p0", 1), ("p1", 1)]);
        assert_eq!(w.rows_written(), 40_102);
        // Only the January straggler came after its partition's file.
        let late: Vec<bool> = rest.iter().map(|f| f.late).collect();
        assert_eq!(late, [false, false, true]);
        assert!(!released[0].late);
    }
}
