//! Where revision files come from (a local directory or S3) and how their
//! bytes are cut into chunks of whole lines.

pub mod local;
pub mod s3;
pub mod summary;

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, Receiver};
use flate2::read::MultiGzDecoder;
use memmap2::{Mmap, MmapMut, RemapOptions};

/// Where an export is: a local directory or an S3 prefix.
#[derive(Debug, Clone)]
pub enum Source {
    Local(PathBuf),
    S3 {
        url: s3::S3Url,
        config: s3::S3Config,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::S3 { url, .. } => write!(f, "{url}"),
        }
    }
}

/// A listed export, local or on S3.
pub struct Export {
    /// Its revision files in order: on local disk, or where the download
    /// puts them.
    pub files: Vec<RevisionFile>,
    /// KM's `index.csv` and `status.csv`, when present.
    pub index_csv: Option<String>,
    pub status_csv: Option<String>,
    /// Names of the files that look like revisions but are not
    /// ([`FileNames::near_miss`]), sorted: not imported.
    pub ignored: Vec<String>,
    /// For an S3 export: the client and the objects to download.
    pub remote: Option<Remote>,
}

/// The objects of an S3 export, and the client that lists and fetches them.
pub struct Remote {
    pub client: s3::S3Source,
    pub files: Vec<s3::RemoteFile>,
}

/// Lists `source`, an export whose files are named as `names` says; the
/// files of an S3 export are placed in `download_dir`.
pub fn list(source: &Source, names: &dyn FileNames, download_dir: &Path) -> Result<Export> {
    match source {
        Source::Local(dir) => local::list(dir, names),
        Source::S3 { url, config } => {
            let client = s3::S3Source::connect(url.clone(), config.clone())?;
            let listing = client.list(names)?;
            let files: Vec<RevisionFile> = listing
                .files
                .iter()
                .map(|f| RevisionFile {
                    revision: f.revision,
                    path: download_dir.join(&f.name),
                    gzip: f.gzip,
                    size: f.size,
                })
                .collect();
            check_revisions(&files)?;
            Ok(Export {
                files,
                index_csv: listing.index_csv,
                status_csv: listing.status_csv,
                ignored: listing.ignored,
                remote: Some(Remote {
                    client,
                    files: listing.files,
                }),
            })
        }
    }
}

/// Largest revision number: ids are `revision << 40 | n`.
pub const MAX_REVISION: u64 = (1 << 23) - 1;

/// One `N.json` or `N.json.gz` on local disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionFile {
    pub revision: u64,
    pub path: PathBuf,
    pub gzip: bool,
    pub size: u64,
}

/// How an input format names its revision files (see `format/`).
pub trait FileNames: Sync {
    /// The revision a file name stands for, and whether the file is gzip;
    /// `None` for any other file.
    fn revision_of(&self, name: &str) -> Option<(u64, bool)>;
    /// True for a name that looks meant as a revision file but is not one:
    /// such files are not imported, and the import names them.
    fn near_miss(&self, name: &str) -> bool;
    /// The folder of an export that holds its revision files, if any.
    fn folder(&self) -> Option<&'static str>;
    /// The revision file names, as messages show them.
    fn names(&self) -> &'static str;
    /// True when the rejects file names each line's file rather than its
    /// revision number (the format derives numbers the user never sees).
    /// No default: a wrapper of a format must say what the format says.
    fn rejects_name_files(&self) -> bool;
}

/// A run of whole lines of one file.
pub struct Chunk {
    pub revision: u64,
    /// Line number (1-based) of the chunk's first line.
    pub first_line: u64,
    data: ChunkData,
}

enum ChunkData {
    Mapped(Arc<Mmap>, Range<usize>),
    Owned(Vec<u8>),
    Long(LongLine),
}

impl Chunk {
    /// A chunk of `data`, lines of `revision` from `first_line` on.
    pub fn new(revision: u64, first_line: u64, data: Vec<u8>) -> Chunk {
        Chunk {
            revision,
            first_line,
            data: ChunkData::Owned(data),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            ChunkData::Mapped(map, range) => &map[range.clone()],
            ChunkData::Owned(v) => v,
            ChunkData::Long(line) => line.bytes(),
        }
    }

