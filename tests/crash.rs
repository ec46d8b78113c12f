//! Crashes and faults lose nothing (SPEC §7): `kill -9` at many moments of an
//! import, a failure between loading the rows and committing the state
//! store, the server stopping mid-import, state stores that do not belong to
//! the database, damaged or missing revision files and a full work
//! directory. After each, a re-run must give exactly the database of one
//! clean run.
//!
//! `cargo test --test crash -- --nocapture` prints every kill point and the
//! stage it hit. The MariaDB outage test stops the shared server, so it is
//! ignored by default: `cargo test --test crash -- --ignored mariadb_stopped`.

mod util;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::*;

/// A database name of this test process: two runs of these tests at once on
/// one server (two people, or CI and a developer) must not drop each
/// other's databases.
fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// The script that stops and starts the test server: `scripts/dev-db.sh`, or
/// `KMDB_TEST_DEV_DB_SCRIPT` (a copy of it elsewhere runs a second server,
/// e.g. with `KMDB_DEV_DB_PORT=33307`, to try the outage test without
/// disturbing the shared one).
fn dev_db_script() -> String {
    std::env::var("KMDB_TEST_DEV_DB_SCRIPT").unwrap_or_else(|_| {
        let script = if on_postgres() {
            "pg-db.sh"
        } else {
            "dev-db.sh"
        };
        format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"))
    })
}

// ---------------------------------------------------------------------------
// Helpers

/// A generated export: its directory and the byte size of each revision.
struct Export {
    dir: PathBuf,
    /// `(revision, bytes on disk)`, in revision order.
    files: Vec<(u64, u64)>,
}

impl Export {
    fn generate(s: &Scratch, name: &str, lines: u64, seed: u64, file_size: &str) -> Export {
        let dir = s.join(name);
        Kmdb::new(None, s.path())
            .args(["generate", "--out"])
            .arg_path(&dir)
            .args([
                "--lines",
                &lines.to_string(),
                "--seed",
                &seed.to_string(),
                "--gzip-every",
                "3",
                "--file-size",
                file_size,
                "-q",
            ])
            .ok();
        let mut files: Vec<(u64, u64)> = std::fs::read_dir(dir.join("revisions"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let rev: u64 = name.split('.').next().unwrap().parse().unwrap();
                (rev, e.metadata().unwrap().len())
            })
            .collect();
        files.sort();
        assert!(files.len() >= 3, "want several revisions, got {files:?}");
        Export { dir, files }
    }

    fn path_of(&self, revision: u64) -> PathBuf {
        let revs = self.dir.join("revisions");
        let plain = revs.join(format!("{revision}.json"));
        if plain.exists() {
            plain
        } else {
            revs.join(format!("{revision}.json.gz"))
        }
    }

    fn last(&self) -> u64 {
        self.files.last().unwrap().0
    }

    /// Share of the export's bytes in revisions `(after, upto]`.
    fn share(&self, after: u64, upto: Option<u64>) -> f64 {
        let total: u64 = self.files.iter().map(|f| f.1).sum();
        let part: u64 = self
            .files
            .iter()
            .filter(|f| f.0 > after && upto.is_none_or(|u| f.0 <= u))
            .map(|f| f.1)
            .sum();
        part as f64 / total as f64
    }
}

/// Everything in a database that an import writes, by names (users' and
/// keys' ids may differ between import orders): the harness fingerprint
/// plus every row of every table in full, the list of tables (no staging
/// leftovers) and references that lead nowhere.
fn digest(db: &TestDb) -> BTreeMap<String, String> {
    let mut d = db.fingerprint();
    for (name, sql) in [
        (
            "keys_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CAST(string AS BINARY))),0)) FROM `keys`",
        ),
        (
            "users_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', CAST(u.name AS BINARY), \
             COALESCE(CAST(c.name AS BINARY), '-')))),0)) FROM users u LEFT JOIN users c ON c.id = u.alias_of",
        ),
        (
            "aliases_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', id, t, CAST(name1 AS BINARY), \
             CAST(name2 AS BINARY), applied))),0)) FROM aliases",
        ),
        (
            "events_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', e.id, e.t, \
             COALESCE(CAST(k.string AS BINARY), '?'), COALESCE(CAST(u.name AS BINARY), '?')))),0)) \
             FROM events e LEFT JOIN `keys` k ON k.id = e.n LEFT JOIN users u ON u.id = e.user_id",
        ),
        (
            "properties_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', p.id, p.t, \
             COALESCE(CAST(k.string AS BINARY), '?'), CAST(p.value AS BINARY), \
             COALESCE(CAST(u.name AS BINARY), '?'), COALESCE(p.event_id, '-')))),0)) \
             FROM properties p LEFT JOIN `keys` k ON k.id = p.`key` LEFT JOIN users u ON u.id = p.user_id",
        ),
        (
            "rows_of_non_canonical_users",
            "SELECT (SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.alias_of IS NOT NULL) \
             + (SELECT COUNT(*) FROM properties p JOIN users u ON u.id = p.user_id WHERE u.alias_of IS NOT NULL)",
        ),
        (
            "dangling_references",
            "SELECT (SELECT COUNT(*) FROM events e LEFT JOIN users u ON u.id = e.user_id WHERE u.id IS NULL) \
             + (SELECT COUNT(*) FROM properties p LEFT JOIN users u ON u.id = p.user_id WHERE u.id IS NULL) \
             + (SELECT COUNT(*) FROM events e LEFT JOIN `keys` k ON k.id = e.n WHERE k.id IS NULL) \
             + (SELECT COUNT(*) FROM properties p LEFT JOIN `keys` k ON k.id = p.`key` WHERE k.id IS NULL) \
             + (SELECT COUNT(*) FROM users u LEFT JOIN users c ON c.id = u.alias_of \
                WHERE u.alias_of IS NOT NULL AND c.id IS NULL)",
        ),
        (
            "tables",
            "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables \
             WHERE table_schema = DATABASE()",
        ),
    ] {
        d.insert(name.into(), db.query_digest(sql));
    }
    d
}

