//! One pass over the database for a run: the events (and the properties of
//! `where` conditions) are streamed in whatever order the database sends them,
//! put in buckets by a hash of the person (spilled to files once they hold
//! more than a fixed budget, so memory does not grow with the data), then
//! each bucket is sorted by `(user, t, id)` and its persons handed to a
//! [`Tally`], buckets side by side on rayon workers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;

use super::{Conditions, Event, EventReader, Mark, PropertyFilter, Tally};
use crate::db::read::Slice;
use crate::progress::Progress;

/// How a run reads: where buckets spill, how many sessions read and how many
/// workers count, and the memory buckets may hold before they spill.
pub struct ReadOptions<'a> {
    pub work_dir: PathBuf,
    pub threads: usize,
    /// Database sessions reading slices side by side.
    pub sessions: usize,
    pub progress: &'a Progress,
    /// Bytes of rows held in memory before the buckets are written to files.
    pub memory: usize,
}

/// Bytes of rows a bucket should hold, so that a worker sorts a bucket in a
/// few tens of MB whatever the size of the data.
const BUCKET_BYTES: u64 = 32 << 20;
/// At least this many, in case the database's estimate is far too low.
const MIN_BUCKETS: u64 = 64;
const MAX_BUCKETS: u64 = 4096;

/// What a pass reads: the events of `slices` (only those named `names`
/// when given), and the properties of the `where` conditions if any.
pub struct Pass<'a> {
    pub slices: Vec<Slice>,
    pub names: Option<Vec<u32>>,
    pub properties: Option<(PropertyFilter, &'a Conditions)>,
}

/// One query of a pass.
#[derive(Clone, Copy)]
enum Task {
    Events(usize),
    Properties(usize),
}

/// What one reading session gathered.
struct Gathered<'d> {
    events: Spill<'d, Event>,
    marks: Spill<'d, Mark>,
}