    /// The chunk's bytes without the last `\n`; `None` for an empty chunk,
    /// which has no lines (a chunk of `\n` has one, empty).
    fn body(&self) -> Option<&[u8]> {
        let bytes = self.bytes();
        (!bytes.is_empty()).then(|| bytes.strip_suffix(b"\n").unwrap_or(bytes))
    }

    /// The chunk's lines, without their `\n`. memchr finds the ends: a
    /// byte-by-byte split took a tenth of the parse time.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.body();
        let text = body.unwrap_or_default();
        line_ranges(text, body.is_some()).map(move |r| &text[r])
    }

    /// [`Chunk::lines`] as text, if the whole chunk is valid UTF-8 (the
    /// common case): one check per chunk instead of one per line, which
    /// took a twentieth of the parse time.
    pub fn text_lines(&self) -> Option<impl Iterator<Item = &str>> {
        let body = self.body();
        let text = simdutf8::basic::from_utf8(body.unwrap_or_default()).ok()?;
        // Lines end at `\n`, an ASCII byte: every range is on a char boundary.
        Some(line_ranges(text.as_bytes(), body.is_some()).map(move |r| &text[r]))
    }

    /// How many lines [`Chunk::lines`] gives.
    pub fn line_count(&self) -> u64 {
        self.body().map_or(0, |body| {
            memchr::memchr_iter(b'\n', body).count() as u64 + 1
        })
    }
}

/// The ranges of the lines of `body` (a chunk without its last `\n`), none
/// if `any` is false.
fn line_ranges(body: &[u8], any: bool) -> impl Iterator<Item = Range<usize>> + '_ {
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    let mut start = 0;
    ends.take_while(move |_| any).map(move |end| {
        let line = start..end;
        start = end + 1;
        line
    })
}

/// The UTF-8 byte order mark. KM does not write one, but a file saved by
/// an editor may start with it: it marks the encoding and is not part of
/// the first line (RFC 8259 lets a JSON reader ignore it), so it is
/// skipped there. Anywhere else it is text, as the spec reads it.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Cuts a revision file into chunks of about `chunk_size` bytes of whole
/// lines and hands them to `each`, in order, without a leading byte order
/// mark. `read` counts the file's bytes (compressed, for gzip) as they are
/// consumed.
pub fn for_each_chunk(
    file: &RevisionFile,
    chunk_size: usize,
    read: &AtomicU64,
    mut each: impl FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let path = &file.path;
    let fh = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut line = 1u64;
    if !file.gzip {
        let len = fh
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len == 0 {
            return Ok(());
        }
        // SAFETY: kmdb only maps revision files it does not write, and
        // exports are immutable once KM wrote them; a file truncated under
        // us would raise SIGBUS, which the docs warn against (don't edit an
        // export while importing it).
        let map =
            unsafe { Mmap::map(&fh) }.with_context(|| format!("mapping {}", path.display()))?;
        // Read the whole file from disk now, in large requests, rather than
        // a page fault at a time as the parse gets there. Only a hint.
        map.advise(memmap2::Advice::WillNeed).ok();
        let map = Arc::new(map);
        let mut start = if map.starts_with(BOM) { BOM.len() } else { 0 };
        read.fetch_add(start as u64, Ordering::Relaxed);
        while start < map.len() {
            let mut end = (start + chunk_size).min(map.len());
            if end < map.len() {
                end = match memchr::memchr(b'\n', &map[end..]) {
                    Some(i) => end + i + 1,
                    None => map.len(),
                };
            }
            let chunk = Chunk {
                revision: file.revision,
                first_line: line,
                data: ChunkData::Mapped(map.clone(), start..end),
            };
            line += chunk.line_count();
            read.fetch_add((end - start) as u64, Ordering::Relaxed);
            each(chunk)?;
            start = end;
        }
        return Ok(());
    }

    will_need(&fh);
    let counted = CountingReader {
        inner: BufReader::with_capacity(1 << 20, fh),
        read,
    };
    let mut gz = MultiGzDecoder::new(counted);
    let damaged = || format!("reading {}: damaged or truncated gzip data", path.display());
    // What the last read brought after the last line end: the start of the
    // next chunk's first line (and, after a long line, maybe whole lines).
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let mut buf = std::mem::take(&mut carry);
        let more = fill(&mut gz, &mut buf, chunk_size).with_context(damaged)?;
        if std::mem::take(&mut first) && buf.starts_with(BOM) {
            buf.drain(..BOM.len());
        }
        if buf.is_empty() {
            return Ok(());
        }
        // Each turn hands out at least one line, so the loop always moves on.
        let data = if !more {
            ChunkData::Owned(buf) // the end: what is left is the last chunk
        } else if let Some(i) = memchr::memrchr(b'\n', &buf) {
            // Keep the partial last line for the next chunk.
            carry = buf.split_off(i + 1);
            ChunkData::Owned(buf)
        } else {
            // No line ends in a whole chunk: `buf` is the start of a line
            // longer than a chunk, which is read to its end at once (filling
            // `buf` again would read nothing more: it is full).
            let (long, rest) = read_long_line(&mut gz, buf, chunk_size).with_context(damaged)?;
            carry = rest;
            ChunkData::Long(long)
        };
        let chunk = Chunk {
            revision: file.revision,
            first_line: line,
            data,
        };
        line += chunk.line_count();
        each(chunk)?;
        if !more {
            return Ok(());
        }
    }
}

