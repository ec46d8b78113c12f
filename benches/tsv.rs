//! The TSV stage on one core, in MB/s of *input* (the export bytes whose rows
//! are written), so that it adds up with the parse figures: formatting rows
//! (`kmdb::rows::escape_into` + `kmdb::dates::datetime`), and `TsvWriter`
//! (format, buffer per (table, partition), sort by (t, id), write and fsync
//! the files) into a temp directory.
//!
//! The rows are those of ~20 MB of `kmdb generate` output (seed 1), decoded
//! and classified when the bench starts, with user and key ids given in
//! order of first sight (as the resolver does, without alias merging), and
//! the partition plan of `scripts/bench.sh` (2013-12-01 .. 2016-02-01, 28
//! days, plus pLast).
//!
//!   cargo bench --bench tsv

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use kmdb::dates::datetime;
use kmdb::format::{Format, Outcome, KM};
use kmdb::generate::{generate, Amount, GenerateOptions, DEFAULT_FILE_BYTES};
use kmdb::partition::{self, Day, PartitionMap};
use kmdb::record::View;
use kmdb::resolve::{alias_names, row_id};
use kmdb::rows::{escape_into, RowSink, TsvWriter};

/// The allocator of the kmdb binary (`src/main.rs`), so that the figures
/// are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bytes of generated input.
const INPUT_BYTES: u64 = 20_000_000;
/// `ImportPlan::batch_bytes` of `kmdb import`, and the writer's total limit.
const BATCH_BYTES: usize = 32 << 20;
const TOTAL_BYTES: usize = BATCH_BYTES * 8;

/// One row as the resolver hands it to the writer.
enum Row {
    Event {
        id: u64,
        t: i64,
        n: u32,
        user: u64,
    },
    Property {
        id: u64,
        t: i64,
        key: u32,
        value: String,
        user: u64,
        event: Option<u64>,
    },
    Alias {
        id: u64,
        t: i64,
        name1: String,
        name2: String,
    },
}

/// Ids in order of first sight.
#[derive(Default)]
struct Ids(HashMap<String, u64>);

impl Ids {
    fn id(&mut self, name: &str) -> u64 {
        let next = self.0.len() as u64 + 1;
        *self.0.entry(name.to_owned()).or_insert(next)
    }
}

/// The rows of a generated export of `bytes` bytes; returns them and the
/// input size.
fn rows(bytes: u64) -> (Vec<Row>, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = GenerateOptions {
        out: dir.path().to_owned(),
        amount: Amount::Bytes(bytes),
        seed: 1,
        gzip_every: None,
        file_bytes: DEFAULT_FILE_BYTES,
    };
    let summary = generate(&opts, &mut |_| {}).expect("generate");
    let (mut users, mut keys) = (Ids::default(), Ids::default());
    let mut rows = Vec::new();
    for rev in 1..=summary.files {
        let path = dir.path().join("revisions").join(format!("{rev}.json"));
        let data = std::fs::read(&path).expect("read revision");
        let body = data.strip_suffix(b"\n").unwrap_or(&data);
        let mut prop_seq = 0u64;
        for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
            let line = i as u64 + 1;
            let Outcome::Record(record) = KM.parse_line(raw) else {
                continue;
            };
            let first_prop = prop_seq;
            prop_seq += record.props().len() as u64;
            let (t, user, event) = match record.view() {
                View::Alias { identity, other, t } => {
                    let (a, b) = alias_names(identity, other);
                    rows.push(Row::Alias {
                        id: row_id(rev, line),
                        t,
                        name1: a.to_owned(),
                        name2: b.to_owned(),
                    });
                    continue;
                }
                View::Event {
                    identity, t, name, ..
                } => {
                    let (id, user) = (row_id(rev, line), users.id(identity));
                    let n = keys.id(name) as u32;
                    rows.push(Row::Event { id, t, n, user });
                    (t, user, Some(id))
                }
                View::PropertySet { identity, t, .. } => (t, users.id(identity), None),
            };
            for (j, (key, value)) in record.props().iter().enumerate() {
                rows.push(Row::Property {
                    id: row_id(rev, first_prop + j as u64),
                    t,
                    key: keys.id(key) as u32,
                    value: value.to_owned(),
                    user,
                    event,
                });
            }
        }
    }
    (rows, summary.bytes)
}

