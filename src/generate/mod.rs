//! Synthetic KM exports for tests and benchmarks (`kmdb generate`).
//!
//! [`generate`] writes a directory shaped like a KISSmetrics "Data Export" bucket:
//! `revisions/1.json` … `revisions/N.json` (every K-th one gzipped as `N.json.gz`),
//! `index.csv` with each file's timestamp range and `status.csv` with totals.
//!
//! The data imitates real traffic. People act in sessions and are Zipf-distributed in
//! activity; anonymous cookies are aliased to e-mail addresses or numeric user ids on
//! login (sometimes in chains, sometimes two accounts sharing one browser); event and
//! property names are Zipf-distributed; timestamps advance across files over two years
//! but are jittered within a file. About 1.4 % of lines are faults that a loader must
//! reject or count (see `Fault`), and KM quirks turn up now and then: octal escapes,
//! CRLF line endings, float or string timestamps, numeric identities as JSON numbers.
//!
//! Output is a pure function of the options: the generator has its own xoshiro256**
//! PRNG and uses only exactly rounded float arithmetic, so a seed gives the same JSON
//! bytes on every platform and build. Gzip files decompress to those same bytes; the
//! compressed bytes themselves are only as stable as the compressor.

use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

mod lines;
pub mod mixpanel;
mod rng;
mod sink;
mod vocabulary;

use lines::*;
use sink::*;

/// How much data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Uncompressed bytes of revision data (the last line may overshoot).
    Bytes(u64),
    /// Lines in total, blank and malformed ones included.
    Lines(u64),
}

/// What [`generate`] writes and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Export directory; its `revisions/` must be missing or empty.
    pub out: PathBuf,
    pub amount: Amount,
    pub seed: u64,
    /// Every K-th revision file is gzip-compressed (None: none).
    pub gzip_every: Option<u32>,
    /// Target size of one revision file before compression (real KM files are ~10–100 MB; default 64 MiB).
    pub file_bytes: u64,
}

/// The default for [`GenerateOptions::file_bytes`].
pub const DEFAULT_FILE_BYTES: u64 = 64 << 20;

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Revision files.
    pub files: u64,
    /// Lines in all revision files.
    pub lines: u64,
    /// Uncompressed bytes of all revision files.
    pub bytes: u64,
}

/// Writes the export; `progress` is called with the number of bytes written since the last call.
pub fn generate(opts: &GenerateOptions, progress: &mut dyn FnMut(u64)) -> Result<GenerateSummary> {
    prepare_revisions_dir(&opts.out.join("revisions"))?;
    let expected_lines = match opts.amount {
        Amount::Lines(n) => n,
        Amount::Bytes(n) => n / MEAN_LINE_BYTES,
    };
    let mut lines = LineGenerator::new(opts.seed, expected_lines);
    let file_bytes = opts.file_bytes.max(1); // at least one line a file
    let mut summary = GenerateSummary::default();
    let mut index = Vec::new();
    let mut unreported = 0;

    while !opts.amount.reached(&summary) {
        summary.files += 1;
        let gzip = opts
            .gzip_every
            .is_some_and(|k| k > 0 && summary.files % u64::from(k) == 0);
        let mut file = RevisionFile::create(&opts.out, summary.files, gzip)?;
        while file.bytes < file_bytes && !opts.amount.reached(&summary) {
            let now = START + (SPAN as f64 * opts.amount.fraction(&summary)) as i64;
            let line = lines.next(now);
            file.write(&line)?;
            let len = line.bytes.len() as u64;
            summary.lines += 1;
            summary.bytes += len;
            unreported += len;
            if unreported >= PROGRESS_STEP {
                progress(std::mem::take(&mut unreported));
            }
        }
        index.push(file.finish()?);
    }
    if unreported > 0 {
        progress(unreported);
    }
    write_index(&opts.out, &index)?;
    let max_t = index
        .iter()
        .filter_map(|r| r.range.map(|(_, max)| max))
        .max()
        .unwrap_or(0);
    write_status(&opts.out, max_t, &summary)?;
    Ok(summary)
}

