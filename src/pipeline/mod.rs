//! `kmdb import`: wires the stages. A first pass reads only the aliases and
//! settles the identity groups; a second pass parses every line on rayon
//! workers, resolves rows on one thread in input order, writes batch files
//! and bulk-loads them on parallel sessions of the target while later files
//! are parsed.
//!
//! [`guard`] takes the locks and checks the state store against the
//! database, [`select`] picks the files, [`stream`] reads them in order,
//! [`catchup`] brings earlier imports' rows up to date, [`sessions`] load
//! the batches, [`workdir`] holds the run's files.

mod catchup;
pub mod guard;
pub mod preview;
mod select;
mod sessions;
mod stream;
mod workdir;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, Sender};

use crate::db::{self, Loading, PartitionLocks, Target};
use crate::exit::Interrupted;
use crate::filters::Filters;
use crate::format::{self, Format, Outcome};
use crate::identity::Ident;
use crate::interrupt;
use crate::plan::ImportPlan;
use crate::progress::Progress;
use crate::report::{Accounting, RejectsFile};
use crate::resolve::{self, Resolver};
use crate::rows::{key_line, TsvWriter};
use crate::runs::RunInfo;
use crate::source::{self, s3, summary, Arrivals, Chunk, RevisionFile};
use crate::state::{self, StateStore};
use crate::table::Table;
use sessions::Job;
use stream::{stream_chunks, Reading, Stopped};
use workdir::RunDir;

pub use select::abbreviate;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportResult {
    pub accounting: Accounting,
    pub revisions: Vec<u64>,
    pub rejects_file: Option<PathBuf>,
    /// This import finished an interrupted one; the other revisions follow.
    pub resumed: bool,
    /// How long it took.
    pub seconds: f64,
    /// Rows and load time per target table.
    pub tables: Vec<crate::report::TableLoad>,
}

/// Chunks each file's reader keeps ready ahead of the parse. Pass 1 and
/// `kmdb parse` go as fast as they can read, so gzip files inflate well
/// ahead (pass 1 of the 2 GB export 1.42-1.62 s with 8, 1.16-1.38 with
/// 32); pass 2 goes at the loads' pace, where chunks read ahead only hold
/// memory (2 GB export: peak RSS 608 MB with 32 there too, 494 MB with 2).
const FAST_READ_AHEAD: usize = 32;
const PACED_READ_AHEAD: usize = 2;

/// The load bar's message while its total still grows.
const GROWING: &str = "(total so far: it grows until every line is read)";

/// Sessions that load the rows which came late for partitions already
/// loaded (see [`crate::rows::TsvFile::late`]), at the end of an import.
const LATE_SESSIONS: usize = 8;

/// Where an import run stands, for the message of an interruption.
enum Stage {
    /// Nothing imported or started yet.
    Starting,
    /// Loading these revisions.
    Importing(Vec<u64>),
    /// An interrupted import of these revisions was finished; the others
    /// come next.
    Finished(Vec<u64>),
}

/// Imports the revisions of the plan's source not imported yet: an import
/// left interrupted first, over exactly its revisions, then the others.
/// `report` hears of each import as it ends. Ctrl-C or SIGTERM (see
/// [`interrupt`]) stops it cleanly with an [`Interrupted`] error saying what
/// stopped.
pub fn import(
    plan: &ImportPlan,
    progress: &Progress,
    report: &mut dyn FnMut(&ImportResult),
) -> Result<()> {
    let mut stage = Stage::Starting;
    let result = import_all(plan, progress, report, &mut stage);
    result.map_err(|e| {
        if !interrupt::requested() {
            return e;
        }
        let what = match stage {
            Stage::Starting => {
                "kmdb import stopped before it started loading; run it again to import".to_owned()
            }
            Stage::Importing(revisions) => format!(
                "the import of revisions {} stopped before it finished (the rows loaded so far \
                 stay); run the same `kmdb import` again to resume it",
                guard::span(&revisions)
            ),
            Stage::Finished(revisions) => format!(
                "the interrupted import of revisions {} was finished, the other revisions were \
                 not imported; run the same `kmdb import` again to import them",
                guard::span(&revisions)
            ),
        };
        anyhow::Error::new(Interrupted).context(format!("interrupted: {what}"))
    })
}

