//! `kmdb import`: wires the stages. A first pass reads only the aliases and
//! settles the identity groups; a second pass parses every line on rayon
//! workers, resolves rows on one thread in input order, writes TSV batches
//! and loads them on parallel MySQL sessions while later files are parsed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use mysql::prelude::Queryable;
use mysql::Conn;
use rayon::prelude::*;

use crate::db::{self, load, schema, DatabaseUrl, InfileAllowlist};
use crate::identity::Ident;
use crate::progress::{Bar, Mode, Progress};
use crate::report::{Accounting, RejectsFile};
use crate::resolve::{self, parse_chunk, Catchup, Resolver};
use crate::rows::{key_line, user_line, TsvFile, TsvWriter};
use crate::source::{self, s3, Arrivals, Chunk, RevisionFile};
use crate::state::{Snapshot, StateStore};
use crate::table::Table;

/// Everything an import needs, validated.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub source: Source,
    /// Keep downloaded files after the import (S3 sources).
    pub keep_files: bool,
    /// Keep the TSV files after loading them (for benchmarks of the load).
    pub keep_tsv: bool,
    /// Fill empty partitions through staging tables (see `load::Loader`).
    pub staging: bool,
    pub database: DatabaseUrl,
    pub state: PathBuf,
    pub work_dir: PathBuf,
    pub min_revision: Option<u64>,
    pub max_revision: Option<u64>,
    pub jobs: usize,
    pub load_sessions: usize,
    pub progress: Mode,
    /// Bytes of input per parse task.
    pub chunk_size: usize,
    /// Bytes of rows per TSV file.
    pub batch_bytes: usize,
}

/// Where revision files come from.
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

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportResult {
    pub accounting: Accounting,
    pub revisions: Vec<u64>,
    pub rejects_file: Option<PathBuf>,
    pub import_id: Option<u64>,
    /// This run finished an interrupted import; the revisions it did not
    /// cover are still to import.
    pub resumed: bool,
}

/// Error text used when a stage stops because another one failed first.
const STOPPED: &str = "stopped because another stage failed";

/// Chunks each file's reader keeps ready ahead of the parse. Pass 1 and
/// `kmdb parse` go as fast as they can read, so gzip files inflate well
/// ahead (pass 1 of the 2 GB export 1.42-1.62 s with 8, 1.16-1.38 with
/// 32); pass 2 goes at the loads' pace, where chunks read ahead only hold
/// memory (2 GB export: peak RSS 608 MB with 32 there too, 494 MB with 2).
const FAST_READ_AHEAD: usize = 32;
const PACED_READ_AHEAD: usize = 2;

/// Sessions that load the rows which came late for partitions already
/// loaded (see [`TsvFile::late`]), at the end of an import.
const LATE_SESSIONS: usize = 8;