/// Reads the rows of `pass` once and folds every person into tallies made
/// by `make`, merged into one.
pub fn run<T, F>(
    db: &dyn EventReader,
    pass: &Pass<'_>,
    make: F,
    opts: &ReadOptions<'_>,
) -> Result<T>
where
    T: Tally,
    F: Fn() -> T + Sync,
{
    let estimate: u64 = pass.slices.iter().map(|s| s.rows).sum();
    let buckets = (estimate * Event::BYTES as u64)
        .div_ceil(BUCKET_BYTES)
        .clamp((opts.threads as u64 * 4).max(MIN_BUCKETS), MAX_BUCKETS) as usize;
    let spill_dir = SpillDir::new(&opts.work_dir);
    let sessions = opts.sessions.max(1);
    let memory = opts.memory / sessions;

    // Property slices first in each pair: they cost the server more.
    let mut tasks = Vec::new();
    for i in 0..pass.slices.len() {
        if pass.properties.is_some() {
            tasks.push(Task::Properties(i));
        }
        tasks.push(Task::Events(i));
    }
    let next_task = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let kept = AtomicU64::new(0);
    let property_slices = AtomicUsize::new(0);
    let bar = opts.progress.rows("events", estimate.max(1));

    let read = |worker: usize| -> Result<Gathered<'_>> {
        let mut g = Gathered {
            events: Spill::new(
                &spill_dir,
                format!("events-{worker}"),
                buckets,
                (memory * 3 / 4 / Event::BYTES).max(1),
            ),
            marks: Spill::new(
                &spill_dir,
                format!("marks-{worker}"),
                buckets,
                (memory / 4 / Mark::BYTES).max(1),
            ),
        };
        let mut session = db.session()?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(g);
            }
            let Some(&task) = tasks.get(next_task.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(g);
            };
            match task {
                Task::Events(i) => {
                    let slice = &pass.slices[i];
                    let before = g.events.total;
                    session
                        .events(slice, pass.names.as_deref(), &mut |e| {
                            if stop.load(Ordering::Relaxed) {
                                return Err(anyhow!("stopped"));
                            }
                            g.events.push(e)
                        })
                        .context("reading events")?;
                    kept.fetch_add(g.events.total - before, Ordering::Relaxed);
                    bar.inc(slice.rows);
                }
                Task::Properties(i) => {
                    let (filter, conditions) = pass.properties.as_ref().expect("a property task");
                    session
                        .properties(&pass.slices[i], filter, &mut |row| {
                            if stop.load(Ordering::Relaxed) {
                                return Err(anyhow!("stopped"));
                            }
                            match conditions.lookup(row.key, row.value) {
                                Some(cond) => g.marks.push(Mark {
                                    user: row.user,
                                    event: row.event,
                                    cond,
                                }),
                                None => Ok(()),
                            }
                        })
                        .context("reading the properties of the where conditions")?;
                    property_slices.fetch_add(1, Ordering::Relaxed);
                }
            }
            let mut msg = format!("{} events kept", kept.load(Ordering::Relaxed));
            if pass.properties.is_some() {
                let done = property_slices.load(Ordering::Relaxed);
                msg += &format!(", where properties: {done} of {} slices", pass.slices.len());
            }
            bar.set_message(msg);
        }
    };
    let gathered: Vec<Option<Gathered<'_>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..sessions)
            .map(|w| {
                let read = &read;
                let (stop, first_error) = (&stop, &first_error);
                s.spawn(move || match read(w) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        // The first error is the one that stopped the others.
                        if !stop.swap(true, Ordering::Relaxed) {
                            *first_error.lock().expect("error slot") = Some(e);
                        }
                        None
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(None))
            .collect()
    });
    if let Some(e) = first_error.into_inner().expect("error slot") {
        bar.abandon();
        return Err(e);
    }
    let gathered: Vec<Gathered<'_>> = gathered.into_iter().flatten().collect();
    if gathered.len() != sessions {
        bar.abandon();
        return Err(anyhow!("a reading thread stopped unexpectedly"));
    }
    let total: u64 = gathered.iter().map(|g| g.events.total).sum();
    bar.set_message(format!("{total} events kept"));
    bar.finish();

    let count_bar = opts.progress.rows("counting", total.max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("starting the counting threads")?;
    // Bucket b of every session holds the same persons.
    let mut work: Vec<Parts> = (0..buckets).map(|_| (Vec::new(), Vec::new())).collect();
    for g in gathered {
        for (b, part) in g.events.into_buckets().into_iter().enumerate() {
            work[b].0.push(part);
        }
        for (b, part) in g.marks.into_buckets().into_iter().enumerate() {
            work[b].1.push(part);
        }
    }
    let result = pool.install(|| {
        work.into_par_iter()
            .try_fold(&make, |mut tally, (events, marks)| -> Result<T> {
                let mut events = Bucket::load_all(events)?;
                let marks = Bucket::load_all(marks)?;
                let n = events.len() as u64;
                count_persons(&mut tally, &mut events, marks);
                count_bar.inc(n);
                Ok(tally)
            })
            .try_reduce(&make, |mut a, b| {
                a.merge(b);
                Ok(a)
            })
    });
    match &result {
        Ok(_) => count_bar.finish(),
        Err(_) => count_bar.abandon(),
    }
    result
}

/// Sorts one bucket and hands each person's events and marks to `tally`.
pub fn count_persons<T: Tally>(tally: &mut T, events: &mut [Event], mut marks: Vec<Mark>) {
    events.sort_unstable_by_key(|e| (e.user, e.t, e.id));
    marks.sort_unstable_by_key(|m| (m.user, m.event, m.cond));
    let mut at = 0;
    for person in events.chunk_by(|a, b| a.user == b.user) {
        let user = person[0].user;
        while at < marks.len() && marks[at].user < user {
            at += 1;
        }
        let start = at;
        while at < marks.len() && marks[at].user == user {
            at += 1;
        }
        tally.person(person, &marks[start..at]);
    }
}

