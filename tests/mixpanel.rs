//! Mixpanel raw exports (SPEC §10) against the real database: the
//! hand-written `fixtures/mixpanel` export gives the answers derived from
//! the spec, however it is split; duplicates are rejected across files and
//! imports, never twice and never against themselves after a crash; kills
//! at any moment then a re-run equal a clean run; an S3 prefix of day files
//! imports like the directory.
//!
//! The database is queried only through the harness (`answers`,
//! `fingerprint`, `query_string`) and plain SQL, so that these tests can
//! run against another target.

mod util;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use util::s3::*;
use util::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mixpanel");

fn export() -> PathBuf {
    Path::new(FIXTURE).join("export")
}

fn expected_path() -> String {
    format!("{FIXTURE}/expected.json")
}

fn expected_json() -> sonic_rs::Value {
    sonic_rs::from_str(&std::fs::read_to_string(expected_path()).unwrap()).unwrap()
}

/// A database with the fixture's filters.
fn fixture_db(test: &str, s: &Scratch) -> TestDb {
    let db = prepared_db(test, s);
    db.insert_filters(Path::new(&format!("{FIXTURE}/filters.json")));
    db
}

/// `kmdb import --format mixpanel -q SOURCE EXTRA…`: (stdout, stderr).
fn import_mp(db: &TestDb, s: &Scratch, source: &Path, extra: &[&str]) -> (String, String) {
    let out = Kmdb::new(Some(db), s.path())
        .args(["import", "--format", "mixpanel", "-q"])
        .arg_path(source)
        .args(extra)
        .output();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "kmdb import failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The rows of the rejects file an import's stdout names (header first).
fn rejects_file(stdout: &str) -> Vec<Vec<String>> {
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rejected lines written to "))
        .unwrap_or_else(|| panic!("no rejects file named in:\n{stdout}"));
    let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
    text.lines()
        .map(|l| l.splitn(4, '\t').map(str::to_owned).collect())
        .collect()
}

/// `(file, line, reason)` of every reject the fixture expects.
fn expected_rejects() -> Vec<(String, u64, String)> {
    let v = expected_json();
    let list = v.get("_rejects").unwrap().as_array().unwrap();
    list.iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_u64().unwrap(),
                r[2].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_accounting(stdout: &str) {
    let printed = printed_accounting(stdout);
    assert_expected_accounting(&printed, stdout, &expected_path());
    let listed: u64 = REASONS.iter().filter_map(|r| printed.get(*r)).sum();
    assert_eq!(Some(&listed), printed.get("rejected"), "{stdout}");
}

/// The one value of `sql`.
fn one(db: &TestDb, sql: &str) -> String {
    db.query_string(sql)
}

#[test]
fn mixpanel_fixture_gives_the_expected_answers() {
    let s = Scratch::new();
    let db = fixture_db("mp_fixture", &s);
    let (out, err) = import_mp(&db, &s, &export(), &[]);
    assert!(
        out.contains("imported revisions 16436 .. 16439"),
        "four day files, numbered by their day:\n{out}"
    );
    assert_accounting(&out);
    assert_expected_answers(&db, &expected_path());

    // The near miss is named, the README passed over.
    assert!(
        err.contains("look like revisions but are not named") && err.contains("2015-01-05.JSON"),
        "{err}"
    );
    assert!(!err.contains("README"), "{err}");

    // Every rejected line, by file and line, with its reason.
    let rows = rejects_file(&out);
    assert_eq!(rows[0], ["file", "line", "reason", "text"]);
    let got: Vec<(String, u64, String)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].clone()))
        .collect();
    assert_eq!(got, expected_rejects());
    // The raw text is the line's: a duplicate a day late is the resent line.
    let late = rows
        .iter()
        .find(|r| r[0] == "2015-01-02.jsonl" && r[1] == "1")
        .unwrap();
    assert_eq!(
        late[3],
        r#"{"event":"Viewed Page","properties":{"time":1420156799,"distinct_id":"dev-f","$insert_id":"late2"}}\r"#
    );

    // Event ids are `revision << 40 | line` of their day file.
    let want: Vec<String> = expected_json()
        .get("_event_ids")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap().to_string())
        .collect();
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM events"),
        want.len().to_string()
    );
    for id in &want {
        assert_eq!(
            one(&db, &format!("SELECT COUNT(*) FROM events WHERE id = {id}")),
            "1",
            "event {id}"
        );
    }

    // What some lines became, spelled out (the CRC sums above hold them too).
    let value = |key: &str| {
        one(
            &db,
            &format!(
                "SELECT p.value FROM properties p JOIN `keys` k ON k.id = p.`key` WHERE k.string = '{key}'"
            ),
        )
    };
    assert_eq!(value("nested"), r#"{"a":[1,{"b":null}]}"#);
    assert_eq!(value("tags"), r#"["x","y"]"#);
    assert_eq!(value("_p"), "fake");
    assert_eq!(value("Café"), "naïve");
    assert_eq!(value("title"), "Frigidman™");
    assert_eq!(value("amount"), "12.50");
    assert_eq!(
        db.column(
            "SELECT e.t FROM events e JOIN users u ON u.id = e.user_id \
             WHERE u.name = 'dev-h' ORDER BY e.t"
        ),
        [
            "1973-03-03 09:46:40",
            "2015-01-02 00:10:00",
            "2015-01-03 00:00:00",
            "2015-01-03 00:00:01",
            "5138-11-16 09:46:40",
            "9999-12-31 23:59:59"
        ]
    );
    // Nothing of the filtered: no `secret`, no employee.
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM `keys` WHERE string = 'secret'"),
        "0"
    );
    assert_eq!(
        one(
            &db,
            "SELECT COUNT(*) FROM users WHERE name IN ('employee@corp', 'dev-e', 'dev-j')"
        ),
        "0"
    );

    // The accounting is stored with the import, duplicates included.
    assert_eq!(
        one(
            &db,
            "SELECT CONCAT_WS(',', `lines`, blank, events, aliases, rejected_duplicate, rejected_malformed) FROM kmdb_imports"
        ),
        "57,2,21,7,7,8"
    );

    // A second run finds nothing new and changes nothing.
    let before = db.fingerprint();
    let (again, _) = import_mp(&db, &s, &export(), &[]);
    assert!(!again.contains("imported revisions"), "{again}");
    assert_eq!(db.fingerprint(), before);
}