pub fn import(plan: &ImportPlan, progress: &Progress) -> Result<ImportResult> {
    let started = Instant::now();
    let allow = Arc::new(InfileAllowlist::default());
    let mut conn = db::connect(&plan.database, Some(allow.clone()))?;
    schema::check(&mut conn)?;
    db::check_local_infile(&mut conn)?;
    let mut state = StateStore::open(&plan.state)?;
    check_token(&mut conn, &state)?;
    let filters = schema::filters(&mut conn)?;

    let listed = list_source(plan)?;
    if let Some(summary) =
        s3::describe_export(listed.index_csv.as_deref(), listed.status_csv.as_deref())
    {
        progress.log(&summary);
    }
    if !listed.ignored.is_empty() {
        progress.warn(&format!(
            "{} file(s) in {} look like revisions but are not named N.json or N.json.gz, \
             and are not imported: {}",
            listed.ignored.len(),
            plan.source,
            abbreviate(&listed.ignored)
        ));
    }
    let done: HashSet<u64> = state.imported_revisions()?.into_iter().collect();
    let listed_revisions: Vec<u64> = listed.files.iter().map(|f| f.revision).collect();
    let pending = |revision: u64| {
        plan.min_revision.is_none_or(|m| revision >= m)
            && plan.max_revision.is_none_or(|m| revision <= m)
            && !done.contains(&revision)
    };
    // An import interrupted before its commit is finished first, over exactly
    // its revisions: its links may already have re-pointed rows in MySQL.
    let in_flight = state.in_flight()?;
    let resumed = in_flight.is_some();
    // Rows it loaded under other filters must go before they load again.
    let redo = resumed && state.in_flight_filters()?.as_deref() != Some(&*filters.digest());
    let files: Vec<RevisionFile> = match &in_flight {
        Some(revs) => {
            progress.log(&format!(
                "resuming the interrupted import of {} revision(s) first; run again for the rest",
                revs.len()
            ));
            let wanted: HashSet<u64> = revs.iter().copied().collect();
            let files: Vec<RevisionFile> = listed
                .files
                .into_iter()
                .filter(|f| wanted.contains(&f.revision))
                .collect();
            if files.len() != wanted.len() {
                bail!(
                    "the interrupted import of revisions {:?} cannot be finished: some of them are not in {}",
                    revs,
                    plan.source
                );
            }
            files
        }
        None => listed
            .files
            .into_iter()
            .filter(|f| pending(f.revision))
            .collect(),
    };
    warn_out_of_order(progress, plan, &listed_revisions, &done, &files);
    if files.is_empty() {
        progress.log("nothing to import: every revision in range is already imported");
        load::drop_stages(&mut conn)?;
        return Ok(ImportResult::default());
    }
    progress.log(&format!(
        "importing {} revision file(s), {} .. {}",
        files.len(),
        files[0].revision,
        files[files.len() - 1].revision
    ));

    let Some(remote) = listed.remote else {
        let arrivals = Arrivals::all_ready();
        let ctx = Ctx {
            plan,
            progress,
            allow,
            arrivals: &arrivals,
            started,
            redo,
        };
        return load_files_of(ctx, &mut conn, &mut state, &filters, &files)
            .map(|r| ImportResult { resumed, ..r });
    };
    // From S3: download (bounded concurrency) while the first pass reads
    // the files already complete, in revision order.
    let remote: Vec<s3::RemoteFile> = remote
        .files
        .into_iter()
        .filter(|f| pending(f.revision))
        .collect();
    let arrivals = Arrivals::default();
    let bar = progress.bytes("download", remote.iter().map(|f| f.size).sum());
    let stop = AtomicBool::new(false);
    let result = thread::scope(|s| {
        let (tx, rx) = bounded::<Result<s3::Downloaded>>(remote.len().max(1));
        let (bar_ref, arrivals_ref, stop_ref) = (&bar, &arrivals, &stop);
        let client = &listed.client;
        let dir = download_dir(plan);
        let remote = &remote;
        s.spawn(move || {
            let r = client.as_ref().expect("listed from S3").download(
                remote,
                &dir,
                &|n| bar_ref.inc(n),
                &tx,
            );
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
            bar_ref.finish();
        });
        let ctx = Ctx {
            plan,
            progress,
            allow,
            arrivals: &arrivals,
            started,
            redo,
        };
        let r = load_files_of(ctx, &mut conn, &mut state, &filters, &files);
        stop.store(true, Ordering::SeqCst);
        r
    });
    if result.is_ok() && !plan.keep_files {
        for f in &files {
            std::fs::remove_file(&f.path).ok();
        }
    }
    result.map(|r| ImportResult { resumed, ..r })
}

/// Says when revisions are missing between the first and the last one known
/// (listed or imported), and when this import brings a revision older than
/// one already imported: links apply in the order imported, so a late
/// revision can give other groups than a one-shot import would (SPEC §5).
/// Imports go on either way: a gap may be real in an export.
fn warn_out_of_order(
    progress: &Progress,
    plan: &ImportPlan,
    listed: &[u64],
    done: &HashSet<u64>,
    files: &[RevisionFile],
) {
    let known: std::collections::BTreeSet<u64> = listed.iter().chain(done).copied().collect();
    if let (Some(&first), Some(&last)) = (known.first(), known.last()) {
        let missing: Vec<u64> = (first..=last).filter(|r| !known.contains(r)).collect();
        if !missing.is_empty() {
            progress.warn(&format!(
                "{} revision(s) missing from {} between {first} and {last}: {}",
                missing.len(),
                plan.source,
                abbreviate(&missing)
            ));
        }
    }
    if let Some(&newest) = done.iter().max() {
        let late: Vec<u64> = files
            .iter()
            .map(|f| f.revision)
            .filter(|&r| r < newest)
            .collect();
        if !late.is_empty() {
            progress.warn(&format!(
                "revision(s) {} arrived after revision {newest} was imported: their aliases apply \
                 after those of the newer revisions",
                abbreviate(&late)
            ));
        }
    }
}

/// `1, 2, 3` or, for long lists, the first ten and a count.
fn abbreviate<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(10).map(T::to_string).collect();
    match items.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// What every stage of one import shares.