/// The partitions `kmdb partition --min-date 2013-12-01 --max-date
/// 2016-02-01 --days-per-partition 28` makes.
fn partition_map() -> PartitionMap {
    let bounds = partition::plan(
        Day::parse("2013-12-01").unwrap(),
        Day::parse("2016-02-01").unwrap(),
        28,
    )
    .expect("plan");
    let mut rows: Vec<(String, String)> = bounds
        .iter()
        .map(|&d| (partition::name_for(d), format!("'{d} 00:00:00'")))
        .collect();
    rows.push((partition::LAST.to_owned(), "MAXVALUE".to_owned()));
    PartitionMap::from_descriptions(&rows).expect("partition map")
}

/// Formats every row as `TsvWriter` does, into `out` (cleared first).
fn format_rows(rows: &[Row], out: &mut Vec<u8>) {
    out.clear();
    for row in rows {
        match row {
            Row::Event { id, t, n, user } => {
                write!(out, "{id}\t").ok();
                out.extend_from_slice(&datetime(*t));
                writeln!(out, "\t{n}\t{user}").ok();
            }
            Row::Property {
                id,
                t,
                key,
                value,
                user,
                event,
            } => {
                write!(out, "{id}\t").ok();
                out.extend_from_slice(&datetime(*t));
                write!(out, "\t{key}\t").ok();
                escape_into(out, value.as_bytes());
                match event {
                    Some(e) => writeln!(out, "\t{user}\t{e}").ok(),
                    None => writeln!(out, "\t{user}\t\\N").ok(),
                };
            }
            Row::Alias {
                id,
                t,
                name1,
                name2,
            } => {
                write!(out, "{id}\t").ok();
                out.extend_from_slice(&datetime(*t));
                out.push(b'\t');
                escape_into(out, name1.as_bytes());
                out.push(b'\t');
                escape_into(out, name2.as_bytes());
                out.extend_from_slice(b"\t1\n");
            }
        }
    }
}

/// Feeds every row to a `TsvWriter` writing into `dir`, then finishes it;
/// returns the rows written.
fn write_rows(rows: &[Row], dir: &Path, map: &PartitionMap) -> u64 {
    let maps = [map.clone(), map.clone(), map.clone()];
    let mut w = TsvWriter::new(dir, maps, BATCH_BYTES, TOTAL_BYTES).expect("writer");
    let mut written = 0;
    for row in rows {
        let r = match row {
            Row::Event { id, t, n, user } => w.event(*id, *t, *n, *user),
            Row::Property {
                id,
                t,
                key,
                value,
                user,
                event,
            } => w.property(*id, *t, *key, value, *user, *event),
            Row::Alias {
                id,
                t,
                name1,
                name2,
            } => w.alias(*id, *t, name1, name2, true),
        };
        r.expect("write row");
        written += w.take_ready().iter().map(|f| f.rows).sum::<u64>();
    }
    for f in w.finish().expect("finish") {
        written += f.rows;
    }
    written
}

fn benches(c: &mut Criterion) {
    let (rows, input) = rows(INPUT_BYTES);
    let map = partition_map();
    let mut out = Vec::new();
    format_rows(&rows, &mut out);
    eprintln!(
        "input: {input} bytes → {} rows, {} bytes of TSV ({:.2} × input); {} partitions per table",
        rows.len(),
        out.len(),
        out.len() as f64 / input as f64,
        map.len()
    );

    let mut g = c.benchmark_group("tsv");
    g.throughput(Throughput::Bytes(input));
    g.sampling_mode(SamplingMode::Flat);
    // escape_into + datetime + integer formatting, into one buffer.
    g.bench_function("format_rows", |b| {
        b.iter(|| {
            format_rows(black_box(&rows), &mut out);
            black_box(out.len())
        })
    });
    // The writer as the import drives it, files and fsync included; the
    // files are removed outside the timing. With the bench plan's 30
    // partitions per table, ~20 MB of input makes ~90 small files, so the
    // per-file costs (create, fsync) weigh far more than with the import's
    // 32 MB files; `tsv_writer_1_partition` (3 files) shows the per-byte cost.
    g.measurement_time(Duration::from_secs(5));
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut run = 0u64;
    for (name, map) in [
        ("tsv_writer", &map),
        ("tsv_writer_1_partition", &PartitionMap::unpartitioned()),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    run += 1;
                    let dir = tmp.path().join(format!("run{run}"));
                    let started = Instant::now();
                    let written = write_rows(black_box(&rows), &dir, map);
                    spent += started.elapsed();
                    assert_eq!(written, rows.len() as u64);
                    std::fs::remove_dir_all(&dir).expect("clean up");
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = tsv;
    // Short runs: each iteration is the rows of ~20 MB of input, so 10 flat
    // samples are plenty.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(tsv);
