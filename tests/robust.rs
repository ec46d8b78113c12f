//! The state store must match the database, one import runs at a time, and
//! an interrupted import stops cleanly and resumes: a state store that is not
//! the latest is refused, rows a killed run left that no state store
//! committed are removed before a fresh state store loads, a second import
//! is turned away naming the first, a failed state commit leaves one
//! `kmdb_imports` row, state store errors name the file, empty revision
//! files count as imported, the default state file follows the database,
//! and Ctrl-C stops with exit 130 and a word on how to resume.

mod util;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::*;

/// A database name of this test process (two test runs on one server must
/// not drop each other's databases).
fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// `kmdb generate` into `s/name`: `lines` lines, several revisions, some gzip.
fn generate(s: &Scratch, name: &str, lines: u64, seed: u64, file_size: &str) -> PathBuf {
    let dir = s.join(name);
    Kmdb::new(None, s.path())
        .args(["generate", "--out"])
        .arg_path(&dir)
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string()])
        .args(["--gzip-every", "3", "--file-size", file_size, "-q"])
        .ok();
    dir
}

/// Every row an import writes, by names (user and key ids may differ
/// between import orders), plus the references that lead nowhere and the
/// tables present (no staging table left).
fn digest(db: &TestDb) -> BTreeMap<String, String> {
    let mut d = db.fingerprint();
    for (name, sql) in [
        (
            "users_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', CAST(u.name AS BINARY), \
             COALESCE(CAST(c.name AS BINARY), '-')))),0)) FROM users u LEFT JOIN users c ON c.id = u.alias_of",
        ),
        (
            "keys_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CAST(string AS BINARY))),0)) FROM `keys`",
        ),
        (
            "aliases_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', id, t, \
             CAST(name1 AS BINARY), CAST(name2 AS BINARY), applied))),0)) FROM aliases",
        ),
        (
            "events_rows",
            "SELECT CONCAT(COUNT(*), '/', COALESCE(SUM(CRC32(CONCAT_WS('|', e.id, e.t, \
             COALESCE(CAST(k.string AS BINARY), '?'), COALESCE(CAST(u.name AS BINARY), '?')))),0)) \
             FROM events e LEFT JOIN `keys` k ON k.id = e.n LEFT JOIN users u ON u.id = e.user_id",
        ),
        (
            "dangling_references",
            "SELECT (SELECT COUNT(*) FROM events e LEFT JOIN users u ON u.id = e.user_id WHERE u.id IS NULL) \
             + (SELECT COUNT(*) FROM properties p LEFT JOIN users u ON u.id = p.user_id WHERE u.id IS NULL) \
             + (SELECT COUNT(*) FROM users u LEFT JOIN users c ON c.id = u.alias_of \
                WHERE u.alias_of IS NOT NULL AND c.id IS NULL)",
        ),
        (
            "rows_of_non_canonical_users",
            "SELECT (SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.alias_of IS NOT NULL) \
             + (SELECT COUNT(*) FROM properties p JOIN users u ON u.id = p.user_id WHERE u.alias_of IS NOT NULL)",
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

fn assert_same(reference: &BTreeMap<String, String>, db: &TestDb, what: &str) {
    let got = digest(db);
    let mut diff = String::new();
    for (k, v) in reference {
        let g = got.get(k).map(String::as_str).unwrap_or("<missing>");
        if v != g {
            diff.push_str(&format!("  {k}: clean {v} vs {g}\n"));
        }
    }
    assert!(diff.is_empty(), "{what}: differs from a clean run:\n{diff}");
    assert_eq!(got["dangling_references"], "0", "{what}");
}

/// `kmdb import EXPORT --state STATE --work-dir WORK [extra] -q`.
fn import_cmd(db: &TestDb, s: &Scratch, export: &Path, state: &Path, extra: &[&str]) -> Kmdb {
    Kmdb::new(Some(db), s.path())
        .args(["import", "-q"])
        .arg_path(export)
        .args(["--state"])
        .arg_path(state)
        .args(["--work-dir"])
        .arg_path(&s.join("work"))
        .args(extra)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs an import that must succeed; its output.
fn import_ok(db: &TestDb, s: &Scratch, export: &Path, state: &Path, extra: &[&str]) -> Output {
    let out = import_cmd(db, s, export, state, extra).output();
    assert!(
        out.status.success(),
        "kmdb import failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs an import that must fail with exit 1 and a message; its stderr.
fn import_refused(db: &TestDb, s: &Scratch, export: &Path, state: &Path) -> String {
    let out = import_cmd(db, s, export, state, &[]).output();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1:\n{stderr}");
    assert!(stderr.starts_with("kmdb: error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The digest of one clean import of `export` into a fresh database (with
/// a work directory of its own).
fn reference(s: &Scratch, export: &Path, name: &str) -> BTreeMap<String, String> {
    let db = prepared_db(&unique(name), s);
    Kmdb::new(Some(&db), s.path())
        .args(["import", "-q"])
        .arg_path(export)
        .args(["--state"])
        .arg_path(&s.join(&format!("{name}.sqlite")))
        .args(["--work-dir"])
        .arg_path(&s.join(&format!("{name}-work")))
        .ok();
    digest(&db)
}

/// Makes the INSERT into `kmdb_imports` fail: the import stops with every
/// row loaded but nothing recorded, like `kill -9` at that moment.
fn fail_before_record(db: &TestDb) {
    db.fail_inserts_into_imports("simulated crash before the import is recorded");
}

/// An import of `export` with state store `state` that loads its rows and
/// then dies before recording itself.
fn killed_after_loading(db: &TestDb, s: &Scratch, export: &Path, state: &Path) {
    fail_before_record(db);
    let out = import_cmd(db, s, export, state, &[]).output();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("simulated crash"));
    db.stop_failing_inserts();
    assert!(db.count("events") > 0, "the killed import loaded rows");
    assert_eq!(db.count("kmdb_imports"), 0);
}

fn copy_state(from: &Path, to: &Path) {
    for ext in ["-wal", "-shm"] {
        assert!(!with_suffix(from, ext).exists(), "state store still open");
    }
    std::fs::copy(from, to).unwrap();
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

// ---------------------------------------------------------------------------
// A. The state store must be the database's latest

/// A first import killed after loading its rows, then an import with a new,
/// empty state store: the killed run's rows carry the user ids of its own
/// numbering, which the new store gives to other people. They must go
/// before the new store loads.
#[test]
fn a_fresh_state_store_after_a_killed_first_import_equals_a_clean_run() {
    let s = Scratch::new();
    let export = generate(&s, "export", 40_000, 31, "700KB");
    let clean = reference(&s, &export, "robust_fresh_ref");

    let db = prepared_db(&unique("robust_fresh"), &s);
    killed_after_loading(&db, &s, &export, &s.join("first.sqlite"));
    // In two imports, the new state store numbers users otherwise.
    let second = s.join("second.sqlite");
    let out = import_ok(&db, &s, &export, &second, &["--max-revision", "3"]);
    import_ok(&db, &s, &export, &second, &[]);
    assert_same(&clean, &db, "a new state store after a killed first import");
    assert_eq!(db.count("kmdb_imports"), 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("removing the rows it loaded"),
        "the removal is announced:\n{stderr}"
    );
}

/// A killed import, another state store importing everything, then the
/// first state store again: it must be refused (it would resume an import
/// the database no longer holds), and the database stay whole.
#[test]
fn the_state_store_of_a_killed_import_is_refused_once_another_committed() {
    let s = Scratch::new();
    let export = generate(&s, "export", 30_000, 32, "600KB");
    let clean = reference(&s, &export, "robust_superseded_ref");

    let db = prepared_db(&unique("robust_superseded"), &s);
    let (first, second) = (s.join("first.sqlite"), s.join("second.sqlite"));
    killed_after_loading(&db, &s, &export, &first);
    import_ok(&db, &s, &export, &second, &[]);
    assert_same(&clean, &db, "the second state store");

    let err = import_refused(&db, &s, &export, &first);
    assert!(err.contains(&first.display().to_string()), "{err}");
    assert!(err.contains(&second.display().to_string()), "{err}");
    assert!(err.contains("kmdb flush --yes"), "{err}");
    assert_same(&clean, &db, "after the refusal");
    // The right state store still imports (nothing left to do).
    import_ok(&db, &s, &export, &second, &[]);
    assert_same(&clean, &db, "after the latest state store ran again");
}

/// A state store restored from a copy older than the database: it would
/// import again revisions the database holds, under other user ids.
#[test]
fn an_older_copy_of_the_state_store_is_refused() {
    let s = Scratch::new();
    let export = generate(&s, "export", 30_000, 33, "600KB");
    let clean = reference(&s, &export, "robust_old_copy_ref");

    let db = prepared_db(&unique("robust_old_copy"), &s);
    let state = s.join("st.sqlite");
    import_ok(&db, &s, &export, &state, &["--max-revision", "2"]);
    copy_state(&state, &s.join("saved.sqlite"));
    import_ok(&db, &s, &export, &state, &[]);
    let latest = std::fs::read(&state).unwrap();
    std::fs::copy(s.join("saved.sqlite"), &state).unwrap();

    let err = import_refused(&db, &s, &export, &state);
    assert!(err.contains("not the latest"), "{err}");
    assert!(err.contains("restore the latest state store"), "{err}");
    assert!(err.contains("kmdb flush --yes"), "{err}");
    assert_same(&clean, &db, "after the refusal");

    // Restoring the latest copy works, as the message says.
    std::fs::write(&state, latest).unwrap();
    import_ok(&db, &s, &export, &state, &[]);
    assert_same(&clean, &db, "with the latest state store restored");
}

/// A database and a state store from before the database recorded state
/// store generations and the import in flight (the state store kept the
/// in-flight revisions then): an import interrupted under the old version
/// is finished by the new one, and the old imports count as committed.
#[test]
fn an_import_interrupted_before_the_upgrade_is_finished_after_it() {
    let s = Scratch::new();
    let export = generate(&s, "export", 30_000, 39, "600KB");
    let clean = reference(&s, &export, "robust_upgrade_ref");

    let db = prepared_db(&unique("robust_upgrade"), &s);
    let state = s.join("st.sqlite");
    import_ok(&db, &s, &export, &state, &["--max-revision", "2"]);
    fail_before_record(&db);
    import_refused(&db, &s, &export, &state);
    db.stop_failing_inserts();
    // What the former version left: no generation anywhere, no marker in
    // the database, the revisions in flight in the state store.
    let in_flight = db.query_string("SELECT revisions FROM kmdb_loading");
    assert!(in_flight.starts_with("3,4"), "{in_flight}");
    db.exec("DELETE FROM kmdb_loading");
    db.exec("UPDATE kmdb_imports SET state_generation = 'legacy', state_store = NULL, host = NULL");
    let store = rusqlite::Connection::open(&state).unwrap();
    store
        .execute(
            "INSERT INTO meta(key, value) VALUES('in_flight', ?1)",
            [&in_flight],
        )
        .unwrap();
    store
        .execute("DELETE FROM meta WHERE key = 'generation'", [])
        .unwrap();
    drop(store);

    let out = import_ok(&db, &s, &export, &state, &[]);
    assert!(
        text(&out.stderr).is_empty(),
        "quiet, no warning: {}",
        text(&out.stderr)
    );
    assert_same(&clean, &db, "after the upgrade");
    assert_eq!(
        db.query_string("SELECT COUNT(*) FROM kmdb_imports WHERE state_generation = 'legacy'"),
        "0",
        "the old import is now the state store's"
    );
    import_ok(&db, &s, &export, &state, &[]);
    assert_same(&clean, &db, "once more");
}

// ---------------------------------------------------------------------------
// B. One import at a time

/// Starts `kmdb import` and waits until it holds the database's import
/// lock (its run is named in `kmdb_lock_holder`).
fn start_import(db: &TestDb, s: &Scratch, export: &Path, state: &Path) -> Child {
    let mut child = import_cmd(db, s, export, state, &[])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid = child.id().to_string();
    loop {
        let holder = db.query_string("SELECT COALESCE(MAX(pid), 0) FROM kmdb_lock_holder");
        if holder == pid {
            return child;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it was seen running"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_ok(mut child: Child) {
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
}

/// Two imports into one database at once, with other state files or the
/// same one: the second is turned away, naming the first, and touches
/// nothing; the first ends as a clean run does. `kmdb flush` too.
#[test]
fn a_second_import_at_once_is_turned_away_naming_the_first() {
    let s = Scratch::new();
    let export = generate(&s, "export", 150_000, 34, "2MB");
    let clean = reference(&s, &export, "robust_twice_ref");
    let host = Command::new("hostname").output().unwrap();
    let host = text(&host.stdout).trim().to_owned();

    let db = prepared_db(&unique("robust_twice"), &s);
    let state = s.join("st.sqlite");
    let first = start_import(&db, &s, &export, &state);
    let pid = first.id();
    let other = s.join("other.sqlite");
    for (what, kmdb) in [
        (
            "import, another state file",
            import_cmd(&db, &s, &export, &other, &[]),
        ),
        (
            "import, the same state file",
            import_cmd(&db, &s, &export, &state, &[]),
        ),
        (
            "flush",
            Kmdb::new(Some(&db), s.path())
                .args(["flush", "--yes", "--state"])
                .arg_path(&other),
        ),
    ] {
        let out = kmdb.output();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains("another kmdb import is running"),
            "{what}: {err}"
        );
        assert!(err.contains(&format!("pid {pid}")), "{what}: {err}");
        assert!(err.contains(&host), "{what}: {err}");
        assert!(err.contains(" since "), "{what}: {err}");
        assert!(!other.exists(), "{what}: a state file was left behind");
    }
    wait_ok(first);
    assert_same(&clean, &db, "the first import");
    assert!(
        !with_suffix(&state, ".lock").exists(),
        "the lock file stays"
    );
}

/// On PostgreSQL, a run killed between taking the import lock and naming
/// itself in `kmdb_lock_holder` leaves no row, and its session ends at once:
/// the next run, told the lock is taken, takes it once it is free rather
/// than failing on "an unknown host".
#[test]
fn a_lock_taken_by_no_named_run_is_taken_once_free() {
    if !on_postgres() {
        return; // MySQL's GET_LOCK names no holder: nothing to wait for.
    }
    let s = Scratch::new();
    let export = generate(&s, "export", 2_000, 36, "500KB");
    let db = prepared_db(&unique("robust_nameless"), &s);
    // kmdb's key, "kmdb" and 1, held by a session that names no run.
    let mut holder = db.pg();
    holder
        .execute("SELECT pg_advisory_lock(1802331234, 1)", &[])
        .unwrap();
    let state = s.join("st.sqlite");
    let mut child = import_cmd(&db, &s, &export, &state, &[])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Released once the import, refused the lock, looks for its holder.
    let started = Instant::now();
    while db.query_string(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE application_name = 'kmdb' AND query LIKE '%FROM kmdb_lock_holder h%'",
    ) == "0"
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it looked for the lock's holder"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(holder);
    wait_ok(child);
    assert_eq!(db.query_string("SELECT COUNT(*) FROM kmdb_imports"), "1");
    let events = db.count("events");
    assert!(events > 0);
    assert_eq!(
        db.query_string("SELECT events FROM kmdb_imports"),
        events.to_string()
    );
}

// ---------------------------------------------------------------------------
// C. Bookkeeping

/// A state commit that fails (as on a full disk) leaves its `kmdb_imports`
/// row; the re-run must rewrite that row, not add a second one.
#[test]
fn a_failed_state_commit_leaves_one_row_per_import() {
    let s = Scratch::new();
    let export = generate(&s, "export", 20_000, 35, "500KB");
    let clean_db = prepared_db(&unique("robust_one_row_ref"), &s);
    let clean_state = s.join("clean.sqlite");
    import_ok(
        &clean_db,
        &s,
        &export,
        &clean_state,
        &["--max-revision", "2"],
    );
    import_ok(&clean_db, &s, &export, &clean_state, &[]);

    let db = prepared_db(&unique("robust_one_row"), &s);
    let state = s.join("st.sqlite");
    import_ok(&db, &s, &export, &state, &["--max-revision", "2"]);
    let store = rusqlite::Connection::open(&state).unwrap();
    store
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON revisions BEGIN \
             SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    drop(store);
    let err = import_refused(&db, &s, &export, &state);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert_eq!(
        db.count("kmdb_imports"),
        2,
        "the failed try recorded itself"
    );
    let store = rusqlite::Connection::open(&state).unwrap();
    store.execute_batch("DROP TRIGGER full").unwrap();
    drop(store);
    import_ok(&db, &s, &export, &state, &[]);

    let accounting = "SELECT COUNT(*), SUM(`lines`), SUM(events), SUM(aliases), \
                      SUM(rejected_malformed) FROM kmdb_imports";
    let rows = |d: &TestDb| {
        let r: Vec<u64> = d.rows(accounting)[0]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        (r[0], r[1], r[2], r[3], r[4])
    };
    assert_eq!(rows(&db), rows(&clean_db));
    assert_eq!(rows(&db).0, 2);
    assert_eq!(digest(&db), digest(&clean_db));
}

/// Unmounts a tmpfs however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A directory on a tmpfs of `size`; `None` (and a line saying so) where
/// tmpfs cannot be mounted.
fn small_disk(dir: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(Mount(dir.to_owned())),
        Ok(o) => {
            println!("SKIPPED: cannot mount a tmpfs: {}", text(&o.stderr).trim());
            None
        }
        Err(e) => {
            println!("SKIPPED: cannot run mount: {e}");
            None
        }
    }
}

/// A state store whose disk is full says which file, whether it is being
/// created or committed to.
#[test]
fn a_full_state_store_disk_is_named() {
    let s = Scratch::new();
    let export = generate(&s, "export", 20_000, 36, "500KB");
    let disk = s.join("disk");
    let Some(_mount) = small_disk(&disk, "2M") else {
        return;
    };
    let db = prepared_db(&unique("robust_state_full"), &s);
    let state = disk.join("st.sqlite");
    import_ok(&db, &s, &export, &state, &["--max-revision", "1"]);
    // Fill what is left: the next commit cannot grow the file.
    let _ = std::fs::write(disk.join("filler"), vec![0u8; 4 << 20]);
    let err = import_refused(&db, &s, &export, &state);
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("full"), "{err}");

    // A new state store on the full disk.
    let db2 = prepared_db(&unique("robust_state_full_new"), &s);
    let state2 = disk.join("new.sqlite");
    let err = import_refused(&db2, &s, &export, &state2);
    assert!(err.contains(&state2.display().to_string()), "{err}");
    assert!(err.contains("full"), "{err}");
    assert_eq!(db2.count("events"), 0);

    // With room again, both finish.
    std::fs::remove_file(disk.join("filler")).unwrap();
    import_ok(&db, &s, &export, &state, &[]);
    import_ok(&db2, &s, &export, &state2, &[]);
    assert_eq!(digest(&db), digest(&db2));
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// An empty revision file (0 bytes, or a gzip of nothing) is imported with
/// 0 lines: later imports neither announce it again nor warn that it came
/// after a newer revision.
#[test]
fn empty_revision_files_are_recorded_as_imported() {
    let s = Scratch::new();
    let db = prepared_db(&unique("robust_empty_rev"), &s);
    let line = |p: &str, t: u64| format!("{{\"_n\":\"visit\",\"_p\":\"{p}\",\"_t\":{t}}}\n");
    let root = s.export(
        "x",
        &[
            (1, &line("a", 1400000000)),
            (2, ""),
            (4, &line("b", 1400000001)),
        ],
    );
    std::fs::write(root.join("revisions/3.json.gz"), gzip("")).unwrap();
    let state = s.join("st.sqlite");
    let out = import_ok(&db, &s, &root, &state, &[]);
    assert!(
        text(&out.stdout).contains("imported revisions 1 .. 4"),
        "{out:?}"
    );
    assert_eq!(text(&out.stderr), "", "no warning on the first import");

    let again = import_ok(&db, &s, &root, &state, &[]);
    assert!(!text(&again.stdout).contains("imported"), "{again:?}");
    assert_eq!(text(&again.stderr), "", "no warning on the second import");
    let status = Kmdb::new(Some(&db), s.path())
        .args(["status", "--state"])
        .arg_path(&state)
        .ok();
    assert!(
        status.contains("4 revision(s) imported (1 .. 4)"),
        "{status}"
    );
    assert_eq!(db.count("events"), 2);
}

// ---------------------------------------------------------------------------
// D. The state file and interruptions

/// The state file `kmdb` creates in `dir` when `--state` is not given.
fn state_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kmdb-state"))
        .collect();
    names.sort();
    names
}

/// Without `--state`, each database gets a state file of its own (named
/// after its host, port and name), so changing `DATABASE_URL` in the same
/// directory neither refuses the import nor mixes the two.
#[test]
fn the_default_state_file_follows_the_database() {
    let s = Scratch::new();
    let export = write_export(
        &s,
        &[(1, vec![r#"{"_n":"visit","_p":"a","_t":1400000000}"#])],
    );
    let (a, b) = (
        prepared_db(&unique("robust_default_a"), &s),
        prepared_db(&unique("robust_default_b"), &s),
    );
    import(&a, &s, &export, &[]);
    import(&b, &s, &export, &[]);
    assert_eq!((a.count("events"), b.count("events")), (1, 1));
    let files = state_files(s.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let port = kmdb::db::DatabaseUrl::parse(&base_url())
        .unwrap()
        .port()
        .unwrap();
    for db in [&a, &b] {
        let name = format!("kmdb-state-127.0.0.1-{port}-{}.sqlite", db.name);
        assert!(files.contains(&name), "{name} not in {files:?}");
        let status = Kmdb::new(Some(db), s.path()).args(["status"]).ok();
        assert!(status.contains(&name), "{status}");
        assert!(status.contains("1 revision(s) imported"), "{status}");
    }
}

/// A start that fails (a missing source, a server that does not answer, a
/// state store refused) leaves no state file behind.
#[test]
fn a_failed_start_leaves_no_state_file() {
    let s = Scratch::new();
    let db = prepared_db(&unique("robust_no_file"), &s);
    let export = write_export(
        &s,
        &[(1, vec![r#"{"_n":"visit","_p":"a","_t":1400000000}"#])],
    );
    let state = s.join("st.sqlite");
    // A missing source: named before anything else is looked at.
    let err = Kmdb::new(Some(&db), s.path())
        .args(["import", "-q", "--state"])
        .arg_path(&state)
        .arg_path(&s.join("nowhere"))
        .fails();
    assert!(err.contains("does not exist"), "{err}");
    // A server that does not answer.
    let err = Kmdb::new(None, s.path())
        .env("DATABASE_URL", "mysql://kmdb:pw@127.0.0.1:1/kmdb")
        .args(["import", "-q", "--state"])
        .arg_path(&state)
        .arg_path(&export)
        .fails();
    assert!(err.contains("cannot connect"), "{err}");
    // A new state store for a database that holds imports.
    import_ok(&db, &s, &export, &s.join("used.sqlite"), &[]);
    let err = import_refused(&db, &s, &export, &state);
    assert!(err.contains("already holds imported data"), "{err}");
    assert!(err.contains(&state.display().to_string()), "{err}");
    let left: Vec<String> = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("st.sqlite"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn rejects_files(work: &Path) -> Vec<PathBuf> {
    files_under(work)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rejects")
        })
        .collect()
}

/// Starts an import (plain progress on stderr) and sends it `signal` once
/// it has written batch files.
fn signal_while_loading(
    db: &TestDb,
    s: &Scratch,
    export: &Path,
    state: &Path,
    signal: i32,
) -> (Option<i32>, String) {
    let mut child = Kmdb::new(Some(db), s.path())
        .args(["import"])
        .arg_path(export)
        .args(["--state"])
        .arg_path(state)
        .args(["--work-dir"])
        .arg_path(&s.join("work"))
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let batches = files_under(&s.join("work/tsv"));
        if batches
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "tsv"))
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: a plain syscall sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let waited = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if waited.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("still running 60 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// Ctrl-C (SIGINT) stops the import cleanly: exit 130, a message saying what
/// stopped and that re-running resumes; `kmdb status` says so too. The
/// re-run tells one story, equals a clean run, and leaves neither batch
/// files nor a partial rejects file behind.
#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_resumes_and_cleans_up() {
    let s = Scratch::new();
    let export = generate(&s, "export", 150_000, 37, "2MB");
    let clean = reference(&s, &export, "robust_ctrl_c_ref");

    let db = prepared_db(&unique("robust_ctrl_c"), &s);
    let state = s.join("st.sqlite");
    let (code, stderr) = signal_while_loading(&db, &s, &export, &state, libc::SIGINT);
    println!("{stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("kmdb: interrupted"), "{stderr}");
    assert!(last.contains("revisions 1 .. 9"), "{stderr}");
    assert!(
        last.contains("run the same `kmdb import` again"),
        "{stderr}"
    );

    let status = Kmdb::new(Some(&db), s.path())
        .args(["status", "--state"])
        .arg_path(&state)
        .ok();
    assert!(status.contains("interrupted"), "{status}");
    assert!(status.contains("revisions 1 .. 9"), "{status}");
    assert!(!status.contains("no import yet"), "{status}");

    // Only revisions 1..4 now: the interrupted import (1..9) is finished
    // first, whatever the range says, and the story is told once.
    let out = Kmdb::new(Some(&db), s.path())
        .args(["import"])
        .arg_path(&export)
        .args(["--state"])
        .arg_path(&state)
        .args(["--work-dir"])
        .arg_path(&s.join("work"))
        .args(["--max-revision", "4"])
        .output();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("finishing the interrupted import of revisions 1 .. 9"),
        "{err}"
    );
    assert!(!err.contains("run again"), "{err}");
    assert_eq!(err.matches("KM says").count(), 1, "{err}");
    assert_same(&clean, &db, "after Ctrl-C and a re-run");
    let left: Vec<PathBuf> = files_under(&s.join("work/tsv"));
    assert!(left.is_empty(), "batch files left: {left:?}");
    let rejects = rejects_files(&s.join("work"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let lines = std::fs::read_to_string(&rejects[0])
        .unwrap()
        .lines()
        .count() as u64;
    let printed = printed_accounting(&text(&out.stdout));
    assert_eq!(lines - 1, printed["rejected"], "the rejects file is whole");
}

/// SIGTERM stops the same way; a SIGKILL leaves files behind, which the
/// next run removes once it has loaded their revisions.
#[test]
fn sigterm_stops_cleanly_and_a_killed_runs_files_go_after_the_rerun() {
    let s = Scratch::new();
    let export = generate(&s, "export", 150_000, 38, "2MB");
    let clean = reference(&s, &export, "robust_sigterm_ref");
    let db = prepared_db(&unique("robust_sigterm"), &s);
    let state = s.join("st.sqlite");
    let (code, stderr) = signal_while_loading(&db, &s, &export, &state, libc::SIGTERM);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("kmdb: interrupted"), "{stderr}");

    let (code, _) = signal_while_loading(&db, &s, &export, &state, libc::SIGKILL);
    assert_eq!(code, None, "killed");
    assert!(!files_under(&s.join("work/tsv")).is_empty());
    import_ok(&db, &s, &export, &state, &[]);
    assert_same(&clean, &db, "after SIGTERM, SIGKILL and a re-run");
    let left = files_under(&s.join("work/tsv"));
    assert!(left.is_empty(), "files left: {left:?}");
    assert_eq!(rejects_files(&s.join("work")).len(), 1);
}