/// Parses sizes like "2GB", "500MB", "10 MiB", "1024" (bytes); KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
///
/// Units are case-insensitive, `K`/`M`/`G`/`T` alone mean KB/MB/GB/TB, and a
/// decimal fraction is allowed ("1.5GB").
pub fn parse_size(s: &str) -> Result<u64> {
    let text = s.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    // "1.5" is read as 15 tenths: bytes = 15 × unit / 10.
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits: u128 = format!("{whole}{fraction}").parse().map_err(|_| {
        anyhow::anyhow!("invalid size {s:?}: expected a number and a unit, like \"500MB\"")
    })?;
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        "TIB" => 1 << 40,
        _ => bail!(
            "invalid size {s:?}: unknown unit {:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
            unit.trim()
        ),
    };
    let scale = u32::try_from(fraction.len())
        .ok()
        .and_then(|places| 10u128.checked_pow(places));
    let bytes = scale
        .and_then(|scale| Some(digits.checked_mul(multiplier.into())? / scale))
        .and_then(|bytes| u64::try_from(bytes).ok());
    bytes.with_context(|| format!("invalid size {s:?}: too large"))
}

/// 2014-01-01T00:00:00Z: the exported history starts here...
const START: i64 = 1_388_534_400;
/// ...and spans two years.
const SPAN: i64 = 730 * DAY;
const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;
/// The first second after 9999-12-31T23:59:59Z, which no valid `_t` reaches.
const YEAR_10000: i64 = 253_402_300_800;

/// The population is sized from the amount: one person per this many lines...
const LINES_PER_PERSON: u64 = 40;
/// ...within these bounds (the population costs 8 bytes a person).
const MIN_PEOPLE: u64 = 64;
const MAX_PEOPLE: u64 = 2_000_000;
/// A rough mean line length, to size the population for [`Amount::Bytes`].
const MEAN_LINE_BYTES: u64 = 115;
/// `progress` is called about once per this many bytes.
const PROGRESS_STEP: u64 = 1 << 20;

impl Amount {
    fn reached(&self, done: &GenerateSummary) -> bool {
        match *self {
            Amount::Bytes(n) => done.bytes >= n,
            Amount::Lines(n) => done.lines >= n,
        }
    }

    /// The share of the amount done, in `0.0..1.0`.
    fn fraction(&self, done: &GenerateSummary) -> f64 {
        match *self {
            Amount::Bytes(n) => done.bytes as f64 / n as f64,
            Amount::Lines(n) => done.lines as f64 / n as f64,
        }
    }
}

// ---------------------------------------------------------------------------
// Output files

/// Creates `dir` or checks that it is empty, so an export is never mixed with another.
fn prepare_revisions_dir(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; refusing to write an export over another one",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// `2014-05-13 16:53 GMT`, as KM's CSV files write dates.
fn km_date(t: i64) -> String {
    let ts = crate::dates::datetime(t.clamp(0, crate::record::MAX_UNIX_SECONDS));
    format!("{} GMT", String::from_utf8_lossy(&ts[..16]))
}

/// Writes `index.csv` in KM's layout: each revision file with the range of
/// its valid timestamps (empty fields for a file without any).
fn write_index(export: &Path, rows: &[IndexRow]) -> Result<()> {
    let mut csv = String::from("filename,min_timestamp,max_timestamp,min_utc_date,max_utc_date\n");
    for row in rows {
        match row.range {
            Some((min, max)) => {
                csv += &format!(
                    "{},{min},{max},{},{}\n",
                    row.name,
                    km_date(min),
                    km_date(max)
                )
            }
            None => csv += &format!("{},,,,\n", row.name),
        }
    }
    let path = export.join("index.csv");
    fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))
}