fn import_all(
    plan: &ImportPlan,
    progress: &Progress,
    report: &mut dyn FnMut(&ImportResult),
    stage: &mut Stage,
) -> Result<()> {
    // The source first: a mistyped path is named before anything else.
    let format = plan.format.format();
    let export = source::list(&plan.source, format, &plan.download_dir())?;
    let mut target = db::connect(&plan.database)?;
    let format = if target.stores_nul() {
        format
    } else {
        plan.format.format_without_nul()
    };
    target.check_schema()?;
    target.check_bulk_load()?;
    let _locks = guard::lock(&mut *target, &plan.state, "import", progress)?;
    // A new state store stays in memory until the import starts loading.
    let mut state = StateStore::open(&plan.state)?;
    let filters = target.filters()?;

    if let Some(summary) =
        summary::describe_export(export.index_csv.as_deref(), export.status_csv.as_deref())
    {
        progress.log(&summary);
    }
    if !export.ignored.is_empty() {
        progress.warn(&format!(
            "{} file(s) in {} look like revisions but are not named {}, \
             and are not imported: {}",
            export.ignored.len(),
            plan.source,
            format.names(),
            abbreviate(&export.ignored)
        ));
    }
    let source_name = plan.source.to_string();
    loop {
        interrupt::check()?;
        let resume = guard::check(&mut *target, &mut state, progress)?;
        let selection = select::select(
            &export,
            &source_name,
            plan.revisions,
            &state,
            resume.as_ref(),
            progress,
        )?;
        let files = selection.files;
        if files.is_empty() {
            if matches!(stage, Stage::Starting) {
                progress.log("nothing to import: every revision in range is already imported");
            }
            target.drop_stages()?;
            return Ok(());
        }
        if !target.partitions(Table::Events)?.is_planned() {
            progress.warn(&format!(
                "events, properties and aliases have no time partitions: every row goes to their \
                 one partition, pLast. Plan them from the export's dates with `kmdb partition \
                 --from-export {}` (before importing, or after: add --replan to move the rows)",
                plan.source
            ));
        }
        progress.log(&format!(
            "importing {} revision file(s), {} .. {}",
            files.len(),
            files[0].revision,
            files[files.len() - 1].revision
        ));
        let revisions: Vec<u64> = files.iter().map(|f| f.revision).collect();
        *stage = Stage::Importing(revisions.clone());
        // Rows an interrupted import loaded under other filters must go
        // before they load again.
        let redo = resume
            .as_ref()
            .is_some_and(|l| l.filters != filters.digest());
        let run = Run {
            plan,
            format,
            progress,
            started: Instant::now(),
            redo,
            resume,
            filters: &filters,
            files: &files,
        };
        let result = run.files(&mut *target, &mut state, export.remote.as_ref())?;
        report(&ImportResult {
            resumed: selection.resumed,
            ..result
        });
        if !selection.resumed {
            return Ok(());
        }
        *stage = Stage::Finished(revisions);
    }
}

/// One import over chosen files.
struct Run<'a> {
    plan: &'a ImportPlan,
    format: &'static dyn Format,
    progress: &'a Progress,
    started: Instant,
    /// Remove the rows of an interrupted import before loading its
    /// revisions again (its filters were different).
    redo: bool,
    /// The interrupted import this one finishes.
    resume: Option<Loading>,
    filters: &'a Filters,
    files: &'a [RevisionFile],
}