/// The keys whose values differ, for assertion messages.
fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, va) in a {
        let vb = b.get(k).map(String::as_str).unwrap_or("<missing>");
        if va != vb {
            out.push_str(&format!("  {k}: clean {va} vs {vb}\n"));
        }
    }
    out
}

fn assert_same(reference: &BTreeMap<String, String>, db: &TestDb, what: &str) {
    let got = digest(db);
    assert!(
        &got == reference,
        "{what}: database differs from the clean run:\n{}",
        diff(reference, &got)
    );
    assert_eq!(got["rows_of_non_canonical_users"], "0", "{what}");
    assert_eq!(got["dangling_references"], "0", "{what}");
}

/// `kmdb import` as a child process, set up by `Kmdb` (clean environment).
fn import_command(db: &TestDb, cwd: &Path, args: &[String]) -> Command {
    Kmdb::new(Some(db), cwd)
        .args(["import"])
        .args(args)
        .command()
}

/// Arguments of one import of `export` with its own state store and work dir.
fn import_args(export: &Export, state: &Path, work: &Path, max: Option<u64>) -> Vec<String> {
    let mut args = vec![
        export.dir.display().to_string(),
        "--state".into(),
        state.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
    ];
    if let Some(m) = max {
        args.push("--max-revision".into());
        args.push(m.to_string());
    }
    args
}

/// Runs `kmdb import -q` to completion.
fn run_quiet(db: &TestDb, cwd: &Path, args: &[String]) -> Output {
    import_command(db, cwd, args)
        .arg("-q")
        .output()
        .expect("run kmdb")
}

