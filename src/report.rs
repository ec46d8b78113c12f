//! The accounting of every line (SPEC §7) and the rejects file.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::record::Reject;
use crate::rows::escape_into;

/// `n` with its digits in groups of three, `1,234,567`: how kmdb writes
/// every count a person reads (as its progress bars do).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What became of every line of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    pub lines: u64,
    pub blank: u64,
    pub events: u64,
    pub property_sets: u64,
    pub aliases: u64,
    pub rejected: [u64; Reject::ALL.len()],
}

impl Accounting {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// `lines = blank + events + property_sets + aliases + rejected`.
    pub fn balances(&self) -> bool {
        self.lines
            == self.blank + self.events + self.property_sets + self.aliases + self.rejected_total()
    }
}

impl fmt::Display for Accounting {
    /// The table printed at the end of an import.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, name: &str, n: u64| {
            writeln!(f, "  {name:<26}{:>14}", count(n))
        };
        row(f, "lines", self.lines)?;
        row(f, "blank", self.blank)?;
        row(f, "events", self.events)?;
        row(f, "property_sets", self.property_sets)?;
        row(f, "aliases", self.aliases)?;
        row(f, "rejected", self.rejected_total())?;
        for reason in Reject::ALL {
            let n = self.rejected[reason.index()];
            if n > 0 {
                row(f, &format!("  {reason}"), n)?;
            }
        }
        Ok(())
    }
}

/// The rows an import loaded into one table and the time its load
/// sessions spent on them.
#[derive(Clone, Debug, PartialEq)]
pub struct TableLoad {
    pub table: &'static str,
    pub rows: u64,
    /// Seconds of load statements, summed over the sessions that loaded
    /// the table side by side.
    pub seconds: f64,
}

/// The table printed at the end of an import: rows and load time per
/// target table, then the whole import's time.
pub struct LoadTable<'a> {
    pub tables: &'a [TableLoad],
    /// The import from start to end, in seconds.
    pub seconds: f64,
}

impl fmt::Display for LoadTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {:<14}{:>14}{:>14}", "table", "rows", "load time")?;
        for t in self.tables {
            writeln!(
                f,
                "  {:<14}{:>14}{:>12.1} s",
                t.table,
                count(t.rows),
                t.seconds
            )?;
        }
        let rows = self.tables.iter().map(|t| t.rows).sum();
        writeln!(
            f,
            "  {:<14}{:>14}{:>12.1} s (the whole import)",
            "total",
            count(rows),
            self.seconds
        )
    }
}

/// Bytes of a rejected line escaped at once (see [`RejectsFile::write`]).
const REJECT_PIECE: usize = 64 * 1024;

/// Writes each rejected line as `revision TAB line TAB reason TAB text`, the
/// text escaped like the TSV files; with [`RejectsFile::naming_files`],
/// `file TAB line TAB reason TAB text`. The lines go to a partial file
/// first, which [`RejectsFile::finish`] moves to its name once the import
/// has read every line: a file under that name is always whole.
pub struct RejectsFile {
    path: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    line: Vec<u8>,
    /// The file name of each revision, when the first column names files.
    files: Option<HashMap<u64, String>>,
}

impl RejectsFile {
    /// The file `path` (`-2`, `-3`, ... added when the name is taken),
    /// written as `partial` until finished; both are created on the first
    /// reject.
    pub fn new(path: &Path, partial: &Path) -> RejectsFile {
        RejectsFile {
            path: path.to_owned(),
            partial: partial.to_owned(),
            out: None,
            line: Vec::new(),
            files: None,
        }
    }

    /// Names each line's file (`files`: revision → file name) rather than
    /// its revision number, for formats whose numbers the user did not
    /// choose (a Mixpanel day file's revision is its day's number).
    pub fn naming_files(self, files: HashMap<u64, String>) -> RejectsFile {
        RejectsFile {
            files: Some(files),
            ..self
        }
    }

    /// The finished file, when there were rejects.
    pub fn path(&self) -> Option<&Path> {
        self.out.as_ref().map(|_| self.path.as_path())
    }