/// A line longer than a chunk, read from a gzip file: `len` bytes of an
/// anonymous memory map that grows in place (`mremap`), so that the line
/// is never copied (a `Vec` growing by reallocation holds the old and the
/// new copy at once) and its memory goes back to the system once the chunk
/// is dropped, instead of staying with the allocator.
struct LongLine {
    map: MmapMut,
    len: usize,
}

impl LongLine {
    fn bytes(&self) -> &[u8] {
        &self.map[..self.len]
    }

    /// Room for `additional` more bytes past `len`, at least doubling.
    fn reserve(&mut self, additional: usize) -> std::io::Result<()> {
        if self.map.len() - self.len >= additional {
            return Ok(());
        }
        let new_len = (self.len + additional).max(self.map.len() * 2);
        // SAFETY: the map is anonymous memory, not a file: every byte of
        // the new length is memory (new pages read as zeros), and nothing
        // borrows the map while it moves (`&mut self`).
        unsafe { self.map.remap(new_len, RemapOptions::new().may_move(true)) }
    }
}

/// Reads the rest of a line that a whole chunk did not end: `start` holds
/// its first bytes (no `\n`). Returns the line, with its `\n` unless the
/// input ended first, and what the last read brought after it (at most
/// `step` bytes, which belong to the next chunk).
fn read_long_line(
    r: &mut impl Read,
    start: Vec<u8>,
    step: usize,
) -> std::io::Result<(LongLine, Vec<u8>)> {
    let step = step.max(64 * 1024);
    let mut line = LongLine {
        map: MmapMut::map_anon(2 * start.len().max(step))?,
        len: start.len(),
    };
    line.map[..start.len()].copy_from_slice(&start);
    drop(start);
    loop {
        line.reserve(step)?;
        let old = line.len;
        let n = read_some(r, &mut line.map[old..old + step])?;
        if n == 0 {
            return Ok((line, Vec::new()));
        }
        let read = old..old + n;
        if let Some(i) = memchr::memchr(b'\n', &line.map[read.clone()]) {
            line.len = old + i + 1;
            let rest = line.map[line.len..read.end].to_vec();
            return Ok((line, rest));
        }
        line.len = read.end;
    }
}

/// One `read`, retried when a signal interrupts it.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// [`for_each_chunk`] over `files`, in order, with up to `ahead` files
/// read at once, each on a thread of its own that keeps up to
/// `chunks_ahead` chunks ready. Gzip files then inflate side by side
/// instead of one after the other on a single reader (the parse workers
/// waited for it), and the kernel reads the next files from disk while this
/// one is parsed.
pub fn for_each_chunk_in_order(
    files: &[RevisionFile],
    ahead: usize,
    chunks_ahead: usize,
    chunk_size: usize,
    arrivals: &Arrivals,
    read: &AtomicU64,
    mut each: impl FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|s| {
        // The readers of the files ahead, in order; the one being handed
        // out is not in the queue.
        let (queue_tx, queue_rx) = bounded::<Receiver<Result<Chunk>>>(ahead.max(1) - 1);
        s.spawn(move || {
            for file in files {
                let (tx, rx) = bounded(chunks_ahead);
                if queue_tx.send(rx).is_err() {
                    return; // the consumer stopped
                }
                if let Err(e) = arrivals.wait(file) {
                    tx.send(Err(e)).ok();
                    return;
                }
                s.spawn(move || {
                    let sent = for_each_chunk(file, chunk_size, read, |c| {
                        tx.send(Ok(c)).map_err(|_| anyhow!("stopped"))
                    });
                    if let Err(e) = sent {
                        tx.send(Err(e)).ok();
                    }
                });
            }
        });
        for file in queue_rx {
            for chunk in file {
                each(chunk?)?;
            }
        }
        Ok(())
    })
}