/// Runs to completion, asserting success; returns stdout.
fn run_ok(db: &TestDb, cwd: &Path, args: &[String]) -> String {
    let out = run_quiet(db, cwd, args);
    assert!(
        out.status.success(),
        "kmdb import {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One clean import of all of `export` into `db`, with the state store
/// `{tag}.sqlite` and the work dir `{tag}-work`: the digest of the result
/// (the reference of a test) and how long the import took.
fn clean_run(
    db: TestDb,
    s: &Scratch,
    export: &Export,
    tag: &str,
) -> (BTreeMap<String, String>, Duration) {
    let state = s.join(&format!("{tag}.sqlite"));
    let work = s.join(&format!("{tag}-work"));
    let t0 = Instant::now();
    run_ok(&db, s.path(), &import_args(export, &state, &work, None));
    let took = t0.elapsed();
    (digest(&db), took)
}

/// The digest of a clean run of `export` into a fresh database `name`.
fn reference_of(s: &Scratch, export: &Export, name: &str) -> BTreeMap<String, String> {
    clean_run(prepared_db(&unique(name), s), s, export, "ref").0
}

/// `kmdb flush --yes` of `db` and the state store `state`.
fn flush(db: &TestDb, cwd: &Path, state: &Path) {
    Kmdb::new(Some(db), cwd)
        .args(["flush", "--yes", "--state"])
        .arg_path(state)
        .ok();
}

/// Empties the tables an import writes, by hand (behind kmdb's back).
fn truncate_data_tables(db: &TestDb) {
    for t in [
        "events",
        "properties",
        "aliases",
        "users",
        "keys",
        "kmdb_imports",
    ] {
        db.exec(&format!("TRUNCATE TABLE `{t}`"));
    }
}

/// What one SIGKILL hit.
struct Killed {
    /// Still running when killed (else it had already finished).
    hit: bool,
    /// Its last line on stderr (plain progress lines: stderr is a pipe).
    last_line: String,
}

/// Spawns an import, SIGKILLs it after `delay` (unless it finished first).
fn kill_after(db: &TestDb, cwd: &Path, args: &[String], delay: Duration) -> Killed {
    let mut child: Child = import_command(db, cwd, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kmdb");
    let started = Instant::now();
    let mut finished = None;
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().unwrap() {
            finished = Some(status);
            break;
        }
        let left = delay.saturating_sub(started.elapsed());
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    if finished.is_none() {
        child.kill().expect("SIGKILL kmdb");
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    if let Some(status) = finished {
        assert!(status.success(), "import failed before the kill:\n{stderr}");
    }
    let last_line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(nothing on stderr yet)")
        .trim()
        .to_owned();
    let _ = status;
    Killed {
        hit: finished.is_none(),
        last_line,
    }
}

fn remove_state(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::remove_file(PathBuf::from(p)).ok();
    }
}

/// What a killed import was doing, from its last plain progress line (each
/// stage prints a line when it is done, and every 5 s meanwhile).
fn stage_of(last_line: &str) -> &'static str {
    if last_line.starts_with("(nothing") {
        "start (connect, schema, state store, listing)"
    } else if last_line.starts_with("KM says") || last_line.starts_with("importing") {
        "pass 1 (aliases)"
    } else if last_line.starts_with("aliases:") {
        if last_line.contains(" done") {
            "catch-up / pass 2 (rows, loads)"
        } else {
            "pass 1 (aliases)"
        }
    } else if last_line.starts_with("rows:") {
        if last_line.contains(" done") {
            "last loads"
        } else {
            "pass 2 (rows, loads)"
        }
    } else if last_line.starts_with("load:") {
        if last_line.contains(" done") {
            "keys, users, kmdb_imports, state commit"
        } else {
            "pass 2 (rows, loads)"
        }
    } else if last_line.starts_with("nothing to import") {
        "finished"
    } else {
        "?"
    }
}

// ---------------------------------------------------------------------------
// kill -9

/// One import killed at 24 moments spread over its run (stacking up to four
/// kills on one import before letting a re-run finish it; more cycles if
/// fewer than 20 land in a running import), in four cycles
/// that each end equal to the clean run: a backfill, and incremental imports
/// (`--max-revision`) so that the kills also hit imports on top of earlier
/// ones (catch-up of merged groups, loads into non-empty partitions).
#[test]
fn sigkill_at_many_moments_then_rerun_equals_clean_run() {
    let test_started = Instant::now();
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 150_000, 11, "2MB");
    let last = export.last();

    // The reference: one clean run.
    let (reference, clean) = clean_run(prepared_db(&unique("crash_kill_a"), &s), &s, &export, "a");
    println!(
        "clean run of {} revisions: {:.1} s",
        export.files.len(),
        clean.as_secs_f64()
    );

    let b = prepared_db(&unique("crash_kill_b"), &s);
    let state = s.join("b.sqlite");
    let work = s.join("b-work");
    // Cycles of (max revision of the import, kills before letting it finish).
    let m = |x: u64| Some(x.min(last));
    let cycles: Vec<Vec<(Option<u64>, usize)>> = vec![
        vec![(None, 5)],
        vec![(m(2), 3), (m(5), 3), (None, 3)],
        vec![(m(4), 4), (None, 4)],
        vec![(m(last - 2), 3), (None, 3)],
    ];
    let mut cycles = cycles;
    let mut k = 0usize;
    let mut hits = 0usize;
    let mut full_run = clean.as_secs_f64();
    let mut log = Vec::new();
    let mut c = 0;
    while c < cycles.len() {
        let cycle = cycles[c].clone();
        if c > 0 {
            flush(&b, s.path(), &state);
        }
        let mut done = 0u64;
        for &(max, kills) in &cycle {
            let args = import_args(&export, &state, &work, max);
            // Expected duration of this import: a fixed start plus its share
            // of the clean run.
            let share = export.share(done, max);
            let expect = 0.2 + full_run * share;
            for _ in 0..kills {
                // Spread the kill points over [0, 0.95) of the expected run
                // (golden-ratio sequence), a few right at the start.
                let frac = if k % 7 == 0 {
                    0.005 * (k / 7) as f64
                } else {
                    (k as f64 * 0.618_034).fract() * 0.95
                };
                let delay = Duration::from_secs_f64(frac * expect);
                let killed = kill_after(&b, s.path(), &args, delay);
                k += 1;
                let line = format!(
                    "kill {k:>2}: cycle {} import --max-revision {:<3} after {:>5.2} s ({:>2.0}%): {:<12} \
                     | events rows now {:>6} | stage: {} [{}]",
                    c + 1,
                    max.map_or("all".to_string(), |m| m.to_string()),
                    delay.as_secs_f64(),
                    frac * 100.0,
                    if killed.hit { "killed" } else { "had finished" },
                    b.count("events"),
                    stage_of(&killed.last_line),
                    killed.last_line
                );
                println!("{line}");
                log.push(line);
                if !killed.hit {
                    // Done already: the other kills of this step would hit
                    // an import with nothing to do. Aim earlier from now on.
                    full_run *= 0.7;
                    break;
                }
                hits += 1;
            }
            // The re-run finishes the import; its duration calibrates the
            // next kill points (the server may be busier or idler than
            // during the clean run).
            let t = Instant::now();
            run_ok(&b, s.path(), &args);
            if share > 0.2 {
                full_run = (full_run + t.elapsed().as_secs_f64() / share) / 2.0;
            }
            done = max.unwrap_or(last);
        }
        let got = digest(&b);
        assert!(
            got == reference,
            "after cycle {} ({hits} kills so far) the database differs from the clean run:\n{}\nkills:\n{}",
            c + 1,
            diff(&reference, &got),
            log.join("\n")
        );
        // Imports faster than the clean run said leave kills unspent: more
        // cycles, aimed by the calibration so far, until 20 have landed.
        if c + 1 == cycles.len() && hits < 20 && cycles.len() < 8 {
            cycles.push(vec![(m(last / 2), 3), (None, 3)]);
        }
        c += 1;
    }
    let planned: usize = cycles.iter().flatten().map(|c| c.1).sum();
    assert!(
        hits >= 20,
        "only {hits} of {planned} planned kills hit a running import (the imports were faster \
         than the clean run said):\n{}",
        log.join("\n")
    );
    assert_same(&reference, &b, "after all cycles");
    let leftovers = std::fs::read_dir(work.join("tsv"))
        .map(|d| d.count())
        .unwrap_or(0);
    println!(
        "{hits} kills survived in {:.0} s; TSV files left in the work dir by killed runs: {leftovers}",
        test_started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Interrupted between loading the rows and committing the state store

/// A trigger that makes the INSERT into `kmdb_imports` fail: the import
/// stops after its rows, keys and users are in MySQL but before the state
/// store commits — the same as `kill -9` at that moment, but every time.
fn fail_before_commit(db: &TestDb) {
    db.fail_inserts_into_imports("simulated crash before the state commit");
}

/// The export of the interrupted imports.
fn interrupted_export(s: &Scratch, name: &str) -> Export {
    Export::generate(s, name, 30_000, 5, "600KB")
}

fn interrupted_then_rerun(test: &str, first_max: u64, rerun_max: Option<u64>) {
    interrupted_then_rerun_with(test, first_max, rerun_max, None)
}

/// As above; `filter` `(table, name)` is in place for the whole clean run,
/// but added to the interrupted database only after the interruption.
fn interrupted_then_rerun_with(
    test: &str,
    first_max: u64,
    rerun_max: Option<u64>,
    filter: Option<(&str, String)>,
) {
    let s = Scratch::new();
    let export = interrupted_export(&s, "export");
    let a = prepared_db(&unique(&format!("{test}_a")), &s);
    let add_filter = |db: &TestDb| {
        if let Some((table, name)) = &filter {
            db.insert_name(table, name);
        }
    };
    add_filter(&a);
    let (reference, _) = clean_run(a, &s, &export, "a");

    let b = prepared_db(&unique(&format!("{test}_b")), &s);
    let (state, work) = (s.join("b.sqlite"), s.join("b-work"));
    fail_before_commit(&b);
    let out = run_quiet(
        &b,
        s.path(),
        &import_args(&export, &state, &work, Some(first_max)),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("simulated crash"), "{stderr}");
    assert!(b.count("events") > 0, "the interrupted import loaded rows");
    b.stop_failing_inserts();
    add_filter(&b);

    // The next import, then whatever is left.
    run_ok(
        &b,
        s.path(),
        &import_args(&export, &state, &work, rerun_max),
    );
    if rerun_max.is_some() {
        run_ok(&b, s.path(), &import_args(&export, &state, &work, None));
    }
    assert_same(&reference, &b, test);
}

/// The re-run redoes the same revisions: same identities, same ids.
#[test]
fn interrupted_before_commit_then_same_rerun_equals_clean_run() {
    interrupted_then_rerun("crash_commit_same", 2, Some(2));
}

/// The usual case of a nightly `kmdb import s3://bucket` after a crash: KM
/// has added revisions meanwhile, so the re-run covers more than the
/// interrupted one did. Rows the interrupted run loaded carry the user and
/// key ids of *its* numbering and canonicals; the re-run skips them by their
/// `(t, id)` key, so they must still end up right.
#[test]
fn interrupted_before_commit_then_wider_rerun_equals_clean_run() {
    interrupted_then_rerun("crash_commit_wider", 2, None);
}

/// An identity of the first line of revision 1 of the export of the
/// interrupted imports, and its event name.
fn first_line_names() -> (String, String) {
    use sonic_rs::JsonValueTrait;
    let s = Scratch::new();
    let export = interrupted_export(&s, "probe");
    let text = std::fs::read_to_string(export.dir.join("revisions/1.json")).unwrap();
    for line in text.lines() {
        let Ok(v) = sonic_rs::from_str::<sonic_rs::Value>(line) else {
            continue;
        };
        if let (Some(p), Some(n)) = (
            v.get("_p").and_then(|p| p.as_str().map(str::to_owned)),
            v.get("_n").and_then(|n| n.as_str().map(str::to_owned)),
        ) {
            if !p.is_empty() && !n.is_empty() {
                return (p, n);
            }
        }
    }
    panic!("no event in revision 1");
}

/// Filters may change between a crash and the re-run (the README: filters
/// apply to the rows imported from then on — and the interrupted import
/// imported nothing). Rows the interrupted run loaded for a user ignored
/// since, or with the user ids of a numbering the new filter shifts, must
/// not survive the re-run.
#[test]
fn interrupted_then_ignored_user_added_then_rerun_equals_clean_run() {
    let (user, _) = first_line_names();
    interrupted_then_rerun_with(
        "crash_commit_ignored",
        2,
        Some(2),
        Some(("ignored_users", user)),
    );
}

#[test]
fn interrupted_then_whitelist_added_then_rerun_equals_clean_run() {
    let (_, event) = first_line_names();
    interrupted_then_rerun_with(
        "crash_commit_whitelist",
        2,
        Some(2),
        Some(("whitelisted_events", event)),
    );
}

// ---------------------------------------------------------------------------
// MariaDB stops mid-import

fn dev_db(action: &str) {
    let out = Command::new(dev_db_script())
        .arg(action)
        .output()
        .expect("run dev-db.sh");
    assert!(
        out.status.success(),
        "dev-db.sh {action}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether an import with the work directory `work` has written a batch
/// file (in its run's directory under `tsv/`).
fn has_batch_file(work: &Path) -> bool {
    files_under(&work.join("tsv"))
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "tsv"))
}

/// Starts the server again however the test ends.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(dev_db_script()).arg("start").output();
    }
}

#[test]
#[ignore = "stops the shared MariaDB, which breaks every other test running meanwhile: \
            run alone with `cargo test --test crash -- --ignored mariadb_stopped`"]
/// (With `KMDB_TEST_TARGET=postgres`, the PostgreSQL of scripts/pg-db.sh.)
fn mariadb_stopped_mid_import_then_rerun_completes() {
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 150_000, 13, "2MB");
    let (reference, _) = clean_run(prepared_db(&unique("crash_outage_a"), &s), &s, &export, "a");

    // The script must drive the server the tests use, and no other.
    let script_url = Command::new(dev_db_script()).arg("url").output().unwrap();
    let script_url = String::from_utf8_lossy(&script_url.stdout)
        .trim()
        .to_string();
    let server = |u: &str| kmdb::db::DatabaseUrl::parse(u).unwrap().server();
    assert_eq!(
        server(&script_url),
        server(&base_url()),
        "{} serves another server than KMDB_TEST_DATABASE_URL",
        dev_db_script()
    );

    let b = prepared_db(&unique("crash_outage_b"), &s);
    let args = import_args(&export, &s.join("b.sqlite"), &s.join("b-work"), None);
    let mut child = import_command(&b, s.path(), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-import: once its first batch file is written (not after a share
    // of the clean run's time, which the other outage test, running at the
    // same time, makes unreliable).
    let restart = RestartOnDrop;
    let started = Instant::now();
    while !has_batch_file(&s.join("b-work")) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before the server could be stopped"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no batch file after 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopped_at = Instant::now();
    dev_db("stop");
    // kmdb must notice and exit, not hang.
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if stopped_at.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            panic!("kmdb still running 120 s after the server stopped");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    println!(
        "kmdb exited {status} {:.1} s after the server stopped:\n{stderr}",
        stopped_at.elapsed().as_secs_f64()
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("kmdb: error:"), "{stderr}");
    assert!(!stderr.contains("kmdb-dev-pw"), "{stderr}");
    if on_postgres() {
        assert!(
            stderr.contains("lost the connection to the PostgreSQL server while ")
                && stderr.contains("run the same `kmdb import` again: it resumes"),
            "{stderr}"
        );
    }
    // Checked after the re-run, which matters more.
    let lower = stderr.to_lowercase();
    let says_server = ["server", "connect", "mysql", "connection"]
        .iter()
        .any(|w| lower.contains(w));

    dev_db("start");
    drop(restart);
    run_ok(&b, s.path(), &args);
    assert_same(&reference, &b, "after the outage and a re-run");
    assert!(
        says_server,
        "the re-run completed equal to a clean run, but the message should say that the \
         connection to the server was lost (and that re-running resumes):\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// State store faults

fn small_export(s: &Scratch) -> Export {
    Export::generate(s, "export", 8_000, 3, "300KB")
}

/// A small export whose revisions 1..2 are imported into a fresh database
/// (state store `st.sqlite`, work dir `w`): the start of state store tests.
struct Imported {
    s: Scratch,
    export: Export,
    db: TestDb,
    state: PathBuf,
    work: PathBuf,
}

impl Imported {
    fn first_two(name: &str) -> Imported {
        let s = Scratch::new();
        let export = small_export(&s);
        let db = prepared_db(&unique(name), &s);
        let state = s.join("st.sqlite");
        let work = s.join("w");
        run_ok(&db, s.path(), &import_args(&export, &state, &work, Some(2)));
        Imported {
            s,
            export,
            db,
            state,
            work,
        }
    }
}

fn import_fails(db: &TestDb, cwd: &Path, args: &[String]) -> String {
    let out = run_quiet(db, cwd, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected exit 1:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("kmdb: error:"), "{stderr}");
    println!("{}", stderr.trim());
    stderr
}

#[test]
fn a_state_store_of_another_database_is_refused() {
    let s = Scratch::new();
    let export = small_export(&s);
    let x = prepared_db(&unique("crash_state_other_x"), &s);
    let y = prepared_db(&unique("crash_state_other_y"), &s);
    let state = s.join("x.sqlite");
    run_ok(
        &x,
        s.path(),
        &import_args(&export, &state, &s.join("w"), Some(2)),
    );
    let before = digest(&y);
    let err = import_fails(
        &y,
        s.path(),
        &import_args(&export, &state, &s.join("w"), None),
    );
    assert!(err.contains("belongs to another database"), "{err}");
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("kmdb flush --yes"), "{err}");
    assert_eq!(digest(&y), before, "the refused import changed nothing");
    // And X still imports the rest with it.
    run_ok(
        &x,
        s.path(),
        &import_args(&export, &state, &s.join("w"), None),
    );
}

#[test]
fn a_deleted_state_store_is_refused_then_flush_starts_over() {
    let Imported {
        s,
        export,
        db,
        state,
        work,
    } = Imported::first_two("crash_state_deleted");
    let before = digest(&db);
    remove_state(&state);
    let err = import_fails(&db, s.path(), &import_args(&export, &state, &work, None));
    assert!(
        err.contains("the database already holds imported data"),
        "{err}"
    );
    assert!(err.contains("--state"), "{err}");
    assert_eq!(digest(&db), before, "the refused import changed nothing");
    // A state store that is new but not empty (identities, no token) too.
    // The way out the message gives works and yields the clean result.
    flush(&db, s.path(), &state);
    run_ok(&db, s.path(), &import_args(&export, &state, &work, None));
    let reference_db = prepared_db(&unique("crash_state_deleted_ref"), &s);
    run_ok(
        &reference_db,
        s.path(),
        &import_args(&export, &s.join("ref.sqlite"), &work, None),
    );
    assert_same(&digest(&reference_db), &db, "flush and re-import");
}

#[test]
fn a_database_flushed_behind_kmdbs_back_is_refused() {
    let Imported {
        s,
        export,
        db,
        state,
        work,
    } = Imported::first_two("crash_state_flushed");

    // Emptied by hand, with a new token.
    truncate_data_tables(&db);
    db.exec("UPDATE kmdb_meta SET value = 'x' WHERE name = 'token'");
    let err = import_fails(&db, s.path(), &import_args(&export, &state, &work, None));
    assert!(
        err.contains("this database was flushed or recreated"),
        "{err}"
    );
    assert_eq!(db.count("events"), 0);

    // Dropped and set up again.
    db.recreate();
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    let err = import_fails(&db, s.path(), &import_args(&export, &state, &work, None));
    assert!(
        err.contains("belongs to another database, or this database was flushed or recreated"),
        "{err}"
    );
}

/// The data tables emptied by hand but the token left alone: the state
/// store says revisions 1..2 are imported while the database holds none of
/// their rows. Silently importing only 3.. would lose them; kmdb must refuse.
#[test]
fn a_database_emptied_behind_kmdbs_back_with_its_token_is_refused() {
    let Imported {
        s,
        export,
        db,
        state,
        work,
    } = Imported::first_two("crash_state_emptied");
    truncate_data_tables(&db);
    let out = run_quiet(&db, s.path(), &import_args(&export, &state, &work, None));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kmdb imported revisions 3.. on top of a database that lost the rows of 1..2 \
         (the state store still lists them as imported); {} events now, stderr:\n{stderr}",
        db.count("events")
    );
}

// ---------------------------------------------------------------------------
// Damaged and missing files, full work directory

#[test]
fn a_truncated_gzip_revision_is_named_and_a_rerun_after_repair_equals_clean() {
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 20_000, 9, "500KB");
    let (reference, _) = clean_run(prepared_db(&unique("crash_gz_ref"), &s), &s, &export, "ref");

    let gz = export.path_of(3);
    assert!(
        gz.to_string_lossy().ends_with(".json.gz"),
        "{}",
        gz.display()
    );
    let good = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &good[..good.len() / 2]).unwrap();
    let db = prepared_db(&unique("crash_gz"), &s);
    let args = import_args(&export, &s.join("st.sqlite"), &s.join("w"), None);
    let err = import_fails(&db, s.path(), &args);
    assert!(err.contains(&gz.display().to_string()), "{err}");
    assert!(err.contains("truncated"), "{err}");
    // Bytes that are not gzip at all, after a good header.
    let mut bad = good[..20].to_vec();
    bad.extend(std::iter::repeat_n(0xA5u8, 5000));
    std::fs::write(&gz, &bad).unwrap();
    let err = import_fails(&db, s.path(), &args);
    assert!(err.contains(&gz.display().to_string()), "{err}");

    std::fs::write(&gz, &good).unwrap();
    run_ok(&db, s.path(), &args);
    assert_same(&reference, &db, "after repairing the gzip file");
}