impl Run<'_> {
    /// Imports the files, local or downloaded from S3 (`remote`) while the
    /// first pass reads those already complete.
    fn files(
        &self,
        target: &mut dyn Target,
        state: &mut StateStore,
        remote: Option<&source::Remote>,
    ) -> Result<ImportResult> {
        let plan = self.plan;
        let Some(remote) = remote else {
            return self.passes(target, state, &Arrivals::all_ready());
        };
        // From S3: download (bounded concurrency) while the first pass reads
        // the files already complete, in revision order.
        let wanted: HashSet<u64> = self.files.iter().map(|f| f.revision).collect();
        let remote_files: Vec<s3::RemoteFile> = remote
            .files
            .iter()
            .filter(|f| wanted.contains(&f.revision))
            .cloned()
            .collect();
        let arrivals = Arrivals::default();
        let bar = self
            .progress
            .bytes("download", remote_files.iter().map(|f| f.size).sum());
        let stop = AtomicBool::new(false);
        let result = thread::scope(|s| {
            let (tx, rx) = bounded::<Result<s3::Downloaded>>(remote_files.len().max(1));
            let (bar, arrivals_ref, stop_ref) = (&bar, &arrivals, &stop);
            let (client, remote_files) = (&remote.client, &remote_files);
            let dir = plan.download_dir();
            s.spawn(move || {
                let r = client.download(remote_files, &dir, &|n| bar.inc(n), &tx);
                if let Err(e) = r {
                    arrivals_ref.fail(format!("{e:#}"));
                }
            });
            s.spawn(move || {
                while !stop_ref.load(Ordering::SeqCst) {
                    match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                        Ok(Ok(d)) => arrivals_ref.arrive(d.revision),
                        Ok(Err(e)) => arrivals_ref.fail(format!("{e:#}")),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    }
                }
                arrivals_ref.close();
                bar.finish();
            });
            let r = self.passes(target, state, &arrivals);
            stop.store(true, Ordering::SeqCst);
            r
        });
        if result.is_ok() && !plan.keep_files {
            for f in self.files {
                std::fs::remove_file(&f.path).ok();
            }
        }
        result
    }

    /// How the files are read in a pass that keeps `chunks_ahead` chunks
    /// of each file ready.
    fn reading<'r>(
        &'r self,
        chunks_ahead: usize,
        arrivals: &'r Arrivals,
        read: &'r AtomicU64,
        bar: &'r crate::progress::Bar,
    ) -> Reading<'r> {
        Reading {
            files: self.files,
            chunk_size: self.plan.chunk_size,
            jobs: self.plan.jobs,
            chunks_ahead,
            arrivals,
            read,
            bar,
        }
    }

    /// Both passes and the bookkeeping, over files that are local or arriving.
    fn passes(
        &self,
        target: &mut dyn Target,
        state: &mut StateStore,
        arrivals: &Arrivals,
    ) -> Result<ImportResult> {
        let (plan, progress, filters) = (self.plan, self.progress, self.filters);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(plan.jobs)
            .build()
            .context("starting worker threads")?;
        let revisions: Vec<u64> = self.files.iter().map(|f| f.revision).collect();
        let mut snap = state.load()?;
        snap.duplicates.set_budget(plan.duplicate_keys_memory);
        // The database is about to name this state store: it must exist.
        state.persist()?;
        let run = RunInfo::this("import", state.path());
        let loading = match &self.resume {
            Some(l) => Loading {
                filters: filters.digest(),
                run: run.clone(),
                ..l.clone()
            },
            None => Loading {
                base: state.generation()?,
                next: state::random_token(),
                revisions: revisions.clone(),
                users: snap.identities.len() as u64,
                keys: snap.keys.len() as u64,
                filters: filters.digest(),
                import_id: None,
                run: run.clone(),
            },
        };
        if self.redo {
            progress.log(
                "the filters changed since the interrupted import: removing the rows it loaded",
            );
            // Committed rows it re-pointed are re-pointed again by this
            // run's catch-up, as identity numbers do not depend on filters.
            target.remove_revisions(&revisions, loading.users, loading.keys)?;
        }
        // Before any row changes: which revisions load, from which state.
        target.start_loading(&loading)?;
        target.drop_stages()?;
        let dir = RunDir::create(&plan.work_dir, &run)?;
        let before: Vec<Ident> = snap.identities.canonicals();

        // Pass 1: the links, in input order.
        let total_bytes: u64 = self.files.iter().map(|f| f.size).sum();
        let bar = progress.bytes("aliases", total_bytes);
        let read = AtomicU64::new(0);
        let mut unapplied = HashSet::new();
        let pass1 = stream_chunks(
            self.reading(FAST_READ_AHEAD, arrivals, &read, &bar),
            &pool,
            |chunk| self.format.chunk_aliases(chunk),
            |(rev, links)| {
                resolve::apply_links(&mut snap.identities, rev, links, &mut unapplied);
                Ok(())
            },
        );
        bar.end(&pass1);
        pass1?;

        // Rows of earlier imports follow this import's merges and ignores.
        interrupt::check()?;
        let catchup = resolve::catchup(&mut snap, &before, filters);
        catchup::apply(target, &catchup, &mut snap)?;

        // Pass 2: rows.
        let maps = [
            target.partitions(Table::Events)?,
            target.partitions(Table::Properties)?,
            target.partitions(Table::Aliases)?,
        ];
        let mut writer = TsvWriter::new(dir.path(), maps, plan.batch_bytes, plan.batch_bytes * 4)?;
        if plan.staging {
            // Partitions empty now fill best in one bulk load at the end.
            for table in Table::ALL {
                for partition in target.empty_partitions(table)? {
                    writer.hold(table, &partition);
                }
            }
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut rejects = RejectsFile::new(
            &plan.work_dir.join(format!("rejects-{stamp}.tsv")),
            &dir.path().join("rejects.tsv"),
        );
        if self.format.rejects_name_files() {
            let name = |f: &RevisionFile| f.path.file_name().map(|n| n.to_string_lossy().into());
            let names = self
                .files
                .iter()
                .filter_map(|f| Some((f.revision, name(f)?)));
            rejects = rejects.naming_files(names.collect());
        }
        let mut resolver = Resolver::new(&mut snap, filters, unapplied, writer, rejects);

        let bar = progress.bytes("rows", total_bytes);
        let pass2_started = Instant::now();
        let load_bar = progress.rows("load", 0);
        // Its total counts the rows written so far, until every line is read.
        load_bar.set_message(GROWING.to_owned());
        let loads = sessions::Loads::default();
        let read = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let (job_tx, job_rx) = bounded::<Job>(plan.load_sessions * 4);
        let locks = PartitionLocks::default();
        let late = Mutex::new(Vec::new());
        let loaders = (0..plan.load_sessions)
            .map(|session| target.loader(session, &locks, plan.staging))
            .collect::<Result<Vec<_>>>()?;
        let pass2 = thread::scope(|s| {
            let sessions = sessions::spawn(
                s,
                loaders,
                &job_rx,
                &failed,
                plan.keep_tsv,
                &load_bar,
                &loads,
            );
            drop(job_rx);
            // Rows that came late for a partition already loaded wait for
            // the end (see `TsvFile::late`).
            let send = |jobs: Vec<Job>, tx: &Sender<Job>| -> Result<()> {
                for job in jobs {
                    match job {
                        Job::File(f) if f.late => {
                            late.lock().expect("late files").push(Job::File(f))
                        }
                        job => tx.send(job).map_err(|_| anyhow!(Stopped))?,
                    }
                }
                Ok(())
            };
            let parsed = stream_chunks(
                self.reading(PACED_READ_AHEAD, arrivals, &read, &bar),
                &pool,
                |chunk| self.format.parse_chunk(chunk),
                |chunk| {
                    if failed.load(Ordering::SeqCst) {
                        bail!(Stopped);
                    }
                    resolver.consume(chunk)?;
                    let files = resolver.sink.take_ready();
                    load_bar.set_length(resolver.sink.rows_written());
                    let lines = resolver.total.lines;
                    let secs = pass2_started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_message(format!(
                        "{} lines ({}/s)",
                        crate::report::count(lines),
                        crate::report::count((lines as f64 / secs) as u64)
                    ));
                    send(files.into_iter().map(Job::File).collect(), &job_tx)
                },
            );
            let finished = parsed.and_then(|_| {
                let files = resolver.sink.finish()?;
                load_bar.set_length(resolver.sink.rows_written());
                load_bar.set_message(String::new());
                // The users rows are final once every line is read: they load
                // alongside the last partitions, in their place by size.
                let mut jobs: Vec<Job> = files.into_iter().map(Job::File).collect();
                let users_path = dir.path().join("users.tsv");
                if let Some(users) = sessions::write_users(users_path, resolver.snap, &before)? {
                    load_bar.set_length(resolver.sink.rows_written() + users.rows());
                    let at = jobs.iter().position(|j| j.rows() < users.rows());
                    jobs.insert(at.unwrap_or(jobs.len()), users);
                }
                send(jobs, &job_tx)
            });
            bar.end(&finished);
            drop(job_tx);
            let result = sessions::joined(finished, sessions)?;
            Ok::<_, anyhow::Error>((result, std::mem::take(&mut *late.lock().expect("late"))))
        });
        let (mut result, mut late) = pass2?;
        // Rows that came late for partitions already loaded, once every
        // partition's own file is in, largest first. Their cost is random
        // reads in partitions larger than the buffer pool more than server
        // work, so more sessions wait for them side by side: on the 2 GB
        // export 3.9 s on 2 sessions, 2.9 on 4, 2.5 on 8.
        late.sort_by_key(|f: &Job| std::cmp::Reverse(f.rows()));
        if result.is_ok() && !late.is_empty() {
            let loaders = (0..LATE_SESSIONS)
                .map(|i| target.loader(plan.load_sessions + i, &locks, plan.staging))
                .collect::<Result<Vec<_>>>()?;
            let (tx, rx) = bounded::<Job>(late.len());
            for f in late {
                tx.send(f).map_err(|_| anyhow!(Stopped))?;
            }
            drop(tx);
            result = thread::scope(|s| {
                let sessions =
                    sessions::spawn(s, loaders, &rx, &failed, plan.keep_tsv, &load_bar, &loads);
                sessions::joined(Ok(()), sessions)
            })?;
        }
        load_bar.end(&result);
        result?;
        // Past this point the import finishes even when asked to stop: what
        // is left is short, and all of it bookkeeping.
        interrupt::check()?;
        // A killed run's last statement can still create a staging table on
        // the server after this run dropped those left behind.
        target.drop_stages()?;
        resolver.rejects.finish()?;
        let accounting = resolver.total.clone();
        let mut revisions = std::mem::take(&mut resolver.revisions);
        let rejects_file = resolver.rejects.path().map(|p| p.to_owned());
        drop(resolver);
        debug_assert!(accounting.balances());
        // An empty file has no line to announce its revision: it is
        // imported all the same, with 0 lines.
        for f in self.files {
            if !revisions.iter().any(|r| r.0 == f.revision) {
                revisions.push((f.revision, 0));
            }
        }
        revisions.sort_unstable();

        // Keys (users are loaded), then the bookkeeping.
        let mut keys = Vec::new();
        for (id, s) in snap.keys.touched() {
            key_line(&mut keys, id, s);
        }
        let keys_started = Instant::now();
        target.load_keys(&keys, dir.path())?;
        loads.add(
            crate::table::KEYS,
            snap.keys.touched().count() as u64,
            keys_started.elapsed(),
        );
        let import_id = target.record_import(&db::ImportRecord {
            source: plan.source.to_string(),
            revisions: revision_span(&revisions),
            accounting: &accounting,
            rejects_file: rejects_file.as_ref().map(|p| p.display().to_string()),
            seconds: self.started.elapsed().as_secs(),
            replaces: loading.import_id,
            state_store: run.state_store.clone(),
            host: run.host.clone(),
        })?;
        state.commit(&mut snap, &revisions, import_id, &loading.next)?;
        target.commit_import(import_id, &loading.next)?;
        // The files of this run, and those runs that are gone left behind
        // (their revisions are loaded now, or will be by their own re-run).
        if !plan.keep_tsv {
            dir.remove();
        }
        workdir::remove_leftovers(&plan.work_dir);
        Ok(ImportResult {
            accounting,
            revisions: revisions.iter().map(|r| r.0).collect(),
            rejects_file,
            resumed: false,
            seconds: self.started.elapsed().as_secs_f64(),
            tables: loads.tables(),
        })
    }
}

