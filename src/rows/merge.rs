//! The k-way merge of sorted batch files: a held partition is sent as one
//! file in `(t, id)` order.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    use crate::dates::datetime;

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
}