/// Importing day by day equals one import, the duplicates that arrive a day
/// or two late included: each later import finds the keys of the earlier
/// ones in the state store.
#[test]
fn day_by_day_imports_equal_one_import() {
    let s1 = Scratch::new();
    let one_shot = fixture_db("mp_one_shot", &s1);
    import_mp(&one_shot, &s1, &export(), &[]);

    let s2 = Scratch::new();
    let split = fixture_db("mp_day_by_day", &s2);
    let mut duplicates = Vec::new();
    for max in ["16436", "16437", "16438", "16439"] {
        let (out, _) = import_mp(&split, &s2, &export(), &["--max-revision", max]);
        assert!(
            out.contains(&format!("imported revisions {max} .. {max}")),
            "{out}"
        );
        duplicates.push(
            printed_accounting(&out)
                .get("duplicate")
                .copied()
                .unwrap_or(0),
        );
    }
    // Day 2 rejects two lines of day 1 and one of its own; day 3 one of its
    // own and one of day 1.
    assert_eq!(duplicates, [2, 3, 2, 0]);
    assert_eq!(
        one(&split, "SELECT SUM(rejected_duplicate) FROM kmdb_imports"),
        "7"
    );
    assert_eq!(split.fingerprint(), one_shot.fingerprint());
    assert_expected_answers(&split, &expected_path());
}