/// Reads until `buf` holds more than `want` bytes; false at the end of
/// the input. Reads nothing when `buf` already holds that much (a carried
/// line start as long as a chunk): the caller reads such a line to its end
/// with [`read_long_line`], never by filling again.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let target = buf.len().max(want) + 64 * 1024;
    buf.reserve(target - buf.len());
    while buf.len() < want + 1 {
        let old = buf.len();
        buf.resize(old + 64 * 1024, 0);
        let n = match read_some(r, &mut buf[old..]) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(old);
                return Err(e);
            }
        };
        buf.truncate(old + n);
        if n == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Asks the kernel to read `file` ahead of us; only a hint.
fn will_need(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor we own; it reads nothing of ours.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
}

struct CountingReader<'a, R> {
    inner: R,
    read: &'a AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Checks revision numbers fit kmdb's ids.
pub fn check_revisions(files: &[RevisionFile]) -> Result<()> {
    if let Some(f) = files.iter().find(|f| f.revision > MAX_REVISION) {
        bail!(
            "{}: the revision number is above the largest kmdb supports ({MAX_REVISION})",
            f.path.display()
        );
    }
    Ok(())
}

/// `dir/FOLDER` when the format has one and it exists, else `dir` itself.
pub fn revisions_dir(dir: &Path, names: &dyn FileNames) -> PathBuf {
    match names.folder().map(|f| dir.join(f)) {
        Some(sub) if sub.is_dir() => sub,
        _ => dir.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_too_large_for_the_ids_are_named() {
        let file = |name: &str| {
            let stem = name.split('.').next().unwrap();
            let (revision, gzip) = (stem.parse().unwrap_or(u64::MAX), name.ends_with(".gz"));
            RevisionFile {
                revision,
                path: PathBuf::from("export/revisions").join(name),
                gzip,
                size: 0,
            }
        };
        assert!(check_revisions(&[file("1.json"), file("8388607.json.gz")]).is_ok());
        for name in ["8388608.json", "99999999999999999999999.json.gz"] {
            let err = check_revisions(&[file("1.json"), file(name)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "export/revisions/{name}: the revision number is above the largest kmdb supports (8388607)"
                )
            );
        }
    }

    fn chunk(data: &[u8]) -> Chunk {
        Chunk::new(1, 1, data.to_vec())
    }

    /// Writes revision `revision` into `dir` (gzip-compressed if `gzip`).
    fn revision_file(dir: &Path, revision: u64, gzip: bool, text: &[u8]) -> RevisionFile {
        use std::io::Write;
        let path = dir.join(format!("{revision}.json{}", if gzip { ".gz" } else { "" }));
        let mut f = File::create(&path).unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(text).unwrap();
            gz.finish().unwrap();
        } else {
            f.write_all(text).unwrap();
        }
        let size = std::fs::metadata(&path).unwrap().len();
        RevisionFile {
            revision,
            path,
            gzip,
            size,
        }
    }

    /// Files read side by side come out as one reader gives them, in
    /// order; an error comes after the chunks of the files before it.
    #[test]
    fn files_read_ahead_come_out_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for revision in 1..=7u64 {
            let text: String = (0..50)
                .map(|i| format!("{{\"r\":{revision},\"i\":{i}}}\n"))
                .collect();
            files.push(revision_file(
                dir.path(),
                revision,
                revision % 3 == 0,
                text.as_bytes(),
            ));
        }
        let read = AtomicU64::new(0);
        let chunks = |files: &[RevisionFile], ahead| {
            let mut out = Vec::new();
            let r =
                for_each_chunk_in_order(files, ahead, 2, 100, &Arrivals::all_ready(), &read, |c| {
                    out.push((c.revision, c.first_line, c.bytes().to_vec()));
                    Ok(())
                });
            (r, out)
        };
        let mut one_by_one = Vec::new();
        for f in &files {
            for_each_chunk(f, 100, &read, |c| {
                one_by_one.push((c.revision, c.first_line, c.bytes().to_vec()));
                Ok(())
            })
            .unwrap();
        }
        assert!(one_by_one.len() > 7 * 5);
        for ahead in [1, 2, 4, 16] {
            let (r, out) = chunks(&files, ahead);
            r.unwrap();
            assert!(out == one_by_one, "ahead {ahead}");
        }
        // Revision 4 missing: everything of 1-3, then its error.
        std::fs::remove_file(&files[3].path).unwrap();
        let (r, out) = chunks(&files, 4);
        let err = format!("{:#}", r.unwrap_err());
        assert!(err.contains("4.json"), "{err}");
        let before = one_by_one.iter().filter(|c| c.0 < 4).count();
        assert!(out == one_by_one[..before], "{} chunks", out.len());
    }

    /// A byte order mark opening a file, plain or gzip, is not part of its
    /// first line; one anywhere else is.
    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"\xef\xbb\xbf{\"a\":1}\n\xef\xbb\xbf{\"b\":2}\n";
        for (revision, gzip) in [(1, false), (2, true)] {
            let file = revision_file(dir.path(), revision, gzip, text);
            let name = file.path.display().to_string();
            let read = AtomicU64::new(0);
            let mut lines = Vec::new();
            for_each_chunk(&file, 1 << 20, &read, |c| {
                assert_eq!(c.first_line, 1);
                lines.extend(c.lines().map(<[u8]>::to_vec));
                Ok(())
            })
            .unwrap();
            assert_eq!(
                lines,
                [b"{\"a\":1}".to_vec(), b"\xef\xbb\xbf{\"b\":2}".to_vec()],
                "{name}"
            );
            assert_eq!(read.into_inner(), file.size, "{name}: every byte counted");
        }
        // A file that is only the mark has no lines.
        let file = revision_file(dir.path(), 3, false, BOM);
        let mut n = 0;
        for_each_chunk(&file, 1 << 20, &AtomicU64::new(0), |c| {
            n += c.line_count();
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 0);
    }

    /// The lines `for_each_chunk` gives for `file`, checking that chunks
    /// number their lines on from each other and end on a line end (all
    /// but the last). On a thread with a deadline: a reader that loops
    /// forever fails the test instead of hanging it.
    fn lines_read(file: &RevisionFile, chunk_size: usize) -> Vec<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = file.clone();
        std::thread::spawn(move || {
            let read = AtomicU64::new(0);
            let mut lines = Vec::new();
            let mut ends = Vec::new();
            let r = for_each_chunk(&owned, chunk_size, &read, |c| {
                assert_eq!(c.first_line, lines.len() as u64 + 1);
                ends.push(c.bytes().ends_with(b"\n"));
                lines.extend(c.lines().map(<[u8]>::to_vec));
                Ok(())
            });
            let all_but_last_end_lines = ends.iter().rev().skip(1).all(|&e| e);
            tx.send((r.map(|()| lines), all_but_last_end_lines, read.into_inner()))
                .ok();
        });
        let (lines, ends, read) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the reader finishes");
        assert!(ends, "a chunk other than the last ends inside a line");
        assert_eq!(read, file.size, "every byte counted");
        lines.unwrap()
    }

    /// A line of `len` bytes that says which it is.
    fn numbered_line(i: usize, len: usize) -> Vec<u8> {
        let mut line = format!("{i}:").into_bytes();
        line.resize(len, b'a' + (i % 26) as u8);
        line.truncate(len);
        line
    }

    /// Lines longer than a chunk (and than the reader's 64 KiB reads),
    /// first, last, alone or between short lines, with or without a final
    /// line end, come out whole and in order from plain and gzip files.
    #[test]
    fn lines_longer_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let mut revision = 0;
        for chunk_size in [1usize, 100, 4096, 65_536, 100_000] {
            let mut lengths: Vec<usize> = [0usize, 1, 2, 63, 64, 65]
                .iter()
                .flat_map(|d| [chunk_size.saturating_sub(*d), chunk_size + d])
                .chain([2 * chunk_size, 2 * chunk_size + 1, 5 * chunk_size + 7])
                .chain([65_535, 65_536, 65_537, 131_071, 131_072, 131_073, 300_001])
                .collect();
            lengths.retain(|&len| len > 0); // a file of one empty line is "\n", not ""
            lengths.sort_unstable();
            lengths.dedup();
            let short = |i| numbered_line(i, 10);
            // Each long line alone, between short lines, and all of them
            // back to back; with and without the final line end.
            let mut texts: Vec<Vec<Vec<u8>>> = Vec::new();
            for (i, &len) in lengths.iter().enumerate() {
                texts.push(vec![numbered_line(i, len)]);
                texts.push(vec![short(1), numbered_line(i, len), short(2)]);
            }
            texts.push(
                (0..lengths.len())
                    .flat_map(|i| [numbered_line(i, lengths[i]), short(i)])
                    .collect(),
            );
            for lines in &texts {
                for final_newline in [true, false] {
                    let mut text = lines.join(&b'\n');
                    if final_newline {
                        text.push(b'\n');
                    }
                    for gzip in [false, true] {
                        revision += 1;
                        let file = revision_file(dir.path(), revision, gzip, &text);
                        let got = lines_read(&file, chunk_size);
                        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
                        let what = format!("chunk size {chunk_size}, gzip {gzip}, lines {lens:?}");
                        assert_eq!(got.len(), lines.len(), "{what}");
                        assert!(got == *lines, "{what}");
                        std::fs::remove_file(&file.path).unwrap();
                    }
                }
            }
        }
    }

    /// A byte order mark opening a gzip file whose first line is longer
    /// than a chunk is skipped too.
    #[test]
    fn a_long_first_line_after_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let line = numbered_line(1, 5000);
        let text = [BOM, &line, b"\n", &line].concat();
        for (revision, gzip) in [(1, false), (2, true)] {
            let file = revision_file(dir.path(), revision, gzip, &text);
            assert!(lines_read(&file, 100) == [line.clone(), line.clone()]);
        }
    }

    #[test]
    fn lines_of_a_chunk() {
        let c = chunk(b"a\nb\n\nc");
        assert_eq!(
            c.lines().collect::<Vec<_>>(),
            [b"a" as &[u8], b"b", b"", b"c"]
        );
        let c = chunk(b"a\n");
        assert_eq!(c.lines().count(), 1);
        assert_eq!(chunk(b"").lines().count(), 0);
        assert_eq!(chunk(b"\n").lines().count(), 1);
        for data in [&b"a\nb\n\nc"[..], b"a\n", b"", b"\n", b"\n\n", b"x"] {
            let c = chunk(data);
            assert_eq!(c.line_count(), c.lines().count() as u64);
            let texts: Vec<&[u8]> = c.text_lines().unwrap().map(str::as_bytes).collect();
            assert_eq!(texts, c.lines().collect::<Vec<_>>());
        }
        assert!(chunk(b"a\n\xe9\nb").text_lines().is_none());
    }
}