#[test]
fn a_revision_that_is_not_a_readable_file_is_named() {
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 12_000, 4, "300KB");
    let db = prepared_db(&unique("crash_unreadable"), &s);
    let args = import_args(&export, &s.join("st.sqlite"), &s.join("w"), None);
    let victim = export.path_of(2);
    let saved = std::fs::read(&victim).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();

    let mut seen = Vec::new();
    // A directory named like a revision, then a dangling symlink: each time
    // revision 2 is not readable and must not be skipped silently.
    for kind in ["directory", "dangling symlink"] {
        std::fs::remove_file(&victim).ok();
        std::fs::remove_dir_all(&victim).ok();
        match kind {
            "directory" => std::fs::create_dir(&victim).unwrap(),
            _ => std::os::unix::fs::symlink(s.join("nowhere.json"), &victim).unwrap(),
        }
        let out = run_quiet(&db, s.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        seen.push(format!(
            "{kind}: exit {:?}, events loaded {}: {}",
            out.status.code(),
            db.count("events"),
            stderr.trim()
        ));
    }
    std::fs::remove_file(&victim).ok();
    std::fs::remove_dir_all(&victim).ok();
    std::fs::write(&victim, &saved).unwrap();
    println!("{}", seen.join("\n"));
    for line in &seen {
        assert!(
            line.contains("exit Some(1)") && line.contains(&name),
            "a revision file that cannot be read must fail the import with its name, \
             not be skipped (revision 2 would be lost, and marked imported):\n{}",
            seen.join("\n")
        );
    }
}