/// `N` or `N-M` of the `(revision, lines)` of an import.
fn revision_span(revisions: &[(u64, u64)]) -> String {
    match (revisions.first(), revisions.last()) {
        (Some(f), Some(l)) if f.0 == l.0 => f.0.to_string(),
        (Some(f), Some(l)) => format!("{}-{}", f.0, l.0),
        _ => String::new(),
    }
}

/// What [`parse_only`] measured.
#[derive(Debug, Default)]
pub struct ParseStats {
    pub files: usize,
    pub bytes: u64,
    pub lines: u64,
    pub records: u64,
    pub seconds: f64,
}

/// Reads, decodes and classifies every line of a local export on `jobs`
/// threads, with no database: the parse floor of a benchmark.
pub fn parse_only(
    dir: &std::path::Path,
    format: &dyn Format,
    jobs: usize,
    chunk_size: usize,
    progress: &Progress,
) -> Result<ParseStats> {
    let started = Instant::now();
    let mut stats = ParseStats::default();
    // Count in the workers, so the single consumer does no work of its own.
    let count = |parsed: format::ParsedChunk| {
        let bytes = parsed.chunk.bytes().len() as u64;
        let records = parsed
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Record(_)))
            .count() as u64;
        (bytes, parsed.outcomes.len() as u64, records)
    };
    stats.files = scan(
        dir,
        format,
        jobs,
        chunk_size,
        progress,
        "parse",
        count,
        |(b, l, r)| {
            stats.bytes += b;
            stats.lines += l;
            stats.records += r;
        },
    )?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// How many records of a local export fall on each day (days since