    pub fn write(&mut self, revision: u64, line_no: u64, reason: Reject, raw: &[u8]) -> Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.partial.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let f = File::create(&self.partial)
                .with_context(|| format!("creating rejects file {}", self.partial.display()))?;
            let mut out = BufWriter::new(f);
            let first = if self.files.is_some() {
                "file"
            } else {
                "revision"
            };
            writeln!(out, "{first}\tline\treason\ttext")?;
            self.out = Some(out);
        }
        self.line.clear();
        match self.files.as_ref().and_then(|f| f.get(&revision)) {
            Some(name) => escape_into(&mut self.line, name.as_bytes()),
            None => write!(self.line, "{revision}")?,
        }
        write!(self.line, "\t{line_no}\t{reason}\t")?;
        let out = self.out.as_mut().expect("opened above");
        // Escaped a piece at a time: a rejected line can be hundreds of
        // megabytes, and its escaped copy would be as long again.
        let mut pieces = raw.chunks(REJECT_PIECE).peekable();
        while let Some(piece) = pieces.next() {
            escape_into(&mut self.line, piece);
            if pieces.peek().is_none() {
                break;
            }
            out.write_all(&self.line)
                .with_context(|| format!("writing {}", self.path.display()))?;
            self.line.clear();
        }
        self.line.push(b'\n');
        out.write_all(&self.line)
            .with_context(|| format!("writing {}", self.partial.display()))
    }

    /// Writes out the partial file and gives it its name, never another
    /// import's: when the name is taken (two imports in one second), `-2`,
    /// `-3`, ... is added to it.
    pub fn finish(&mut self) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        out.flush()
            .with_context(|| format!("writing {}", self.partial.display()))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let (stem, ext) = match (self.path.file_stem(), self.path.extension()) {
            (Some(stem), Some(ext)) => (stem.to_owned(), format!(".{}", ext.to_string_lossy())),
            _ => (
                self.path.file_name().unwrap_or_default().to_owned(),
                String::new(),
            ),
        };
        for n in 1u32.. {
            let path = match n {
                1 => self.path.clone(),
                n => self
                    .path
                    .with_file_name(format!("{}-{n}{ext}", stem.to_string_lossy())),
            };
            // A hard link fails rather than replace a file of that name.
            match std::fs::hard_link(&self.partial, &path) {
                Ok(()) => {
                    std::fs::remove_file(&self.partial).ok();
                    self.path = path;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "moving rejects file {} to {}",
                            self.partial.display(),
                            path.display()
                        )
                    })
                }
            }
        }
        unreachable!("u32 names exhausted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_nonzero_reasons() {
        let mut a = Accounting {
            lines: 10,
            blank: 1,
            events: 5,
            property_sets: 1,
            aliases: 1,
            ..Default::default()
        };
        a.rejected[Reject::Malformed.index()] = 2;
        assert!(a.balances());
        let text = a.to_string();
        assert!(text.contains("malformed"), "{text}");
        assert!(!text.contains("self_alias"), "{text}");
    }

    #[test]
    fn a_rejects_file_can_name_files() {
        let dir = tempfile::tempdir().unwrap();
        let names = HashMap::from([(16436, "2015-01-01.json".to_string())]);
        let (path, partial) = (dir.path().join("r.tsv"), dir.path().join("r.partial"));
        let mut r = RejectsFile::new(&path, &partial).naming_files(names);
        r.write(16436, 3, Reject::Duplicate, b"{\"a\":\"\t\"}")
            .unwrap();
        r.write(7, 1, Reject::Malformed, b"x").unwrap();
        r.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(r.path().unwrap()).unwrap(),
            "file\tline\treason\ttext\n\
             2015-01-01.json\t3\tduplicate\t{\"a\":\"\\t\"}\n\
             7\t1\tmalformed\tx\n"
        );
    }

    #[test]
    fn counts_in_groups_of_three() {
        let shown: Vec<String> = [0, 7, 999, 1_000, 65_536, 1_234_567, u64::MAX]
            .into_iter()
            .map(count)
            .collect();
        assert_eq!(
            shown,
            [
                "0",
                "7",
                "999",
                "1,000",
                "65,536",
                "1,234,567",
                "18,446,744,073,709,551,615"
            ]
        );
    }

    #[test]
    fn load_table_lists_each_table_and_the_total() {
        let tables = [
            TableLoad {
                table: "events",
                rows: 1_234_567,
                seconds: 12.34,
            },
            TableLoad {
                table: "keys",
                rows: 12,
                seconds: 0.01,
            },
        ];
        let text = LoadTable {
            tables: &tables,
            seconds: 20.0,
        }
        .to_string();
        assert_eq!(
            text,
            "  table                   rows     load time\n\
            \x20 events             1,234,567        12.3 s\n\
            \x20 keys                      12         0.0 s\n\
            \x20 total              1,234,579        20.0 s (the whole import)\n"
        );
    }

    #[test]
    fn a_rejects_file_never_replaces_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects-1.tsv");
        let partial = dir.path().join("run/rejects.tsv");
        let mut names = Vec::new();
        for text in [&b"first"[..], b"second", b"third"] {
            let mut r = RejectsFile::new(&path, &partial);
            r.write(1, 1, Reject::Malformed, text).unwrap();
            assert!(partial.exists() && r.path() != Some(partial.as_path()));
            r.finish().unwrap();
            assert!(!partial.exists());
            names.push(r.path().unwrap().file_name().unwrap().to_owned());
        }
        assert_eq!(
            names,
            ["rejects-1.tsv", "rejects-1-2.tsv", "rejects-1-3.tsv"]
        );
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.ends_with("\tmalformed\tfirst\n"), "{first}");
    }

    /// A line longer than the pieces it is escaped in comes out whole,
    /// escaped as in one piece, bytes to escape on the pieces' edges too.
    #[test]
    fn a_long_rejected_line_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = vec![b'x'; 3 * REJECT_PIECE + 5];
        for at in [0, REJECT_PIECE - 1, REJECT_PIECE, 2 * REJECT_PIECE + 1] {
            raw[at] = b"\t\\\n\0"[at % 4];
        }
        raw.extend_from_slice(b"\xff\r");
        let path = dir.path().join("rejects.tsv");
        let mut r = RejectsFile::new(&path, &dir.path().join("rejects.partial"));
        r.write(3, 7, Reject::Malformed, &raw).unwrap();
        r.write(3, 8, Reject::Empty, b"{}").unwrap();
        r.finish().unwrap();
        let mut want = b"revision\tline\treason\ttext\n3\t7\tmalformed\t".to_vec();
        escape_into(&mut want, &raw);
        want.extend_from_slice(b"\n3\t8\tempty\t{}\n");
        assert!(std::fs::read(&path).unwrap() == want);
    }
}