/// Unmounts a tmpfs however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_work_directory_is_named_and_a_rerun_elsewhere_equals_clean() {
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 30_000, 8, "1MB");
    let small = s.join("small-work");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1M", "tmpfs"])
        .arg(&small)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "SKIPPED: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("SKIPPED: cannot run mount: {e}");
            return;
        }
    }
    let _mount = Mount(small.clone());
    // Fill it so that even small files cannot be written.
    let _ = std::fs::write(small.join("filler"), vec![0u8; 1 << 20]);

    let reference = reference_of(&s, &export, "crash_fullwork_ref");

    let db = prepared_db(&unique("crash_fullwork"), &s);
    let state = s.join("st.sqlite");
    let err = import_fails(&db, s.path(), &import_args(&export, &state, &small, None));
    assert!(err.contains(&small.display().to_string()), "{err}");
    assert!(
        err.contains("No space left on device") || err.contains("space"),
        "{err}"
    );
    run_ok(
        &db,
        s.path(),
        &import_args(&export, &state, &s.join("w"), None),
    );
    assert_same(&reference, &db, "after a full work directory");
}

/// A revision file that is a symlink to a good file (exports assembled from
/// several places) is imported like the file itself, not skipped.
#[test]
fn a_symlinked_revision_file_is_imported() {
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 12_000, 6, "300KB");
    let reference = reference_of(&s, &export, "crash_symlink_ref");

    // Same export, revision 2 a symlink into a directory elsewhere.
    let linked = Export {
        dir: s.join("linked"),
        files: export.files.clone(),
    };
    let revs = linked.dir.join("revisions");
    std::fs::create_dir_all(&revs).unwrap();
    let elsewhere = s.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for &(rev, _) in &export.files {
        let src = export.path_of(rev);
        let name = src.file_name().unwrap().to_owned();
        if rev == 2 {
            std::fs::copy(&src, elsewhere.join(&name)).unwrap();
            std::os::unix::fs::symlink(elsewhere.join(&name), revs.join(&name)).unwrap();
        } else {
            std::fs::copy(&src, revs.join(&name)).unwrap();
        }
    }
    let db = prepared_db(&unique("crash_symlink"), &s);
    let out = run_ok(
        &db,
        s.path(),
        &import_args(&linked, &s.join("st.sqlite"), &s.join("w"), None),
    );
    assert!(
        out.contains(&format!("imported revisions 1 .. {}", export.last())),
        "{out}"
    );
    let got = digest(&db);
    assert!(
        got == reference,
        "revision 2 (a symlink) was not imported like the file it points to:\n{}\nstdout:\n{out}",
        diff(&reference, &got)
    );
}