struct Ctx<'a> {
    plan: &'a ImportPlan,
    progress: &'a Progress,
    allow: Arc<InfileAllowlist>,
    arrivals: &'a Arrivals,
    started: Instant,
    /// Remove the rows of an interrupted import before loading its
    /// revisions again (its filters were different).
    redo: bool,
}

/// Revision files of the source, local or still to download.
struct Listed {
    files: Vec<RevisionFile>,
    index_csv: Option<String>,
    status_csv: Option<String>,
    /// Files that look like revisions but are not ([`source::near_miss`]).
    ignored: Vec<String>,
    remote: Option<s3::Listing>,
    client: Option<s3::S3Source>,
}

fn download_dir(plan: &ImportPlan) -> PathBuf {
    plan.work_dir.join("download")
}

fn list_source(plan: &ImportPlan) -> Result<Listed> {
    match &plan.source {
        Source::Local(dir) => {
            let export = source::local::list(dir)?;
            Ok(Listed {
                files: export.files,
                index_csv: export.index_csv,
                status_csv: export.status_csv,
                ignored: export.ignored,
                remote: None,
                client: None,
            })
        }
        Source::S3 { url, config } => {
            let client = s3::S3Source::connect(url.clone(), config.clone())?;
            let listing = client.list()?;
            let dir = download_dir(plan);
            let files: Vec<RevisionFile> = listing
                .files
                .iter()
                .map(|f| RevisionFile {
                    revision: f.revision,
                    path: dir.join(f.file_name()),
                    gzip: f.gzip,
                    size: f.size,
                })
                .collect();
            source::check_revisions(&files)?;
            Ok(Listed {
                files,
                index_csv: listing.index_csv.clone(),
                status_csv: listing.status_csv.clone(),
                ignored: listing.ignored.clone(),
                remote: Some(listing),
                client: Some(client),
            })
        }
    }
}

