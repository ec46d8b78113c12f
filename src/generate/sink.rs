//! The files of a generated export: plain or gzip.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;

use super::*;

/// A revision file being written.
pub(super) struct RevisionFile {
    /// The name relative to the export directory, as `index.csv` lists it.
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) out: BufWriter<Sink>,
    /// Uncompressed bytes written so far.
    pub(super) bytes: u64,
    /// The smallest and largest valid `_t` written so far.
    pub(super) range: Option<(i64, i64)>,
}

/// Where a revision file's bytes go: straight to disk or through gzip.
pub(super) enum Sink {
    Plain(File),
    Gzip(Box<GzEncoder<File>>),
}

/// One row of `index.csv`.
pub(super) struct IndexRow {
    pub(super) name: String,
    pub(super) range: Option<(i64, i64)>,
}

impl RevisionFile {
    pub(super) fn create(export: &Path, number: u64, gzip: bool) -> Result<Self> {
        let name = format!("revisions/{number}.json{}", if gzip { ".gz" } else { "" });
        Self::create_named(export, name, gzip)
    }

    /// The file `name` (relative to `export`).
    pub(super) fn create_named(export: &Path, name: String, gzip: bool) -> Result<Self> {
        let path = export.join(&name);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let sink = if gzip {
            Sink::Gzip(Box::new(GzEncoder::new(file, Compression::fast())))
        } else {
            Sink::Plain(file)
        };
        let out = BufWriter::with_capacity(1 << 20, sink);
        Ok(Self {
            name,
            path,
            out,
            bytes: 0,
            range: None,
        })
    }

    pub(super) fn write(&mut self, line: &Line) -> Result<()> {
        self.write_bytes(line.bytes, line.timestamp)
    }

    /// Writes a line (terminator included) whose valid time, if any, is
    /// `timestamp`.
    pub(super) fn write_bytes(&mut self, bytes: &[u8], timestamp: Option<i64>) -> Result<()> {
        self.out
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.bytes += bytes.len() as u64;
        if let Some(t) = timestamp {
            self.range = Some(self.range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<IndexRow> {
        let context = || format!("writing {}", self.path.display());
        let sink = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(context)?;
        match sink {
            Sink::Plain(_) => {}
            Sink::Gzip(encoder) => {
                encoder.finish().with_context(context)?;
            }
        }
        Ok(IndexRow {
            name: self.name,
            range: self.range,
        })
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(file) => file.write(buf),
            Sink::Gzip(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(file) => file.flush(),
            Sink::Gzip(encoder) => encoder.flush(),
        }
    }
}