/// An import whose rows reached the database but whose state store commit
/// failed (as on a full disk, or a crash at the worst moment): its re-run
/// loads the same rows and counts the same duplicates, never taking its own
/// events for duplicates of themselves, though the failed try had read and
/// added their keys.
#[test]
fn a_failed_state_commit_reruns_to_the_same_rows_and_duplicates() {
    let s = Scratch::new();
    let db = fixture_db("mp_lost_commit", &s);
    import_mp(&db, &s, &export(), &["--max-revision", "16436"]);
    let state = default_state(&db, &s);
    let store = rusqlite::Connection::open(&state).unwrap();
    store
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON duplicate_keys BEGIN \
             SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    drop(store);
    let failed = Kmdb::new(Some(&db), s.path())
        .args(["import", "--format", "mixpanel", "-q"])
        .arg_path(&export())
        .fails();
    let name = state.file_name().unwrap().to_string_lossy();
    assert!(
        failed.contains(&format!("committing state store {name}")),
        "{failed}"
    );
    assert!(db.count("events") > 0, "the failed try loaded its rows");
    let store = rusqlite::Connection::open(&state).unwrap();
    store.execute_batch("DROP TRIGGER full").unwrap();
    drop(store);

    let (rerun, _) = import_mp(&db, &s, &export(), &[]);
    let rerun = printed_accounting(&rerun);
    assert_eq!(rerun.get("duplicate"), Some(&5), "{rerun:?}");
    assert_eq!(
        one(&db, "SELECT SUM(rejected_duplicate) FROM kmdb_imports"),
        "7"
    );
    assert_expected_answers(&db, &expected_path());
    // And the state store now holds every key: nothing new the next time.
    let before = db.fingerprint();
    let (again, _) = import_mp(&db, &s, &export(), &[]);
    assert!(!again.contains("imported revisions"), "{again}");
    assert_eq!(db.fingerprint(), before);
}

/// The fixture from an S3 prefix of day files imports as from the directory.
#[test]
fn an_s3_prefix_of_day_files_imports_like_the_directory() {
    let ep = endpoint("an_s3_prefix_of_day_files_imports_like_the_directory").unwrap();
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("mixpanel");
    let objects: Vec<(String, Vec<u8>)> = std::fs::read_dir(export())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (format!("mp/raw/{name}"), std::fs::read(e.path()).unwrap())
        })
        .collect();
    admin.put_all(&bucket, &objects);
    let s = Scratch::new();
    let db = fixture_db("mp_s3", &s);
    let mut k = Kmdb::new(Some(&db), s.path());
    for (key, default) in AWS_DEFAULTS {
        k = k.env(key, &aws_var(key, default));
    }
    let out = k
        .args(["import", "--format", "mixpanel", "-q"])
        .arg_path(Path::new(&format!("s3://{bucket}/mp/raw")))
        .args(["--endpoint-url", &ep])
        .output();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("2015-01-05.JSON"), "{stderr}");
    assert_accounting(&stdout);
    assert_expected_answers(&db, &expected_path());
    let got: Vec<String> = rejects_file(&stdout)[1..]
        .iter()
        .map(|r| format!("{}:{}:{}", r[0], r[1], r[2]))
        .collect();
    let want: Vec<String> = expected_rejects()
        .into_iter()
        .map(|(f, l, r)| format!("{f}:{l}:{r}"))
        .collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// kill -9

/// A generated Mixpanel export: its directory and its day files' revisions.
fn generated_export(s: &Scratch, lines: u64) -> (PathBuf, Vec<u64>) {
    let dir = s.join("generated");
    Kmdb::new(None, s.path())
        .args(["generate", "--format", "mixpanel", "--out"])
        .arg_path(&dir)
        .args([
            "--lines",
            &lines.to_string(),
            "--seed",
            "3",
            "--gzip-every",
            "3",
            "--file-size",
            "3MB",
            "-q",
        ])
        .ok();
    let mut days: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let day = &name[..10];
            let (y, m, d): (i64, i64, i64) = (
                day[..4].parse().unwrap(),
                day[5..7].parse().unwrap(),
                day[8..].parse().unwrap(),
            );
            days_from_civil(y, m, d) as u64
        })
        .collect();
    days.sort();
    (dir, days)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Arguments of one import with its own state store and work dir.
fn args_of(export: &Path, s: &Scratch, tag: &str, max: Option<u64>) -> Vec<String> {
    let mut args = vec![
        "import".to_string(),
        "--format".into(),
        "mixpanel".into(),
        "-q".into(),
        export.display().to_string(),
        "--state".into(),
        s.join(&format!("{tag}.sqlite")).display().to_string(),
        "--work-dir".into(),
        s.join(&format!("{tag}-work")).display().to_string(),
    ];
    if let Some(m) = max {
        args.extend(["--max-revision".into(), m.to_string()]);
    }
    args
}

