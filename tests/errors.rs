//! The errors a user sees: exit code 1, a message that says what is wrong
//! and what to do, no panic, and never a password.

mod util;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use mysql::prelude::Queryable;
use util::*;

/// Runs of `kmdb import` take this shared; the test that turns `local_infile`
/// off takes it exclusively, so no import of this binary runs meanwhile.
static LOCAL_INFILE: RwLock<()> = RwLock::new(());

fn infile_shared() -> RwLockReadGuard<'static, ()> {
    LOCAL_INFILE.read().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` (which imports) while `local_infile` is surely on.
fn shared<T>(f: impl FnOnce() -> T) -> T {
    let _guard = infile_shared();
    f()
}

fn fails_shared(k: Kmdb, secrets: &[&str]) -> String {
    shared(|| fails(k, secrets))
}

fn import_shared(db: &TestDb, s: &Scratch, source: &Path, extra: &[&str]) -> String {
    shared(|| import(db, s, source, extra))
}

/// A fresh database with the schema of `kmdb setup` (no partition plan:
/// every row then lands in `pLast`, which the errors here do not mind).
fn setup_db(test: &str, s: &Scratch) -> TestDb {
    let db = TestDb::new(test);
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    db
}

/// The password of the test server's URL, which no message may show.
fn server_password() -> String {
    mysql::Opts::from_url(&base_url())
        .unwrap()
        .get_pass()
        .unwrap_or_default()
        .to_owned()
}

/// `host:port` of the test server.
fn server_address() -> String {
    let o = mysql::Opts::from_url(&base_url()).unwrap();
    format!("{}:{}", o.get_ip_or_hostname(), o.get_tcp_port())
}

/// Runs `kmdb`, expecting exit code 1 with a `kmdb: error:` message, no
/// panic, and none of `secrets` (nor the test server's password) on stdout
/// or stderr. Returns stderr.
fn fails(k: Kmdb, secrets: &[&str]) -> String {
    fails_with(1, k, secrets)
}

/// As `fails`, expecting exit code `code` (2: a usage mistake).
fn fails_with(code: i32, k: Kmdb, secrets: &[&str]) -> String {
    let out = k.output();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains("panicked"), "{text}");
        assert!(!text.contains("RUST_BACKTRACE"), "{text}");
    }
    assert!(stderr.contains("kmdb: error: "), "{stderr}");
    let password = server_password();
    for secret in secrets.iter().copied().chain([password.as_str()]) {
        assert!(!secret.is_empty());
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret:?} printed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    stderr
}

/// A one-revision export in the scratch directory.
fn small_export(s: &Scratch) -> PathBuf {
    write_export(
        s,
        &[(
            1,
            vec![
                r#"{"_n":"visit","_p":"a","_t":1400000000,"p":"1"}"#,
                r#"{"_p":"a","_p2":"b","_t":1400000001}"#,
            ],
        )],
    )
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

// ------------------------------------------------------ connection errors

#[test]
fn no_database_url_says_so_as_a_usage_mistake() {
    let s = Scratch::new();
    let export = small_export(&s);
    for args in [
        vec!["setup".to_owned()],
        vec!["status".to_owned()],
        vec![
            "import".to_owned(),
            "-q".to_owned(),
            export.display().to_string(),
        ],
    ] {
        let err = fails_with(2, Kmdb::new(None, s.path()).args(&args), &[]);
        assert!(err.contains("DATABASE_URL"), "{args:?}: {err}");
        assert!(
            err.contains("mysql://user:password@host"),
            "{args:?}: {err}"
        );
        // An empty variable is no URL either.
        let err = fails_with(
            2,
            Kmdb::new(None, s.path())
                .args(&args)
                .env("DATABASE_URL", " "),
            &[],
        );
        assert!(err.contains("DATABASE_URL"), "{args:?}: {err}");
    }
}

#[test]
fn unreachable_server_is_named_without_the_password() {
    let s = Scratch::new();
    let export = small_export(&s);
    let url = "mysql://u:secretpw@127.0.0.1:1/db";
    let runs = [
        Kmdb::new(None, s.path())
            .args(["setup"])
            .env("DATABASE_URL", url),
        Kmdb::new(None, s.path())
            .args(["import", "-q"])
            .arg_path(&export)
            .env("DATABASE_URL", url),
        Kmdb::new(None, s.path()).args(["status", "--database-url", url]),
    ];
    for k in runs {
        let err = fails(k, &["secretpw"]);
        assert!(err.contains("cannot connect"), "{err}");
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert!(err.contains("mysql://u:***@127.0.0.1:1/db"), "{err}");
    }
}

#[test]
fn wrong_password_is_redacted() {
    let s = Scratch::new();
    let db = TestDb::new("err_wrong_password");
    let wrong = "wrong-pw-7f3e";
    let url = db.url.replacen(&server_password(), wrong, 1);
    assert_ne!(url, db.url);
    let err = fails(
        Kmdb::new(None, s.path())
            .args(["setup"])
            .env("DATABASE_URL", &url),
        &[wrong],
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains(&server_address()), "{err}");
    assert!(err.contains("Access denied"), "{err}");
    assert!(err.contains(":***@"), "{err}");
}

#[test]
fn a_url_of_another_scheme_is_refused_without_its_password() {
    let s = Scratch::new();
    let err = fails_with(
        2,
        Kmdb::new(None, s.path())
            .args(["setup"])
            .env("DATABASE_URL", "oracle://u:secretpw@127.0.0.1:1521/db"),
        &["secretpw"],
    );
    assert_eq!(
        err,
        "kmdb: error: DATABASE_URL must look like mysql://user:password@host:port/database \
         or postgres://user:password@host:port/database (got oracle://u:***@127.0.0.1:1521/db)\n"
    );
    // PostgreSQL is a target: an unreachable one is named as such.
    let err = fails(
        Kmdb::new(None, s.path())
            .args(["setup"])
            .env("DATABASE_URL", "postgres://u:secretpw@127.0.0.1:1/db"),
        &["secretpw"],
    );
    assert!(
        err.starts_with("kmdb: error: cannot connect to PostgreSQL at 127.0.0.1:1 "),
        "{err}"
    );
    let err = fails_with(
        2,
        Kmdb::new(None, s.path())
            .args(["setup"])
            .env("DATABASE_URL", "mysql://u:secretpw@127.0.0.1:1"),
        &["secretpw"],
    );
    assert!(err.contains("names no database"), "{err}");
}

#[test]
fn an_unparsable_url_never_shows_its_password() {
    let s = Scratch::new();
    for (url, secret) in [
        ("mysql://u:se/cretpw@127.0.0.1:1/db", "cretpw"),
        ("mysql://u:pw/with/slashes@127.0.0.1:1/db", "with/slashes"),
    ] {
        let err = fails_with(
            2,
            Kmdb::new(None, s.path())
                .args(["setup"])
                .env("DATABASE_URL", url),
            &[secret],
        );
        assert!(err.contains("DATABASE_URL"), "{err}");
    }
}

#[test]
fn local_infile_disabled_tells_how_to_enable_it() {
    let s = Scratch::new();
    let db = setup_db("err_local_infile", &s);
    let export = small_export(&s);

    /// Turns `local_infile` off on the server, and back to what it was when
    /// dropped, even if the test fails.
    struct LocalInfileOff {
        was: i64,
    }
    impl LocalInfileOff {
        fn new() -> LocalInfileOff {
            let mut c = mysql::Conn::new(mysql::Opts::from_url(&base_url()).unwrap()).unwrap();
            let was: i64 = c
                .query_first("SELECT @@GLOBAL.local_infile")
                .unwrap()
                .unwrap();
            c.query_drop("SET GLOBAL local_infile = 0").unwrap();
            LocalInfileOff { was }
        }
    }
    impl Drop for LocalInfileOff {
        fn drop(&mut self) {
            let sql = format!("SET GLOBAL local_infile = {}", self.was);
            for _ in 0..5 {
                if let Ok(mut c) = mysql::Conn::new(mysql::Opts::from_url(&base_url()).unwrap()) {
                    if c.query_drop(&sql).is_ok() {
                        return;
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            eprintln!("could not restore local_infile: run `{sql}` as root");
        }
    }

    let err = {
        let _only_me = LOCAL_INFILE.write().unwrap_or_else(|e| e.into_inner());
        let _off = LocalInfileOff::new();
        fails(
            Kmdb::new(Some(&db), s.path())
                .args(["import", "-q"])
                .arg_path(&export),
            &[],
        )
    };
    assert!(err.contains("local_infile"), "{err}");
    assert!(err.contains("SET GLOBAL local_infile = 1"), "{err}");
    assert_eq!(db.count("events"), 0);

    // Restored: the same import now runs.
    let out = shared(|| import(&db, &s, &export, &[]));
    assert_eq!(printed_accounting(&out)["events"], 1, "{out}");
}

// ---------------------------------------------------------- schema, source

#[test]
fn missing_schema_says_run_setup() {
    let s = Scratch::new();
    let db = TestDb::new("err_no_schema");
    let export = small_export(&s);
    for args in [
        vec![
            "import".to_owned(),
            "-q".to_owned(),
            export.display().to_string(),
        ],
        vec!["status".to_owned()],
        vec![
            "partition".to_owned(),
            "--min-date".to_owned(),
            "2014-01-01".to_owned(),
            "--max-date".to_owned(),
            "2014-02-01".to_owned(),
        ],
    ] {
        let err = fails_shared(Kmdb::new(Some(&db), s.path()).args(&args), &[]);
        assert!(err.contains("run `kmdb setup`"), "{args:?}: {err}");
    }
    // Nothing was created behind the user's back.
    assert_eq!(
        db.query_string(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
        ),
        "0"
    );
}

#[test]
fn missing_source_directory_is_named() {
    let s = Scratch::new();
    let db = setup_db("err_no_source", &s);
    let missing = s.join("no-such-export");
    let err = fails_shared(
        Kmdb::new(Some(&db), s.path())
            .args(["import", "-q"])
            .arg_path(&missing),
        &[],
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");

    // A file is not an export directory either.
    let file = s.join("file.json");
    std::fs::write(&file, "{}\n").unwrap();
    let err = fails_shared(
        Kmdb::new(Some(&db), s.path())
            .args(["import", "-q"])
            .arg_path(&file),
        &[],
    );
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn a_directory_without_revision_files_is_refused() {
    let s = Scratch::new();
    let db = setup_db("err_no_revisions", &s);
    let root = s.join("export");
    std::fs::create_dir_all(root.join("revisions")).unwrap();
    std::fs::write(root.join("revisions/notes.txt"), "not a revision\n").unwrap();
    std::fs::write(root.join("revisions/x.json"), "{}\n").unwrap();
    std::fs::write(root.join("index.csv"), "").unwrap();
    let err = fails_shared(
        Kmdb::new(Some(&db), s.path())
            .args(["import", "-q"])
            .arg_path(&root),
        &[],
    );
    assert!(err.contains("no revision files"), "{err}");
    assert!(err.contains("N.json"), "{err}");
    assert!(err.contains(&root.display().to_string()), "{err}");
    assert_eq!(db.count("kmdb_imports"), 0);
}

#[test]
fn a_truncated_gzip_file_is_named_and_a_rerun_after_repair_completes() {
    let s = Scratch::new();
    let root = s.join("export");
    let revs = root.join("revisions");
    std::fs::create_dir_all(&revs).unwrap();
    let rev = |r: u64, n: u64| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "{{\"_n\":\"event {}\",\"_p\":\"user{}\",\"_t\":{},\"n\":\"{}\"}}\n",
                    i % 17,
                    (i * 7919) % 101,
                    1400000000 + r * 100000 + i,
                    i * i
                )
            })
            .collect()
    };
    let (one, two) = (rev(1, 50), rev(2, 2000));
    std::fs::write(revs.join("1.json.gz"), gzip(&one)).unwrap();
    let good = gzip(&two);
    std::fs::write(revs.join("2.json.gz"), &good[..good.len() / 2]).unwrap();

    let db = setup_db("err_truncated_gzip", &s);
    let err = fails_shared(
        Kmdb::new(Some(&db), s.path())
            .args(["import", "-q"])
            .arg_path(&root),
        &[],
    );
    assert!(err.contains("2.json.gz"), "{err}");
    assert!(err.contains("gzip"), "{err}");

    // Repaired, the re-run imports everything.
    std::fs::write(revs.join("2.json.gz"), &good).unwrap();
    let out = import_shared(&db, &s, &root, &[]);
    let acc = printed_accounting(&out);
    assert_eq!(acc["lines"], 2050, "{out}");
    assert_eq!(acc["events"], 2050, "{out}");

    let s1 = Scratch::new();
    let clean = setup_db("err_truncated_gzip_clean", &s1);
    import_shared(&clean, &s1, &root, &[]);
    assert_eq!(db.fingerprint(), clean.fingerprint());
    assert_eq!(db.count("events"), 2050);
}

// ------------------------------------------------------ partition, state

#[test]
fn a_partition_plan_over_8192_is_refused() {
    let s = Scratch::new();
    let db = setup_db("err_partition_limit", &s);
    let count = || {
        db.query_string(
            "SELECT COUNT(*) FROM information_schema.partitions
             WHERE table_schema = DATABASE() AND table_name = 'events'",
        )
    };
    let before = count();
    let out = Kmdb::new(Some(&db), s.path())
        .args([
            "partition",
            "--min-date",
            "1970-01-01",
            "--max-date",
            "2000-01-01",
            "--days-per-partition",
            "1",
        ])
        .output();
    // A value out of range is a usage mistake: exit 2.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at most 8192"), "{err}");
    assert!(err.contains("--days-per-partition"), "{err}");
    assert_eq!(count(), before);
}

#[test]
fn a_state_store_of_another_database_is_refused() {
    let s = Scratch::new();
    let export = small_export(&s);
    let a = setup_db("err_state_a", &s);
    let b = setup_db("err_state_b", &s);
    import_shared(&a, &s, &export, &["--state", "a-state.sqlite"]);
    let err = fails_shared(
        Kmdb::new(Some(&b), s.path())
            .args(["import", "-q", "--state", "a-state.sqlite"])
            .arg_path(&export),
        &[],
    );
    assert!(err.contains("belongs to another database"), "{err}");
    assert!(err.contains("a-state.sqlite"), "{err}");
    assert_eq!(b.count("events"), 0);
    assert_eq!(b.count("kmdb_imports"), 0);

    // And a new state store for a database that already holds data.
    let err = fails_shared(
        Kmdb::new(Some(&a), s.path())
            .args(["import", "-q", "--state", "other-state.sqlite"])
            .arg_path(&export),
        &[],
    );
    assert!(err.contains("already holds imported data"), "{err}");
    assert!(err.contains("other-state.sqlite"), "{err}");
    assert_eq!(a.count("events"), 1);
}

#[test]
fn flush_without_yes_refuses() {
    let s = Scratch::new();
    let db = setup_db("err_flush", &s);
    import_shared(&db, &s, &small_export(&s), &[]);
    let before = db.fingerprint();
    let err = fails_shared(Kmdb::new(Some(&db), s.path()).args(["flush"]), &[]);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(db.fingerprint(), before);
    assert_eq!(db.count("events"), 1);
    assert!(default_state(&db, &s).exists());
}

/// A hole in the revision numbers is named but does not stop the import; a
/// revision that fills it later is imported, with a warning that its aliases
/// come after those of the newer revisions.
/// A line of one `visit` event of `p`.
fn visit(p: &str) -> String {
    format!(r#"{{"_n":"visit","_p":"{p}","_t":1400000000}}"#)
}

/// `kmdb import -q root`, which must succeed; its standard error.
fn import_warnings(db: &TestDb, s: &Scratch, root: &Path) -> String {
    let out = shared(|| {
        Kmdb::new(Some(db), s.path())
            .args(["import", "-q"])
            .arg_path(root)
            .output()
    });
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn files_that_look_like_revisions_but_are_not_are_named() {
    let s = Scratch::new();
    let db = prepared_db("err_near_miss", &s);
    let (a, b) = (visit("a"), visit("b"));
    let root = write_export(&s, &[(1, vec![&a]), (2, vec![&b])]);
    for name in ["3.JSON", "4.json.bz2", "5.jsonl", "index.json.bak"] {
        std::fs::write(root.join("revisions").join(name), format!("{a}\n")).unwrap();
    }
    assert_eq!(
        import_warnings(&db, &s, &root).trim(),
        format!(
            "warning: 3 file(s) in {} look like revisions but are not named N.json or \
             N.json.gz, and are not imported: 3.JSON, 4.json.bz2, 5.jsonl",
            root.display()
        )
    );
    assert_eq!(db.count("events"), 2);
}

#[test]
fn missing_and_late_revisions_are_warned_about() {
    let s = Scratch::new();
    let db = prepared_db("err_revision_gap", &s);
    let (a, b, c, d) = (visit("a"), visit("b"), visit("c"), visit("d"));
    let root = write_export(&s, &[(1, vec![&a]), (2, vec![&b]), (4, vec![&d])]);
    let run = || import_warnings(&db, &s, &root);
    let err = run();
    assert_eq!(
        err.trim(),
        format!(
            "warning: 1 revision(s) missing from {} between 1 and 4: 3",
            root.display()
        )
    );
    assert_eq!(db.count("events"), 3);

    std::fs::write(root.join("revisions/3.json"), format!("{c}\n")).unwrap();
    let err = run();
    assert!(!err.contains("missing"), "{err}");
    assert_eq!(
        err.trim(),
        "warning: revision(s) 3 arrived after revision 4 was imported: their aliases apply \
         after those of the newer revisions"
    );
    assert_eq!(db.count("events"), 4);
}