/// Both passes and the bookkeeping, over files that are local or arriving.
fn load_files_of(
    ctx: Ctx<'_>,
    conn: &mut Conn,
    state: &mut StateStore,
    filters: &crate::filters::Filters,
    files: &[RevisionFile],
) -> Result<ImportResult> {
    let Ctx {
        plan,
        progress,
        allow,
        arrivals,
        started,
        redo,
    } = ctx;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs)
        .build()
        .context("starting worker threads")?;
    let revisions: Vec<u64> = files.iter().map(|f| f.revision).collect();
    let mut snap = state.load()?;
    if redo {
        progress
            .log("the filters changed since the interrupted import: removing the rows it loaded");
        remove_uncommitted(conn, &revisions, &snap)?;
    }
    state.set_in_flight(&revisions, &filters.digest())?;
    load::drop_stages(conn)?;
    let before: Vec<Ident> = snap.identities.canonicals();

    // Pass 1: the links, in input order.
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let bar = progress.bytes("aliases", total_bytes);
    let read = AtomicU64::new(0);
    let mut unapplied = HashSet::new();
    let pass1 = stream_chunks(
        files,
        plan,
        FAST_READ_AHEAD,
        arrivals,
        &pool,
        &read,
        &bar,
        resolve::chunk_aliases,
        |(rev, links)| {
            resolve::apply_links(&mut snap.identities, rev, links, &mut unapplied);
            Ok(())
        },
    );
    finish_bar(&bar, &pass1);
    pass1?;

    // Rows of earlier imports follow this import's merges and ignores.
    let catchup = resolve::catchup(&mut snap, &before, filters);
    apply_catchup(conn, &catchup, &mut snap)?;

    // Pass 2: rows.
    let tsv_dir = plan.work_dir.join("tsv");
    let maps = [
        schema::partitions(conn, Table::Events)?,
        schema::partitions(conn, Table::Properties)?,
        schema::partitions(conn, Table::Aliases)?,
    ];
    let mut writer = TsvWriter::new(&tsv_dir, maps, plan.batch_bytes, plan.batch_bytes * 4)?;
    if plan.staging {
        // Partitions empty now fill best in one bulk load at the end.
        for table in Table::ALL {
            for partition in schema::empty_partitions(conn, table)? {
                writer.hold(table, &partition);
            }
        }
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rejects_path = plan.work_dir.join(format!("rejects-{stamp}.tsv"));
    let rejects = RejectsFile::new(&rejects_path);
    let mut resolver = Resolver::new(&mut snap, filters, unapplied, writer, rejects);

    let bar = progress.bytes("rows", total_bytes);
    let pass2_started = Instant::now();
    let load_bar = progress.rows("load", 0);
    let read = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let loaded = AtomicU64::new(0);
    let (file_tx, file_rx) = bounded::<Job>(plan.load_sessions * 4);
    let locks = load::PartitionLocks::default();
    let late = Mutex::new(Vec::new());
    let pass2 = thread::scope(|s| {
        let spawn_sessions = |sessions: std::ops::Range<usize>, rx: Receiver<Job>| {
            sessions
                .map(|session| {
                    let rx = rx.clone();
                    let (allow, failed, loaded, load_bar) = (&allow, &failed, &loaded, &load_bar);
                    let locks = &locks;
                    s.spawn(move || {
                        let r = load_files(plan, allow, session, locks, rx, loaded, load_bar);
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        r
                    })
                })
                .collect::<Vec<_>>()
        };
        let loaders = spawn_sessions(0..plan.load_sessions, file_rx);
        let send = |files: Vec<Job>, tx: &Sender<Job>| -> Result<()> {
            for f in files {
                match &f {
                    Job::File(f) => allow.allow_parts(&f.path, &f.parts),
                    Job::Users { path, .. } => allow.allow(path),
                }
                match f {
                    Job::File(f) if f.late => late.lock().expect("late files").push(Job::File(f)),
                    f => tx.send(f).map_err(|_| anyhow!(STOPPED))?,
                }
            }
            Ok(())
        };
        let parsed = stream_chunks(
            files,
            plan,
            PACED_READ_AHEAD,
            arrivals,
            &pool,
            &read,
            &bar,
            parse_chunk,
            |chunk| {
                if failed.load(Ordering::SeqCst) {
                    bail!(STOPPED);
                }
                resolver.consume(chunk)?;
                let files = resolver.sink.take_ready();
                load_bar.set_length(resolver.sink.rows_written());
                let lines = resolver.total.lines;
                let secs = pass2_started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!("{lines} lines ({:.0}/s)", lines as f64 / secs));
                send(files.into_iter().map(Job::File).collect(), &file_tx)
            },
        );
        let finished = parsed.and_then(|_| {
            let files = resolver.sink.finish()?;
            load_bar.set_length(resolver.sink.rows_written());
            // The users rows are final once every line is read: they load
            // alongside the last partitions, in their place by size.
            let mut jobs: Vec<Job> = files.into_iter().map(Job::File).collect();
            if let Some(users) = write_users(plan, resolver.snap, &before)? {
                let at = jobs.iter().position(|j| j.rows() < users.rows());
                jobs.insert(at.unwrap_or(jobs.len()), users);
            }
            send(jobs, &file_tx)
        });
        finish_bar(&bar, &finished);
        drop(file_tx);
        let mut result = joined(finished, loaders)?;
        // Rows that came late for partitions already loaded, once every
        // partition's own file is in, largest first. Their cost is random
        // reads in partitions larger than the buffer pool more than server
        // work, so more sessions wait for them side by side: on the 2 GB
        // export 3.9 s on 2 sessions, 2.9 on 4, 2.5 on 8.
        let mut late = std::mem::take(&mut *late.lock().expect("late files"));
        late.sort_by_key(|f: &Job| std::cmp::Reverse(f.rows()));
        if result.is_ok() && !late.is_empty() {
            let (tx, rx) = bounded::<Job>(late.len());
            for f in late {
                tx.send(f).map_err(|_| anyhow!(STOPPED))?;
            }
            drop(tx);
            let first = plan.load_sessions;
            result = joined(result, spawn_sessions(first..first + LATE_SESSIONS, rx))?;
        }
        result
    });
    finish_bar(&load_bar, &pass2);
    pass2?;
    // A killed run's last statement can still create a staging table on
    // the server after this run dropped those left behind.
    load::drop_stages(conn)?;
    resolver.rejects.finish()?;
    let accounting = resolver.total.clone();
    let revisions = std::mem::take(&mut resolver.revisions);
    let rejects_file = resolver.rejects.path().map(|p| p.to_owned());
    drop(resolver);
    debug_assert!(accounting.balances());

    // Keys (users are loaded), then the bookkeeping.
    load_keys(conn, &allow, plan, &snap)?;
    let import_id = record_import(
        conn,
        plan,
        &accounting,
        &revisions,
        rejects_file.as_deref(),
        started,
    )?;
    state.commit(&mut snap, &revisions, import_id)?;
    Ok(ImportResult {
        accounting,
        revisions: revisions.iter().map(|r| r.0).collect(),
        rejects_file,
        import_id: Some(import_id),
        resumed: false,
    })
}