// ---------------------------------------------------------------------------
// Staging tables

/// Empty partitions are filled through staging tables and `EXCHANGE
/// PARTITION`, as soon as the revisions have moved past them; their later
/// rows (stragglers) go straight into the filled partition. The result
/// equals straight loads only, a staging table left by an interrupted run is
/// dropped first, none is left behind, and the partitions have statistics.
#[test]
fn staged_loads_equal_straight_loads() {
    // MySQL's staging tables and their statistics.
    mysql_only!();
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 60_000, 21, "3MB");
    let straight = prepared_db(&unique("crash_stage_straight"), &s);
    let mut args = import_args(&export, &s.join("a.sqlite"), &s.join("a"), None);
    args.push("--no-staging".into());
    run_ok(&straight, s.path(), &args);

    let staged = prepared_db(&unique("crash_stage_staged"), &s);
    staged.exec("CREATE TABLE kmdb_stage_events_0 (junk INT)");
    staged.exec("INSERT INTO kmdb_stage_events_0 VALUES (1)");
    let mut args = import_args(&export, &s.join("b.sqlite"), &s.join("b"), None);
    args.extend(["--batch-mb".into(), "1".into()]);
    run_ok(&staged, s.path(), &args);

    assert!(
        straight.count("properties") > 100_000,
        "enough rows for several files"
    );
    assert_eq!(digest(&staged), digest(&straight));
    let stages_left = || -> u64 {
        use mysql::prelude::Queryable;
        staged
            .conn()
            .query_first(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name LIKE 'kmdb\\_stage%'",
            )
            .unwrap()
            .unwrap()
    };
    assert_eq!(stages_left(), 0, "staging tables left behind");
    // A killed run's last statement can create its staging table on the
    // server after the next run began; any later run, even one with
    // nothing to import, drops it.
    staged.exec("CREATE TABLE kmdb_stage_properties_0 LIKE properties");
    run_ok(&staged, s.path(), &args);
    assert_eq!(stages_left(), 0, "a killed run's staging table left behind");

    // The staging tables never recalculate their statistics by themselves,
    // yet every partition has them: the optimizer's row estimates are close
    // to the counts.
    for table in ["events", "properties"] {
        let rows: Vec<(String, u64)> = {
            use mysql::prelude::Queryable;
            staged
                .conn()
                .exec(
                    "SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (table,),
                )
                .unwrap()
        };
        for (partition, estimate) in rows {
            let count: u64 = staged
                .query_string(&format!(
                    "SELECT COUNT(*) FROM {table} PARTITION ({partition})"
                ))
                .parse()
                .unwrap();
            if count >= 1000 {
                assert!(
                    estimate * 2 >= count && estimate <= count * 2,
                    "{table} {partition}: {count} rows, estimated {estimate}"
                );
            }
        }
    }
}