/// A row kept in a bucket: fixed-size bytes in a spill file.
trait Record: Copy + Send {
    const BYTES: usize;
    fn user(&self) -> i64;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl Record for Event {
    const BYTES: usize = 28;
    fn user(&self) -> i64 {
        self.user
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user.to_le_bytes());
        out.extend_from_slice(&self.t.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Event {
        Event {
            user: i64_at(b, 0),
            t: i64_at(b, 8),
            id: i64_at(b, 16),
            n: u32_at(b, 24),
        }
    }
}

impl Record for Mark {
    const BYTES: usize = 20;
    fn user(&self) -> i64 {
        self.user
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user.to_le_bytes());
        out.extend_from_slice(&self.event.to_le_bytes());
        out.extend_from_slice(&self.cond.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Mark {
        Mark {
            user: i64_at(b, 0),
            event: i64_at(b, 8),
            cond: u32_at(b, 16),
        }
    }
}

/// The bucket of a person: a multiplicative hash of the id, spread over
/// `n` buckets by its high bits.
fn bucket_of(user: i64, n: usize) -> usize {
    let h = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// The directory of a run's spill files, made on first use in the work
/// directory and removed with everything in it at the end.
struct SpillDir {
    parent: PathBuf,
    dir: std::sync::OnceLock<std::result::Result<tempfile::TempDir, String>>,
}

impl SpillDir {
    fn new(parent: &Path) -> SpillDir {
        SpillDir {
            parent: parent.to_owned(),
            dir: std::sync::OnceLock::new(),
        }
    }

    fn path(&self) -> Result<&Path> {
        let made = self.dir.get_or_init(|| {
            std::fs::create_dir_all(&self.parent)
                .and_then(|()| {
                    tempfile::Builder::new()
                        .prefix("kmdb-analysis-")
                        .tempdir_in(&self.parent)
                })
                .map_err(|e| {
                    format!(
                        "cannot create a directory for sorting in {}: {e} \
                         (set --work-dir to a directory with free space)",
                        self.parent.display()
                    )
                })
        });
        match made {
            Ok(dir) => Ok(dir.path()),
            Err(e) => Err(anyhow!("{e}")),
        }
    }
}

/// Rows in buckets by person: in memory up to `limit` rows in all, then
/// appended to one file per bucket.
struct Spill<'d, R: Record> {
    dir: &'d SpillDir,
    name: String,
    buckets: Vec<Vec<R>>,
    files: Vec<Option<PathBuf>>,
    held: usize,
    limit: usize,
    total: u64,
    buf: Vec<u8>,
}

impl<'d, R: Record> Spill<'d, R> {
    fn new(dir: &'d SpillDir, name: String, buckets: usize, limit: usize) -> Spill<'d, R> {
        Spill {
            dir,
            name,
            buckets: (0..buckets).map(|_| Vec::new()).collect(),
            files: vec![None; buckets],
            held: 0,
            limit,
            total: 0,
            buf: Vec::new(),
        }
    }

    fn push(&mut self, r: R) -> Result<()> {
        let b = bucket_of(r.user(), self.buckets.len());
        self.buckets[b].push(r);
        self.held += 1;
        self.total += 1;
        if self.held >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Appends every bucket's rows to its file and empties the buckets.
    fn spill(&mut self) -> Result<()> {
        let dir = self.dir.path()?;
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            if bucket.is_empty() {
                continue;
            }
            self.buf.clear();
            for r in bucket.iter() {
                r.encode(&mut self.buf);
            }
            let path = self.files[i].get_or_insert_with(|| dir.join(format!("{}-{i}", self.name)));
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&*path)
                .with_context(|| format!("opening {}", path.display()))?;
            file.write_all(&self.buf).with_context(|| {
                format!(
                    "writing {} (is the disk full? set --work-dir)",
                    path.display()
                )
            })?;
            bucket.clear();
        }
        self.held = 0;
        Ok(())
    }

    fn into_buckets(self) -> Vec<Bucket<R>> {
        self.buckets
            .into_iter()
            .zip(self.files)
            .map(|(rows, file)| Bucket { rows, file })
            .collect()
    }
}

/// The parts of one bucket from every reading session: events, marks.
type Parts = (Vec<Bucket<Event>>, Vec<Bucket<Mark>>);

/// One bucket's rows: the spilled ones in a file, the rest in memory.
struct Bucket<R> {
    rows: Vec<R>,
    file: Option<PathBuf>,
}

impl<R: Record> Bucket<R> {
    /// The rows of a bucket's parts (one per reading session), together.
    fn load_all(parts: Vec<Bucket<R>>) -> Result<Vec<R>> {
        let mut parts = parts.into_iter();
        let mut rows = match parts.next() {
            Some(first) => first.load()?,
            None => Vec::new(),
        };
        for part in parts {
            rows.extend(part.load()?);
        }
        Ok(rows)
    }

    fn load(self) -> Result<Vec<R>> {
        let Some(path) = self.file else {
            return Ok(self.rows);
        };
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
        // Freed as soon as read: the directory goes at the end anyway.
        let _ = std::fs::remove_file(&path);
        let mut rows = Vec::with_capacity(bytes.len() / R::BYTES + self.rows.len());
        rows.extend(bytes.chunks_exact(R::BYTES).map(R::decode));
        rows.extend(self.rows);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every person as it is handed over.
    #[derive(Default)]
    struct Seen(Vec<(Vec<Event>, Vec<Mark>)>);

    impl Tally for Seen {
        fn person(&mut self, events: &[Event], marks: &[Mark]) {
            self.0.push((events.to_vec(), marks.to_vec()));
        }
        fn merge(&mut self, other: Self) {
            self.0.extend(other.0);
        }
    }

    fn ev(user: i64, t: i64, id: i64) -> Event {
        Event { user, t, id, n: 1 }
    }

    #[test]
    fn persons_get_their_events_in_t_then_id_order_and_their_own_marks() {
        let mut events = vec![
            ev(2, 5, 9),
            ev(1, 5, 3),
            ev(1, 5, 2),
            ev(1, 4, 7),
            ev(3, 1, 1),
        ];
        let marks = vec![
            Mark {
                user: 3,
                event: 1,
                cond: 0,
            },
            Mark {
                user: 1,
                event: 3,
                cond: 2,
            },
            Mark {
                user: 1,
                event: 3,
                cond: 1,
            },
            Mark {
                user: 4,
                event: 8,
                cond: 0,
            },
        ];
        let mut seen = Seen::default();
        count_persons(&mut seen, &mut events, marks);
        let ids: Vec<(i64, Vec<i64>, Vec<u32>)> = seen
            .0
            .iter()
            .map(|(e, m)| {
                (
                    e[0].user,
                    e.iter().map(|e| e.id).collect(),
                    m.iter().map(|m| m.cond).collect(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                (1, vec![7, 2, 3], vec![1, 2]),
                (2, vec![9], vec![]),
                (3, vec![1], vec![0])
            ]
        );
    }

    #[test]
    fn spilled_buckets_come_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(tmp.path());
        let mut spill = Spill::new(&dir, "events".into(), 8, 100);
        for i in 0..1000 {
            spill.push(ev(i % 37, i, i)).unwrap();
        }
        assert_eq!(spill.total, 1000);
        let mut all = Vec::new();
        for (b, bucket) in spill.into_buckets().into_iter().enumerate() {
            let rows = bucket.load().unwrap();
            assert!(rows.iter().all(|r| bucket_of(r.user, 8) == b));
            all.extend(rows);
        }
        all.sort_by_key(|e| e.id);
        assert_eq!(all, (0..1000).map(|i| ev(i % 37, i, i)).collect::<Vec<_>>());
    }

    #[test]
    fn buckets_spread_consecutive_ids() {
        let mut counts = [0usize; 16];
        for user in 1..16_001 {
            counts[bucket_of(user, 16)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn records_round_trip() {
        let e = Event {
            user: -5,
            t: 253_402_300_799,
            id: (7 << 40) | 12,
            n: u32::MAX - 1,
        };
        let mut b = Vec::new();
        e.encode(&mut b);
        assert_eq!(b.len(), Event::BYTES);
        assert_eq!(Event::decode(&b), e);
        let m = Mark {
            user: 9,
            event: 1 << 50,
            cond: 3,
        };
        b.clear();
        m.encode(&mut b);
        assert_eq!(b.len(), Mark::BYTES);
        assert_eq!(Mark::decode(&b), m);
    }
}