/// `result`, or the first error of the load sessions; an error itself
/// when a session panicked.
fn joined(
    result: Result<()>,
    sessions: Vec<thread::ScopedJoinHandle<'_, Result<()>>>,
) -> Result<Result<()>> {
    sessions.into_iter().try_fold(result, |result, session| {
        let r = session
            .join()
            .map_err(|_| anyhow!("a load session panicked"))?;
        Ok(first_error(result, r))
    })
}

fn finish_bar<T>(bar: &Bar, result: &Result<T>) {
    match result {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
}

/// Keeps the error that caused the others.
fn first_error(a: Result<()>, b: Result<()>) -> Result<()> {
    match (a, b) {
        (Err(a), Err(b)) if a.to_string() == STOPPED => Err(b),
        (Err(a), _) => Err(a),
        (Ok(()), b) => b,
    }
}

/// Reads `files` in order (up to `2 × jobs` at once, each keeping
/// `chunks_ahead` chunks ready, see [`source::for_each_chunk_in_order`]),
/// maps chunks with `parse` on the pool (batches keep input order), and
/// hands results to `consume` on the calling thread's helper, in order.
#[allow(clippy::too_many_arguments)]
fn stream_chunks<T, P, C>(
    files: &[RevisionFile],
    plan: &ImportPlan,
    chunks_ahead: usize,
    arrivals: &Arrivals,
    pool: &rayon::ThreadPool,
    read: &AtomicU64,
    bar: &Bar,
    parse: P,
    consume: C,
) -> Result<()>
where
    T: Send,
    P: Fn(Chunk) -> T + Sync,
    C: FnMut(T) -> Result<()> + Send,
{
    stream_chunks_with(
        files,
        plan.chunk_size,
        plan.jobs,
        chunks_ahead,
        arrivals,
        pool,
        read,
        bar,
        parse,
        consume,
    )
}

#[allow(clippy::too_many_arguments)]
fn stream_chunks_with<T, P, C>(
    files: &[RevisionFile],
    chunk_size: usize,
    jobs: usize,
    chunks_ahead: usize,
    arrivals: &Arrivals,
    pool: &rayon::ThreadPool,
    read: &AtomicU64,
    bar: &Bar,
    parse: P,
    mut consume: C,
) -> Result<()>
where
    T: Send,
    P: Fn(Chunk) -> T + Sync,
    C: FnMut(T) -> Result<()> + Send,
{
    let batch = jobs.max(1) * 2;
    thread::scope(|s| {
        let (chunk_tx, chunk_rx) = bounded::<Chunk>(batch * 2);
        let reader = s.spawn(move || -> Result<()> {
            let ahead = jobs * 2;
            source::for_each_chunk_in_order(
                files,
                ahead,
                chunks_ahead,
                chunk_size,
                arrivals,
                read,
                |c| chunk_tx.send(c).map_err(|_| anyhow!(STOPPED)),
            )
        });
        let (out_tx, out_rx) = bounded::<Vec<T>>(1);
        let consumer = s.spawn(move || -> Result<()> {
            for results in out_rx {
                for r in results {
                    consume(r)?;
                }
            }
            Ok(())
        });
        let parsing = (|| -> Result<()> {
            while let Some(chunks) = next_batch(&chunk_rx, batch) {
                let results: Vec<T> = pool.install(|| chunks.into_par_iter().map(&parse).collect());
                bar.set(read.load(Ordering::Relaxed));
                out_tx.send(results).map_err(|_| anyhow!(STOPPED))?;
            }
            Ok(())
        })();
        drop(out_tx);
        drop(chunk_rx);
        let consumed = consumer
            .join()
            .map_err(|_| anyhow!("the row writer panicked"))?;
        let reading = reader
            .join()
            .map_err(|_| anyhow!("the file reader panicked"))?;
        bar.set(read.load(Ordering::Relaxed));
        first_error(first_error(consumed, reading), parsing)
    })
}

/// Up to `n` chunks: waits for the first, takes what is ready up to `n`.
fn next_batch(rx: &Receiver<Chunk>, n: usize) -> Option<Vec<Chunk>> {
    let first = rx.recv().ok()?;
    let mut out = vec![first];
    while out.len() < n {
        match rx.recv() {
            Ok(c) => out.push(c),
            Err(_) => break,
        }
    }
    Some(out)
}

/// One load session: loads files as they come, deleting each once loaded.
fn load_files(
    plan: &ImportPlan,
    allow: &Arc<InfileAllowlist>,
    session: usize,
    locks: &load::PartitionLocks,
    rx: Receiver<Job>,
    loaded: &AtomicU64,
    bar: &Bar,
) -> Result<()> {
    let conn = db::connect(&plan.database, Some(allow.clone()))?;
    let mut loader = load::Loader::new(conn, session, locks, plan.staging)?;
    for job in rx {
        let file = match job {
            Job::File(file) => file,
            Job::Users { path, .. } => {
                loader.replace("users", USERS_COLUMNS, &path)?;
                allow.revoke(&path);
                std::fs::remove_file(&path).ok();
                continue;
            }
        };
        loader.load(&file)?;
        allow.revoke(&file.path);
        if !plan.keep_tsv {
            for part in &file.parts {
                std::fs::remove_file(part).ok();
            }
        }
        loaded.fetch_add(file.rows, Ordering::Relaxed);
        bar.inc(file.rows);
    }
    loader.finish()
}

/// Refuses a state store that belongs to another database, or an empty
/// state store for a database that already holds imported rows.
fn check_token(conn: &mut Conn, state: &StateStore) -> Result<()> {
    let db_token = schema::token(conn)?;
    match state.meta("database_token")? {
        Some(t) if t == db_token => {
            // The rows of the imports the state store remembers must still be
            // there: their accounting row is the witness.
            if let Some(last) = state.meta("last_import_id")? {
                let found: Option<u64> =
                    conn.exec_first("SELECT id FROM kmdb_imports WHERE id = ?", (last.as_str(),))?;
                if found.is_none() {
                    bail!(
                        "the database lost the imports state store {} remembers (import #{last} is not \
                         in kmdb_imports): it was emptied behind kmdb's back; start over with \
                         `kmdb flush --yes`",
                        state.path().display()
                    );
                }
            }
            Ok(())
        }
        Some(_) => bail!(
            "state store {} belongs to another database, or this database was flushed or \
             recreated without it: use the state file of this database, or start over with \
             `kmdb flush --yes` (which empties the data tables and this state store)",
            state.path().display()
        ),
        None => {
            let rows: Option<u64> = conn.query_first("SELECT COUNT(*) FROM kmdb_imports")?;
            if rows.unwrap_or(0) > 0 || state.identity_count()? > 0 {
                bail!(
                    "state store {} is new but the database already holds imported data: \
                     pass the state file it was loaded with (--state), or start over with \
                     `kmdb flush --yes`",
                    state.path().display()
                );
            }
            state.set_meta("database_token", &db_token)
        }
    }
}

/// Re-points and deletes rows of earlier imports (SPEC §4, §5).
/// Deletes what an interrupted import may have loaded: the rows of its
/// revisions (ids `revision << 40 ..`) and the users and keys numbered after
/// the state store's. Committed rows it re-pointed are re-pointed again by
/// this run's catch-up, as identity numbers do not depend on the filters.
fn remove_uncommitted(conn: &mut Conn, revisions: &[u64], snap: &Snapshot) -> Result<()> {
    let ranges: Vec<String> = revisions
        .iter()
        .map(|&r| {
            format!(
                "id BETWEEN {} AND {}",
                resolve::row_id(r, 0),
                resolve::row_id(r + 1, 0) - 1
            )
        })
        .collect();
    for table in Table::ALL {
        conn.query_drop(format!(
            "DELETE FROM {} WHERE {}",
            table.name(),
            ranges.join(" OR ")
        ))
        .with_context(|| {
            format!(
                "removing the interrupted import's rows from {}",
                table.name()
            )
        })?;
    }
    conn.exec_drop(
        "DELETE FROM users WHERE id > ?",
        (snap.identities.len() as u64,),
    )
    .context("removing the interrupted import's users")?;
    conn.exec_drop("DELETE FROM `keys` WHERE id > ?", (snap.keys.len() as u64,))
        .context("removing the interrupted import's keys")?;
    Ok(())
}

fn apply_catchup(conn: &mut Conn, c: &Catchup, snap: &mut Snapshot) -> Result<()> {
    if !c.drop_users.is_empty() {
        // Identities named only by an alias with an ignored identity (one
        // that was not applied) lose their reason to be a user too. Found
        // before the aliases go, so that a re-run after a crash finds them.
        let dropped: HashSet<&str> = c.drop_names.iter().map(String::as_str).collect();
        let mut partners: HashSet<String> = HashSet::new();
        for part in c.drop_names.chunks(500) {
            let marks = vec!["?"; part.len()].join(",");
            let params: Vec<mysql::Value> =
                part.iter().chain(part).map(|n| n.as_str().into()).collect();
            let rows: Vec<(String, String)> = conn
                .exec(format!("SELECT name1, name2 FROM aliases WHERE name1 IN ({marks}) OR name2 IN ({marks})"), params)
                .context("finding aliases of ignored users")?;
            for (a, b) in rows {
                partners.extend([a, b].into_iter().filter(|n| !dropped.contains(n.as_str())));
            }
        }
        for name in partners {
            let Some(id) = snap.identities.get(&name) else {
                continue;
            };
            let user = id as u64 + 1;
            let used: Option<u8> = conn.exec_first(
                "SELECT 1 FROM DUAL WHERE EXISTS(SELECT 1 FROM events WHERE user_id = ?)
                 OR EXISTS(SELECT 1 FROM properties WHERE user_id = ?)",
                (user, user),
            )?;
            let aliases: Vec<(String, String)> = conn.exec(
                "SELECT name1, name2 FROM aliases WHERE name1 = ? OR name2 = ?",
                (&name, &name),
            )?;
            let named = aliases.iter().any(|(a, b)| {
                let other = if *a == name { b } else { a };
                !dropped.contains(other.as_str())
            });
            if used.is_none() && !named {
                conn.exec_drop("DELETE FROM users WHERE id = ?", (user,))?;
                if let Some(s) = snap.stored.get_mut(id as usize) {
                    *s = false;
                }
            }
        }
        let ids: Vec<u64> = c.drop_users.iter().copied().collect();
        for part in ids.chunks(1000) {
            let list = part
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            for table in ["events", "properties"] {
                conn.query_drop(format!("DELETE FROM {table} WHERE user_id IN ({list})"))
                    .with_context(|| format!("deleting rows of ignored users from {table}"))?;
            }
        }
        for part in c.drop_names.chunks(500) {
            let marks = vec!["?"; part.len()].join(",");
            let params: Vec<mysql::Value> = part.iter().map(|n| n.as_str().into()).collect();
            conn.exec_drop(
                format!("DELETE FROM users WHERE name IN ({marks})"),
                params.clone(),
            )
            .context("deleting ignored users")?;
            let both: Vec<mysql::Value> = params.iter().chain(params.iter()).cloned().collect();
            conn.exec_drop(
                format!("DELETE FROM aliases WHERE name1 IN ({marks}) OR name2 IN ({marks})"),
                both,
            )
            .context("deleting aliases of ignored users")?;
        }
        // Names only those rows used leave the dictionary, as if never seen;
        // `load_keys` puts back any this import uses again.
        conn.query_drop(
            "DELETE FROM `keys` WHERE id NOT IN (SELECT DISTINCT n FROM events)
             AND id NOT IN (SELECT DISTINCT `key` FROM properties)",
        )
        .context("pruning unused keys")?;
    }
    if !c.remap.is_empty() {
        conn.query_drop("CREATE TEMPORARY TABLE IF NOT EXISTS kmdb_remap (old_id BIGINT PRIMARY KEY, new_id BIGINT NOT NULL)")?;
        conn.query_drop("TRUNCATE TABLE kmdb_remap")?;
        let pairs: Vec<(u64, u64)> = c.remap.iter().map(|(&a, &b)| (a, b)).collect();
        for part in pairs.chunks(1000) {
            let values = part
                .iter()
                .map(|(a, b)| format!("({a},{b})"))
                .collect::<Vec<_>>()
                .join(",");
            conn.query_drop(format!("INSERT INTO kmdb_remap VALUES {values}"))?;
        }
        for table in ["events", "properties"] {
            conn.query_drop(format!(
                "UPDATE {table} x JOIN kmdb_remap r ON x.user_id = r.old_id SET x.user_id = r.new_id"
            ))
            .with_context(|| format!("re-pointing merged users' rows in {table}"))?;
        }
    }
    Ok(())
}

/// Loads `rows` (already escaped TSV lines) into `table` with REPLACE.
fn load_rows(
    conn: &mut Conn,
    allow: &InfileAllowlist,
    plan: &ImportPlan,
    table: &str,
    columns: &str,
    rows: &[u8],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let path = plan.work_dir.join(format!("{table}.tsv"));
    std::fs::write(&path, rows).with_context(|| format!("writing {}", path.display()))?;
    allow.allow(&path);
    let sql = load::load_sql(&path, table, "", columns, "REPLACE");
    let r = load::run_load(conn, &sql, &path);
    allow.revoke(&path);
    std::fs::remove_file(&path).ok();
    r.map(|_| ())
}

fn load_keys(
    conn: &mut Conn,
    allow: &InfileAllowlist,
    plan: &ImportPlan,
    snap: &Snapshot,
) -> Result<()> {
    let mut rows = Vec::new();
    for (id, s) in snap.keys.touched() {
        key_line(&mut rows, id, s);
    }
    load_rows(conn, allow, plan, "keys", "id, string", &rows)
}

/// What a load session loads.
enum Job {
    /// A TSV file of a partitioned table.
    File(TsvFile),
    /// The `users` rows of the import (see [`write_users`]).
    Users { path: PathBuf, rows: u64 },
}

impl Job {
    fn rows(&self) -> u64 {
        match self {
            Job::File(f) => f.rows,
            Job::Users { rows, .. } => *rows,
        }
    }
}

const USERS_COLUMNS: &str = "id, name, alias_of";

/// Writes the `users` rows that are new or whose canonical changed to a
/// file for a load session; `None` when there are none.
fn write_users(plan: &ImportPlan, snap: &mut Snapshot, before: &[Ident]) -> Result<Option<Job>> {
    let mut rows = Vec::new();
    let mut count = 0;
    for i in 0..snap.stored.len() {
        if !snap.stored[i] {
            continue;
        }
        let id = i as Ident;
        let canon = snap.identities.canonical(id);
        let dirty = i >= before.len()
            || !snap.saved_stored.get(i).copied().unwrap_or(false)
            || before[i] != canon;
        if !dirty {
            continue;
        }
        count += 1;
        let alias_of = (canon != id).then_some(canon as u64 + 1);
        user_line(&mut rows, i as u64 + 1, snap.identities.name(id), alias_of);
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let path = plan.work_dir.join("users.tsv");
    std::fs::write(&path, rows).with_context(|| format!("writing {}", path.display()))?;
    Ok(Some(Job::Users { path, rows: count }))
}

fn record_import(
    conn: &mut Conn,
    plan: &ImportPlan,
    a: &Accounting,
    revisions: &[(u64, u64)],
    rejects: Option<&std::path::Path>,
    started: Instant,
) -> Result<u64> {
    let revs = match (revisions.first(), revisions.last()) {
        (Some(f), Some(l)) if f.0 == l.0 => f.0.to_string(),
        (Some(f), Some(l)) => format!("{}-{}", f.0, l.0),
        _ => String::new(),
    };
    let secs = started.elapsed().as_secs();
    let r = &a.rejected;
    conn.exec_drop(
        format!(
            "INSERT INTO kmdb_imports(started_at, finished_at, source, revisions, `lines`, blank, events,
               property_sets, aliases, rejected_bad_timestamp, rejected_empty, rejected_ignored_user,
               rejected_malformed, rejected_no_identity, rejected_not_whitelisted,
               rejected_numeric_alias, rejected_self_alias, rejects_file)
             VALUES(UTC_TIMESTAMP() - INTERVAL {secs} SECOND, UTC_TIMESTAMP(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        mysql::Params::Positional(vec![
            plan.source.to_string().into(),
            revs.into(),
            a.lines.into(),
            a.blank.into(),
            a.events.into(),
            a.property_sets.into(),
            a.aliases.into(),
            r[0].into(),
            r[1].into(),
            r[2].into(),
            r[3].into(),
            r[4].into(),
            r[5].into(),
            r[6].into(),
            r[7].into(),
            rejects.map(|p| p.display().to_string()).into(),
        ]),
    )
    .context("recording the import in kmdb_imports")?;
    Ok(conn.last_insert_id())
}

/// What `parse_only` measured.
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
    jobs: usize,
    chunk_size: usize,
    progress: &Progress,
) -> Result<ParseStats> {
    let files = source::local::list(dir)?.files;
    let plan_jobs = jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan_jobs)
        .build()
        .context("starting worker threads")?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = progress.bytes("parse", total);
    let read = AtomicU64::new(0);
    let arrivals = Arrivals::all_ready();
    let started = Instant::now();
    let mut stats = ParseStats {
        files: files.len(),
        ..Default::default()
    };
    // Count in the workers, so the single consumer does no work of its own.
    let count = |chunk: Chunk| {
        let bytes = chunk.bytes().len() as u64;
        let parsed = parse_chunk(chunk);
        let records = parsed
            .outcomes
            .iter()
            .filter(|o| matches!(o, resolve::Outcome::Record(_)))
            .count() as u64;
        (bytes, parsed.outcomes.len() as u64, records)
    };
    let r = stream_chunks_with(
        &files,
        chunk_size,
        plan_jobs,
        FAST_READ_AHEAD,
        &arrivals,
        &pool,
        &read,
        &bar,
        count,
        |(b, l, r)| {
            stats.bytes += b;
            stats.lines += l;
            stats.records += r;
            Ok(())
        },
    );
    finish_bar(&bar, &r);
    r?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}