/// Which revision files are on local disk yet: a download fills it in while
/// the pipeline waits for the next file it needs, in revision order.
#[derive(Default)]
pub struct Arrivals {
    state: std::sync::Mutex<ArrivalState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct ArrivalState {
    ready: std::collections::HashSet<u64>,
    error: Option<String>,
    closed: bool,
}

impl Arrivals {
    /// Every file is already local.
    pub fn all_ready() -> Arrivals {
        let a = Arrivals::default();
        a.close();
        a
    }

    pub fn arrive(&self, revision: u64) {
        self.state
            .lock()
            .expect("arrivals lock")
            .ready
            .insert(revision);
        self.changed.notify_all();
    }

    pub fn fail(&self, error: String) {
        self.state
            .lock()
            .expect("arrivals lock")
            .error
            .get_or_insert(error);
        self.changed.notify_all();
    }

    /// No more files will arrive.
    pub fn close(&self) {
        self.state.lock().expect("arrivals lock").closed = true;
        self.changed.notify_all();
    }

    /// Blocks until `file` is local (always true once closed without error
    /// for files that were local from the start).
    pub fn wait(&self, file: &RevisionFile) -> Result<()> {
        let mut st = self.state.lock().expect("arrivals lock");
        loop {
            if st.ready.contains(&file.revision) {
                return Ok(());
            }
            if let Some(e) = &st.error {
                bail!("{e}");
            }
            if st.closed {
                if file.path.exists() {
                    return Ok(());
                }
                bail!("{}: the file was not downloaded", file.path.display());
            }
            // Downloads stop on Ctrl-C, so files may never arrive.
            crate::interrupt::check()?;
            st = self
                .changed
                .wait_timeout(st, std::time::Duration::from_millis(200))
                .expect("arrivals lock")
                .0;
        }
    }
}