/// Runs kmdb to completion; returns stdout.
fn run_ok(db: &TestDb, s: &Scratch, args: &[String]) -> String {
    Kmdb::new(Some(db), s.path()).args(args).ok()
}

/// Spawns kmdb and SIGKILLs it after `delay`; true if it was still running.
fn kill_after(db: &TestDb, s: &Scratch, args: &[String], delay: Duration) -> bool {
    let mut child = Kmdb::new(Some(db), s.path())
        .args(args)
        .command()
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
        std::thread::sleep(Duration::from_millis(10));
    }
    if finished.is_none() {
        child.kill().expect("SIGKILL kmdb");
    }
    child.wait().unwrap();
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
    finished.is_none()
}

/// The duplicate keys a state store holds, per day.
fn stored_keys(path: &Path) -> BTreeMap<i64, Vec<u8>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT day, keys FROM duplicate_keys ORDER BY day")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A Mixpanel export imported in two steps (a backfill of the first days,
/// then the rest), each killed at several moments before a re-run finishes
/// it: every re-run prints the clean run's accounting (the same duplicates:
/// none of the killed runs' keys were kept), and the end is the clean run's
/// database and state store, though the killed imports wrote their keys
/// aside in the state store as they went and the clean one did not.
#[test]
fn sigkill_then_rerun_equals_a_clean_run() {
    let s = Scratch::new();
    let (export, days) = generated_export(&s, 60_000);
    assert!(days.len() >= 6, "{days:?}");
    let steps = [Some(days[days.len() / 2]), None];

    let clean = prepared_db("mp_kill_clean", &s);
    let mut reference = Vec::new();
    let t0 = Instant::now();
    for max in steps {
        let out = run_ok(&clean, &s, &args_of(&export, &s, "clean", max));
        reference.push(printed_accounting(&out));
    }
    let full_run = t0.elapsed().as_secs_f64();
    assert!(reference[1]["duplicate"] > 0, "{:?}", reference[1]);

    // The killed imports keep few keys in memory, so that they write days
    // aside in the state store (and get killed doing so) all along.
    let db = prepared_db("mp_kill", &s);
    let mut hits = 0;
    for (step, max) in steps.iter().enumerate() {
        let mut args = args_of(&export, &s, "killed", *max);
        args.extend(["--duplicate-keys-memory".into(), "256KB".into()]);
        for k in 0..4 {
            // Spread over the step's expected run, one right at the start.
            let frac = [0.02, 0.35, 0.6, 0.85][k];
            let delay = Duration::from_secs_f64(0.1 + frac * full_run / 2.0);
            if kill_after(&db, &s, &args, delay) {
                hits += 1;
            }
        }
        let out = run_ok(&db, &s, &args);
        // A kill can land after the state commit: nothing is left to do.
        if out.contains("imported revisions") {
            assert_eq!(
                printed_accounting(&out),
                reference[step],
                "step {step}:\n{out}"
            );
        }
    }
    assert!(hits >= 4, "only {hits} kills hit a running import");
    assert_eq!(db.fingerprint(), clean.fingerprint());
    assert_eq!(
        stored_keys(&s.join("killed.sqlite")),
        stored_keys(&s.join("clean.sqlite"))
    );
}

/// `kmdb generate --format mixpanel --days N` writes N day files; `--days`
/// is refused for KM, whose files are cut by size.
#[test]
fn generate_writes_the_days_asked_for() {
    let s = Scratch::new();
    let out = Kmdb::new(None, s.path())
        .args([
            "generate", "--format", "mixpanel", "--lines", "3000", "--days", "6",
        ])
        .args(["--out"])
        .arg_path(&s.join("mp"))
        .args(["-q"])
        .ok();
    assert!(
        out.starts_with("wrote 6 revision file(s), 3,000 lines"),
        "{out}"
    );
    let mut names: Vec<String> = std::fs::read_dir(s.join("mp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("2014-01-01.json"));
    assert_eq!(names.last().map(String::as_str), Some("2014-01-06.json"));
    let refused = Kmdb::new(None, s.path())
        .args(["generate", "--lines", "10", "--days", "6", "--out"])
        .arg_path(&s.join("km"))
        .output();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--days is for --format mixpanel"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