/// 1970-01-01), read on `jobs` threads: the dates a partition plan covers.
pub fn records_per_day(
    dir: &std::path::Path,
    format: &dyn Format,
    jobs: usize,
    progress: &Progress,
) -> Result<std::collections::BTreeMap<i64, u64>> {
    let mut days = std::collections::BTreeMap::new();
    let per_chunk = |parsed: format::ParsedChunk| {
        let mut counts: std::collections::HashMap<i64, u64> = Default::default();
        for outcome in &parsed.outcomes {
            if let Outcome::Record(entry) = outcome {
                *counts
                    .entry(crate::dates::Day::of(entry.t()).0)
                    .or_default() += 1;
            }
        }
        counts
    };
    scan(
        dir,
        format,
        jobs,
        crate::plan::CHUNK_SIZE,
        progress,
        "scan",
        per_chunk,
        |counts| {
            for (day, n) in counts {
                *days.entry(day).or_default() += n;
            }
        },
    )?;
    Ok(days)
}

/// Parses every line of the local export `dir` on `jobs` threads, hands
/// each chunk to `per_chunk` on a worker and its result to `fold` in order;
/// returns the number of files.
#[allow(clippy::too_many_arguments)]
fn scan<T: Send>(
    dir: &std::path::Path,
    format: &dyn Format,
    jobs: usize,
    chunk_size: usize,
    progress: &Progress,
    label: &str,
    per_chunk: impl Fn(format::ParsedChunk) -> T + Sync,
    mut fold: impl FnMut(T) + Send,
) -> Result<usize> {
    let files = source::local::list(dir, format)?.files;
    let jobs = jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("starting worker threads")?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = progress.bytes(label, total);
    let read = AtomicU64::new(0);
    let arrivals = Arrivals::all_ready();
    let reading = Reading {
        files: &files,
        chunk_size,
        jobs,
        chunks_ahead: FAST_READ_AHEAD,
        arrivals: &arrivals,
        read: &read,
        bar: &bar,
    };
    let r = stream_chunks(
        reading,
        &pool,
        |chunk: Chunk| per_chunk(format.parse_chunk(chunk)),
        |t| {
            fold(t);
            Ok(())
        },
    );
    bar.end(&r);
    r?;
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_spans() {
        assert_eq!(revision_span(&[]), "");
        assert_eq!(revision_span(&[(3, 10)]), "3");
        assert_eq!(revision_span(&[(3, 10), (4, 1), (9, 2)]), "3-9");
    }
}