/// Writes `status.csv` in KM's layout (one header row, one data row).
fn write_status(export: &Path, max_t: i64, summary: &GenerateSummary) -> Result<()> {
    let csv = format!(
        "total_revisions,exported_revisions,max_exported_revision_timestamp,max_exported_revision_utc_date\n{},{},{max_t},{}\n",
        summary.files, summary.files, km_date(max_t)
    );
    let path = export.join("status.csv");
    fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Lines

#[cfg(test)]
mod tests {
    use super::lines::*;
    use super::rng::*;

    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::collections::{HashMap, HashSet};
    use std::fs::File;
    use std::io::Read;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("kmdb-generate-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn options(out: &Path, amount: Amount) -> GenerateOptions {
        GenerateOptions {
            out: out.to_path_buf(),
            amount,
            seed: 7,
            gzip_every: Some(3),
            file_bytes: 200_000,
        }
    }

    fn run(opts: &GenerateOptions) -> GenerateSummary {
        let mut reported = 0;
        let summary = generate(opts, &mut |n| reported += n).unwrap();
        assert_eq!(
            reported, summary.bytes,
            "progress must add up to the bytes written"
        );
        summary
    }

    /// `index.csv` rows as (file name, min, max).
    fn index_rows(out: &Path) -> Vec<(String, String, String)> {
        let csv = fs::read_to_string(out.join("index.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("filename,min_timestamp,max_timestamp,min_utc_date,max_utc_date")
        );
        lines
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), 5, "{line}");
                (
                    fields[0].to_string(),
                    fields[1].to_string(),
                    fields[2].to_string(),
                )
            })
            .collect()
    }

    /// A revision file's uncompressed content.
    fn read_revision(path: &Path) -> Vec<u8> {
        let mut content = Vec::new();
        let file = File::open(path).unwrap();
        if path.extension().is_some_and(|e| e == "gz") {
            MultiGzDecoder::new(file).read_to_end(&mut content).unwrap();
        } else {
            io::BufReader::new(file).read_to_end(&mut content).unwrap();
        }
        content
    }

    /// All revision content, in index order.
    fn read_export(out: &Path) -> Vec<u8> {
        index_rows(out)
            .iter()
            .flat_map(|(name, _, _)| read_revision(&out.join(name)))
            .collect()
    }

    /// Lines without their terminators.
    fn lines_of(content: &[u8]) -> impl Iterator<Item = &[u8]> {
        content.split_inclusive(|&b| b == b'\n').map(|line| {
            let line = line.strip_suffix(b"\n").expect("every line is terminated");
            line.strip_suffix(b"\r").unwrap_or(line)
        })
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn is_object(line: &[u8]) -> bool {
        line.starts_with(b"{") && line.ends_with(b"}")
    }

    /// The tiny hand check for a loadable record.
    fn looks_like_record(line: &[u8]) -> bool {
        is_object(line)
            && contains(line, b"\"_p\":")
            && contains(line, b"\"_t\":")
            && !line.contains(&b'\n')
    }

    /// A complete object's valid `_t`, read leniently the way a loader would.
    fn timestamp_of(line: &[u8]) -> Option<i64> {
        if !is_object(line) {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let rest = &text[text.find("\"_t\":")? + 5..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        if !matches!(rest[end..].chars().next(), Some(',' | '}' | '"' | '.')) {
            return None;
        }
        let t: i64 = rest[..end].parse().ok()?;
        (0..YEAR_10000).contains(&t).then_some(t)
    }

    #[test]
    fn same_options_give_identical_output() {
        let (a, b) = (TempDir::new("det-a"), TempDir::new("det-b"));
        let first = run(&options(&a.0, Amount::Lines(20_000)));
        let second = run(&options(&b.0, Amount::Lines(20_000)));
        assert_eq!(first, second);
        assert!(first.files > 3, "several files, some gzipped");
        for name in ["index.csv", "status.csv"] {
            assert_eq!(
                fs::read(a.0.join(name)).unwrap(),
                fs::read(b.0.join(name)).unwrap()
            );
        }
        for (name, _, _) in index_rows(&a.0) {
            assert_eq!(
                fs::read(a.0.join(&name)).unwrap(),
                fs::read(b.0.join(&name)).unwrap(),
                "{name}"
            );
        }
        let other = TempDir::new("det-c");
        run(&GenerateOptions {
            seed: 8,
            ..options(&other.0, Amount::Lines(20_000))
        });
        assert_ne!(
            read_export(&a.0),
            read_export(&other.0),
            "another seed, other data"
        );
    }

    #[test]
    fn lines_amount_is_exact() {
        for n in [0, 1, 2, 999, 12_345] {
            let dir = TempDir::new(&format!("lines-{n}"));
            let summary = run(&options(&dir.0, Amount::Lines(n)));
            let content = read_export(&dir.0);
            assert_eq!(summary.lines, n);
            assert_eq!(content.iter().filter(|&&b| b == b'\n').count() as u64, n);
            assert_eq!(summary.bytes, content.len() as u64);
            let status = fs::read_to_string(dir.0.join("status.csv")).unwrap();
            let files = summary.files;
            assert!(status.contains(&format!("\n{files},{files},")), "{status}");
        }
    }

    #[test]
    fn bytes_amount_is_met_closely() {
        let dir = TempDir::new("bytes");
        let target = 3_000_000;
        let summary = run(&GenerateOptions {
            gzip_every: None,
            ..options(&dir.0, Amount::Bytes(target))
        });
        assert!(
            summary.bytes >= target && summary.bytes < target + 2_000,
            "{summary:?}"
        );
        let on_disk: u64 = fs::read_dir(dir.0.join("revisions"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, summary.bytes);
        assert_eq!(
            summary.files,
            target.div_ceil(200_000),
            "files are cut at file_bytes"
        );
    }

    #[test]
    fn gzip_files_hold_the_same_content() {
        let (gzip, plain) = (TempDir::new("gzip"), TempDir::new("plain"));
        run(&GenerateOptions {
            gzip_every: Some(2),
            ..options(&gzip.0, Amount::Lines(10_000))
        });
        run(&GenerateOptions {
            gzip_every: None,
            ..options(&plain.0, Amount::Lines(10_000))
        });
        let names: Vec<String> = index_rows(&gzip.0)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        assert!(names.len() >= 4);
        for (i, name) in names.iter().enumerate() {
            let number = i + 1;
            assert_eq!(name.ends_with(".gz"), number % 2 == 0, "{name}");
            let plain_name = format!("revisions/{number}.json");
            assert_eq!(
                read_revision(&gzip.0.join(name)),
                fs::read(plain.0.join(plain_name)).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn index_rows_match_files() {
        let dir = TempDir::new("index");
        let summary = run(&options(&dir.0, Amount::Lines(30_000)));
        let rows = index_rows(&dir.0);
        assert_eq!(rows.len() as u64, summary.files);
        assert_eq!(
            fs::read_dir(dir.0.join("revisions")).unwrap().count() as u64,
            summary.files
        );
        let mut lows = Vec::new();
        for (i, (name, min, max)) in rows.iter().enumerate() {
            let suffix = if (i + 1) % 3 == 0 {
                ".json.gz"
            } else {
                ".json"
            };
            assert_eq!(*name, format!("revisions/{}{suffix}", i + 1));
            let content = read_revision(&dir.0.join(name));
            let times: Vec<i64> = lines_of(&content).filter_map(timestamp_of).collect();
            assert_eq!(*min, times.iter().min().unwrap().to_string(), "{name}");
            assert_eq!(*max, times.iter().max().unwrap().to_string(), "{name}");
            let mut sorted = times.clone();
            sorted.sort_unstable();
            assert_ne!(times, sorted, "{name}: not sorted within a file");
            lows.push(sorted[sorted.len() / 10]);
        }
        assert!(
            lows.windows(2).all(|w| w[0] <= w[1]),
            "files advance in time: {lows:?}"
        );
        assert!(
            lows[0] < START + 30 * DAY && *lows.last().unwrap() > START + SPAN - 60 * DAY,
            "{lows:?}"
        );
    }

    #[test]
    fn records_are_objects_with_identity_and_time() {
        let mut lines = LineGenerator::new(1, 200_000);
        for _ in 0..200_000 {
            let line = lines.next(START);
            let kind = line.kind;
            let text = line.bytes.strip_suffix(b"\n").unwrap();
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            match kind {
                Kind::Event => assert!(looks_like_record(text) && contains(text, b"\"_n\":")),
                Kind::Properties => assert!(looks_like_record(text) && !contains(text, b"\"_n\":")),
                Kind::Alias => assert!(looks_like_record(text) && contains(text, b"\"_p2\":")),
                Kind::Fault(Fault::Blank) => assert!(text.iter().all(|&b| b == b' ')),
                Kind::Fault(_) => {}
            }
            if matches!(kind, Kind::Event | Kind::Properties | Kind::Alias) {
                assert_eq!(
                    timestamp_of(text),
                    line.timestamp,
                    "{}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    /// The value of `"key":` in a record whose values hold no `,` or `}`.
    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = &line[start..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim_matches('"'))
    }

    #[test]
    fn aliases_link_cookies_emails_and_user_ids() {
        let mut lines = LineGenerator::new(5, 100_000);
        let mut links: HashMap<String, HashSet<String>> = HashMap::new();
        for _ in 0..100_000 {
            let line = lines.next(START);
            if line.kind == Kind::Alias {
                let text = String::from_utf8_lossy(line.bytes);
                let (from, to) = (field(&text, "_p").unwrap(), field(&text, "_p2").unwrap());
                links.entry(from.into()).or_default().insert(to.into());
            }
        }
        let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let email = |s: &str| s.contains('@');
        let cookie = |s: &str| s.len() == 28 && s.ends_with('=');
        let linked = |from: fn(&str) -> bool, to: fn(&str) -> bool| {
            links
                .iter()
                .any(|(a, bs)| from(a) && bs.iter().any(|b| to(b)))
        };
        assert!(linked(cookie, email));
        assert!(linked(cookie, numeric));
        assert!(linked(email, numeric));
        assert!(
            !linked(numeric, numeric),
            "only the faults link two accounts"
        );
        let chain = links.iter().any(|(a, bs)| {
            cookie(a)
                && bs
                    .iter()
                    .any(|b| links.get(b).is_some_and(|cs| cs.iter().any(|c| numeric(c))))
        });
        assert!(chain, "cookie → email → user id");
        let shared = links
            .iter()
            .any(|(a, bs)| cookie(a) && bs.iter().filter(|b| numeric(b)).count() > 1);
        assert!(shared, "a browser shared by two accounts");
    }

    /// Changing the output for a seed breaks "same seed, same bytes, forever": when
    /// that is intended, update the hash.
    #[test]
    fn output_for_a_seed_is_pinned() {
        let dir = TempDir::new("pinned");
        run(&GenerateOptions {
            gzip_every: None,
            ..options(&dir.0, Amount::Lines(5_000))
        });
        // FNV-1a over all revision bytes.
        let hash = read_export(&dir.0)
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        assert_eq!(hash, 0x8f83_b78a_4cca_759e, "output changed: {hash:#018x}");
    }

    #[test]
    fn record_mix_is_realistic() {
        let total = 200_000;
        let mut lines = LineGenerator::new(3, total);
        let mut counts: HashMap<Kind, u64> = HashMap::new();
        let (mut bytes, mut crlf, mut octal, mut escaped) = (0, 0, 0, 0);
        for _ in 0..total {
            let line = lines.next(START);
            *counts.entry(line.kind).or_default() += 1;
            bytes += line.bytes.len() as u64;
            crlf += u64::from(line.bytes.ends_with(b"\r\n"));
            if line.bytes.contains(&b'\\') {
                octal +=
                    u64::from(contains(line.bytes, br"\303") || contains(line.bytes, br"\231"));
                escaped += u64::from(contains(line.bytes, br"\t") || contains(line.bytes, br"\n"));
            }
        }
        let share =
            |kind: Kind| counts.get(&kind).copied().unwrap_or(0) as f64 / total as f64 * 100.0;
        let faults: f64 = FAULTS
            .iter()
            .map(|&(fault, _)| share(Kind::Fault(fault)))
            .sum();
        println!(
            "{total} lines, {:.1} bytes a line: events {:.2} %, property sets {:.2} %, aliases {:.2} %, faults {faults:.2} %",
            bytes as f64 / total as f64,
            share(Kind::Event),
            share(Kind::Properties),
            share(Kind::Alias),
        );
        for (fault, _) in FAULTS {
            println!(
                "  {fault:?}: {}",
                counts.get(&Kind::Fault(fault)).copied().unwrap_or(0)
            );
        }
        println!(
            "  CRLF endings: {crlf}, octal escapes: {octal}, JSON \\t or \\n escapes: {escaped}"
        );
        assert!((66.0..76.0).contains(&share(Kind::Event)));
        assert!((15.0..20.0).contains(&share(Kind::Properties)));
        assert!((3.0..8.0).contains(&share(Kind::Alias)));
        assert!((1.0..2.0).contains(&faults));
        assert!(crlf > 0 && octal > 0 && escaped > 0);
        assert!((MEAN_LINE_BYTES as f64 * 0.8..MEAN_LINE_BYTES as f64 * 1.2)
            .contains(&(bytes as f64 / total as f64)));
    }

    #[test]
    fn refuses_a_non_empty_revisions_dir() {
        let dir = TempDir::new("non-empty");
        fs::create_dir_all(dir.0.join("revisions")).unwrap();
        fs::write(dir.0.join("revisions/1.json"), "{}\n").unwrap();
        let error = generate(&options(&dir.0, Amount::Lines(10)), &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
        assert_eq!(fs::read(dir.0.join("revisions/1.json")).unwrap(), b"{}\n");
    }

    #[test]
    fn parses_sizes() {
        let cases = [
            ("1024", 1024),
            ("0", 0),
            ("2GB", 2_000_000_000),
            ("500MB", 500_000_000),
            ("10 MiB", 10 << 20),
            ("1.5GB", 1_500_000_000),
            ("1.5 KiB", 1536),
            ("64kib", 64 << 10),
            (" 3 gb ", 3_000_000_000),
            ("7B", 7),
            ("2T", 2_000_000_000_000),
            ("0.999 KiB", 1022),
            ("1.", 1),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text).unwrap(), bytes, "{text}");
        }
        for bad in [
            "",
            ".",
            "MB",
            "12XB",
            "-5MB",
            "1.2.3GB",
            "99999999999999999999",
            "20000000000GB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn zipf_favours_low_ranks_and_reaches_all() {
        let zipf = Zipf::new(10, zipf(0.0));
        let mut rng = Rng::new(1);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(counts.windows(2).all(|w| w[0] > w[1]), "{counts:?}");
        // P(0) / P(9) = 10 for plain Zipf.
        assert!((8..12).contains(&(counts[0] / counts[9])), "{counts:?}");
    }

    #[test]
    fn cookies_look_like_km_cookies() {
        let mut buf = Vec::new();
        push_cookie(&mut buf, 12345);
        assert_eq!(buf.len(), 28);
        assert!(buf.ends_with(b"=") && !buf[..27].contains(&b'='));
    }

    /// `fixtures/generated` is `kmdb generate --out fixtures/generated
    /// --lines 2000 --seed 1 --gzip-every 3 --file-size 64KB`: the generator
    /// must still write those bytes (gzip files compared decompressed). After
    /// a deliberate change to the generator, write the sample again.
    #[test]
    fn writes_the_committed_sample_again() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/generated");
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            out: dir.path().to_owned(),
            amount: Amount::Lines(2000),
            seed: 1,
            gzip_every: Some(3),
            file_bytes: 64_000,
        };
        generate(&opts, &mut |_| {}).unwrap();
        for name in ["index.csv", "status.csv"] {
            assert_eq!(
                fs::read_to_string(dir.path().join(name)).unwrap(),
                fs::read_to_string(sample.join(name)).unwrap(),
                "{name}"
            );
        }
        let names = |d: &Path| {
            let mut v: Vec<_> = fs::read_dir(d.join("revisions"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(dir.path()), names(&sample));
        for name in names(&sample) {
            let rel = Path::new("revisions").join(&name);
            assert!(
                read_revision(&dir.path().join(&rel)) == read_revision(&sample.join(&rel)),
                "{} differs from the committed sample",
                rel.display()
            );
        }
    }
}
