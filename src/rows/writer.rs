//! When batches are written and sent: per (table, partition), at a size
//! limit, held for partitions empty at the start until the revisions have
//! moved past them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::batch::{sort_rows, Batch, Row, Spares, BLOCK_BYTES};
use super::tsv::{escape_into, id_and_time, int, INT_DIGITS, TIME_BYTES};
use super::{RowSink, TsvFile};
use crate::dates::datetime;
use crate::partition::PartitionMap;
use crate::table::Table;

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
            spares: Spares::new(total_limit.div_ceil(BLOCK_BYTES)),
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
    pub fn release_passed(&mut self) -> Result<Vec<TsvFile>> {
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

impl RowSink for TsvWriter {
    fn event(&mut self, id: u64, t: i64, n: u32, user: u64) -> Result<()> {
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

    fn property(
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

    fn alias(&mut self, id: u64, t: i64, name1: &str, name2: &str, applied: bool) -> Result<()> {
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

    /// Sends the held partitions the revision has moved past (see
    /// [`TsvWriter::release_passed`]) with the next [`TsvWriter::take_ready`].
    fn end_revision(&mut self) -> Result<()> {
        let released = self.release_passed()?;
        self.ready.extend(released);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::batch::BLOCK_ROWS;
    use crate::rows::merge_runs;
    use crate::rows::RowSink;

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
            w.release_passed().unwrap().is_empty(),
            "January is still current"
        );
        // Revision 2: February, and 0.5 % stragglers from January.
        assert!(events(&mut w, 100_000, 100, JAN + 2 * DAY).is_empty());
        assert!(events(&mut w, 200_000, 20_000, JAN + 40 * DAY).is_empty());
        let released = w.release_passed().unwrap();
        // p0 held no rows: it stays held.
        assert_eq!(names(&released), [("p1", 20_100)]);
        let mut out = Vec::new();
        merge_runs(&released[0].parts, &mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 20_100);
        // Revision 3: a January straggler now goes straight; December is held.
        assert!(events(&mut w, 300_000, 1, JAN + 3 * DAY).is_empty());
        assert!(events(&mut w, 300_001, 1, JAN - DAY).is_empty());
        assert!(
            w.release_passed().unwrap().is_empty(),
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