/// A database user allowed to write rows but not to create tables imports
/// the same rows: the staging tables it cannot create are skipped and every
/// file loads straight into its partition.
#[test]
fn a_user_who_cannot_create_tables_loads_straight() {
    // MySQL's staging tables; PostgreSQL's loads need no table of their own.
    mysql_only!();
    use mysql::prelude::Queryable;
    let s = Scratch::new();
    let export = Export::generate(&s, "export", 20_000, 23, "1MB");
    let reference = reference_of(&s, &export, "crash_grants_ref");

    let db = prepared_db(&unique("crash_grants"), &s);
    let user = unique("kmdb_rows_only");
    let mut admin = db.conn();
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'rows-only-pw'; \
             GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES \
             ON `{}`.* TO '{user}'@'%'",
            db.name
        ))
        .unwrap();
    let (_, server) = db.url.rsplit_once('@').unwrap();
    let url = format!("mysql://{user}:rows-only-pw@{server}");
    let args = import_args(&export, &s.join("st.sqlite"), &s.join("w"), None);
    let out = Kmdb::new(Some(&db), s.path())
        .env("DATABASE_URL", &url)
        .args(["import", "-q"])
        .args(&args)
        .output();
    admin.query_drop(format!("DROP USER '{user}'@'%'")).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(digest(&db), reference);
}
