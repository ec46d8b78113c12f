//! `kmdb funnel` and `kmdb next` (SPEC §9) against the real MariaDB: an
//! export imported in two imports whose alias crosses them, with answers
//! counted by hand; the errors a user sees; the HTML page in a real headless
//! Chromium; and the README's recipe joining `users.name` with a product
//! table.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use util::*;

/// 2015-01-01 00:00:00 UTC.
const T0: i64 = 1_420_070_400;

fn line(p: &str, n: &str, dt: i64, props: &str) -> String {
    format!(
        "{{\"_p\":\"{p}\",\"_n\":\"{n}\",\"_t\":{}{props}}}",
        T0 + dt
    )
}

/// The people of the fixture (times in seconds after T0):
/// - c1 (anonymous; revision 2 aliases it to the account 1001, so its
///   revision-1 events join 1001's in the second import): visited site 0,
///   Video View v1 10 (with the blacklisted `Screen`); then as 1001: signed
///   up 100, Video View v2 3610, billed 86400.
/// - c2: visited site 5, Video View v1 20, v2 3621, v1 4000, v2 4001,
///   signed up 86406.
/// - c3: signed up 0, visited site 1.
/// - p4: a, b in the same second, a first by line; p5: b, then a.
fn revisions() -> Vec<(u64, Vec<String>)> {
    let r1 = vec![
        line("c1", "visited site", 0, ""),
        line(
            "c1",
            "Video View",
            10,
            ",\"video\":\"v1\",\"Screen\":\"big\"",
        ),
        line("c2", "visited site", 5, ""),
        line("c2", "Video View", 20, ",\"video\":\"v1\""),
        line("c2", "Video View", 3621, ",\"video\":\"v2\""),
        line("c2", "Video View", 4000, ",\"video\":\"v1\""),
        line("c2", "Video View", 4001, ",\"video\":\"v2\""),
        line("c2", "signed up", 86_406, ""),
        line("c3", "signed up", 0, ""),
        line("c3", "visited site", 1, ""),
        line("p4", "a", 0, ""),
        line("p4", "b", 0, ""),
        line("p5", "b", 0, ""),
        line("p5", "a", 0, ""),
    ];
    let r2 = vec![
        format!("{{\"_p\":\"c1\",\"_p2\":\"1001\",\"_t\":{}}}", T0 + 20),
        line("1001", "Video View", 3610, ",\"video\":\"v2\""),
        line("1001", "signed up", 100, ""),
        line("1001", "billed", 86_400, ""),
    ];
    vec![(1, r1), (2, r2)]
}

const FUNNELS: &str = r#"[
 {"name": "video", "steps": [{"event": "Video View", "where": {"video": "v1"}},
                             {"event": "Video View", "where": {"video": "v2"}}], "window": "1h"},
 {"name": "signup", "steps": [{"event": "visited site"}, {"event": "signed up"}, {"event": "billed"}], "window": "1d"},
 {"name": "never", "steps": [{"event": "no such event"}, {"event": "signed up"}]},
 {"name": "blacklisted", "steps": [{"event": "Video View", "where": {"Screen": "big"}}]},
 {"name": "same second", "steps": [{"event": "a"}, {"event": "b"}], "window": "0"},
 {"name": "case", "steps": [{"event": "Video View", "where": {"video": "V1"}}, {"event": "video view"}]}
]"#;

/// A database with the fixture imported in two imports (`Screen`
/// blacklisted), and a scratch directory holding `funnels.json`.
fn loaded(test: &str, both: bool) -> (TestDb, Scratch) {
    let s = Scratch::new();
    let db = prepared_db(test, &s);
    db.exec("INSERT INTO blacklisted_properties VALUES ('Screen')");
    let revs = revisions();
    let texts: Vec<(u64, Vec<&str>)> = revs
        .iter()
        .map(|(n, lines)| (*n, lines.iter().map(String::as_str).collect()))
        .collect();
    let export = write_export(&s, &texts);
    import(&db, &s, &export, &["--max-revision", "1"]);
    if both {
        import(&db, &s, &export, &[]);
    }
    std::fs::write(s.join("funnels.json"), FUNNELS).unwrap();
    (db, s)
}

fn kmdb(db: &TestDb, s: &Scratch, args: &[&str]) -> Kmdb {
    Kmdb::new(Some(db), s.path()).args(args)
}

/// `name -> users per step` of `kmdb funnel --format json`.
fn users(json: &str) -> Vec<(String, Vec<u64>)> {
    let v: sonic_rs::Value = sonic_rs::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let steps = f.get("steps").unwrap().as_array().unwrap();
            (
                f.get("name").unwrap().as_str().unwrap().to_owned(),
                steps
                    .iter()
                    .map(|s| s.get("users").unwrap().as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn expect(pairs: &[(&str, &[u64])]) -> Vec<(String, Vec<u64>)> {
    pairs
        .iter()
        .map(|(n, u)| (n.to_string(), u.to_vec()))
        .collect()
}

fn funnel_json(db: &TestDb, s: &Scratch, extra: &[&str]) -> Vec<(String, Vec<u64>)> {
    let mut args = vec!["funnel", "funnels.json", "--format", "json", "-q"];
    args.extend(extra);
    users(&kmdb(db, s, &args).ok())
}

#[test]
fn funnels_count_people_across_aliases_and_imports() {
    let (db, s) = loaded("an_funnels", false);
    // Before the alias arrives, c1 and 1001 are two people.
    assert_eq!(
        funnel_json(&db, &s, &[])[..2],
        expect(&[("video", &[2, 0]), ("signup", &[3, 0, 0])])[..]
    );
    import(&db, &s, &s.join("x"), &[]);
    assert_eq!(
        funnel_json(&db, &s, &[]),
        expect(&[
            // c1's v1 then 1001's v2 at exactly t1 + 1h (inclusive); c2's v2
            // comes a second too late, and its second v1 does not restart.
            ("video", &[2, 1]),
            // c1 -> 1001 signs up and is billed at exactly t1 + 1d; c2 signs
            // up a second too late; c3 signed up before visiting.
            ("signup", &[3, 1, 1]),
            ("never", &[0, 0]),
            // Screen is blacklisted: never stored, never matched.
            ("blacklisted", &[0]),
            // p4: a then b in one second, in line order; p5: b before a.
            ("same second", &[2, 1]),
            // Values and names match byte for byte.
            ("case", &[0, 0]),
        ])
    );
}

#[test]
fn funnel_json_is_the_spec_shape_and_from_to_bound_step_one() {
    let (db, s) = loaded("an_range", true);
    std::fs::write(
        s.join("one.json"),
        r#"[{"name": "signup", "steps": [{"event": "visited site"}, {"event": "signed up"}, {"event": "billed"}], "window": "1d"}]"#,
    )
    .unwrap();
    let out = kmdb(&db, &s, &["funnel", "one.json", "--format", "json"]).ok();
    assert_eq!(
        out,
        "[\n  {\"name\": \"signup\", \"steps\": [\
         {\"event\": \"visited site\", \"users\": 3, \"from_step_1\": 1, \"from_previous\": 1}, \
         {\"event\": \"signed up\", \"users\": 1, \"from_step_1\": 0.333333, \"from_previous\": 0.333333}, \
         {\"event\": \"billed\", \"users\": 1, \"from_step_1\": 0.333333, \"from_previous\": 1}], \
         \"window\": \"1d\"}\n]\n"
    );
    let signup = |extra: &[&str]| funnel_json(&db, &s, extra)[1].1.clone();
    // --from excludes c1's and c3's first visits (c2 comes in, too late to
    // sign up); --to is exclusive and bounds step 1 only (billed after it).
    assert_eq!(signup(&["--from", "2015-01-01 00:00:02"]), vec![1, 0, 0]);
    assert_eq!(signup(&["--to", "2015-01-01 00:00:05"]), vec![2, 1, 1]);
    assert_eq!(
        signup(&["--from", "2015-01-01", "--to", "2015-01-01 00:00:01"]),
        vec![1, 1, 1]
    );
    assert_eq!(signup(&["--from", "2015-01-02"]), vec![0, 0, 0]);
    // With --from after c1's v1, c2's first v1 is step 1 and its window
    // passes before a v2; its later v1 does not start over.
    let video = funnel_json(&db, &s, &["--from", "2015-01-01 00:00:15"])[0]
        .1
        .clone();
    assert_eq!(video, vec![1, 0]);
}

#[test]
fn funnel_table_and_csv() {
    let (db, s) = loaded("an_formats", true);
    std::fs::write(
        s.join("one.json"),
        r#"[{"name": "video, \"v1\" to v2", "steps": [{"event": "Video View", "where": {"video": "v1"}}, {"event": "Video View", "where": {"video": "v2"}}], "window": "1h"}]"#,
    )
    .unwrap();
    let table = kmdb(&db, &s, &["funnel", "one.json", "--format", "table"]).ok();
    assert_eq!(
        table,
        "video, \"v1\" to v2 (window 1h)\n\
         \x20 step  event                  users  from step 1  from previous\n\
         \x20    1  Video View [video=v1]      2       100.0%         100.0%\n\
         \x20    2  Video View [video=v2]      1        50.0%          50.0%\n"
    );
    let csv = kmdb(&db, &s, &["funnel", "one.json", "--format", "csv"]).ok();
    assert_eq!(
        csv,
        "funnel,step,event,where,users,from_step_1,from_previous\n\
         \"video, \"\"v1\"\" to v2\",1,Video View,\"{\"\"video\"\": \"\"v1\"\"}\",2,1,1\n\
         \"video, \"\"v1\"\" to v2\",2,Video View,\"{\"\"video\"\": \"\"v2\"\"}\",1,0.5,0.5\n"
    );
    // Off a terminal, the default is JSON.
    let default = kmdb(&db, &s, &["funnel", "one.json", "-q"]).ok();
    assert!(default.starts_with("[\n  {\"name\": "), "{default}");
}

#[test]
fn events_spilled_to_disk_count_the_same() {
    let (db, s) = loaded("an_spill", true);
    let work = s.join("work");
    let out = kmdb(
        &db,
        &s,
        &[
            "funnel",
            "funnels.json",
            "--format",
            "json",
            "--memory-mb",
            "0",
            "--jobs",
            "3",
            "--read-sessions",
            "3",
        ],
    )
    .env("KMDB_WORK_DIR", work.to_str().unwrap())
    .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        users(&String::from_utf8_lossy(&out.stdout)),
        funnel_json(&db, &s, &[])
    );
    // Progress lines on stderr (not a terminal), and the spill files gone.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("events:") && stderr.contains("counting:"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

fn next_json(db: &TestDb, s: &Scratch, args: &[&str]) -> String {
    let mut all = vec!["next"];
    all.extend(args);
    all.extend(["--format", "json", "-q"]);
    kmdb(db, s, &all).ok()
}

#[test]
fn next_counts_the_following_events() {
    let (db, s) = loaded("an_next", true);
    assert_eq!(
        next_json(&db, &s, &["Video View"]),
        "{\"event\": \"Video View\", \"occurrences\": 6, \"sequences\": [\n  \
         {\"next\": [\"Video View\"], \"count\": 3},\n  \
         {\"next\": [\"signed up\"], \"count\": 2},\n  \
         {\"next\": [\"billed\"], \"count\": 1}\n]}\n"
    );
    // Ties by name, byte order: "Video View" < "billed" < "signed up".
    assert_eq!(
        next_json(&db, &s, &["Video View", "--where", "video=v2"]),
        "{\"event\": \"Video View\", \"occurrences\": 3, \"sequences\": [\n  \
         {\"next\": [\"Video View\"], \"count\": 1},\n  \
         {\"next\": [\"billed\"], \"count\": 1},\n  \
         {\"next\": [\"signed up\"], \"count\": 1}\n]}\n"
    );
    // Two steps within an hour (inclusive), (end) when fewer follow.
    assert_eq!(
        next_json(&db, &s, &["Video View", "--steps", "2", "--within", "1h"]),
        "{\"event\": \"Video View\", \"occurrences\": 6, \"sequences\": [\n  \
         {\"next\": [\"(end)\"], \"count\": 3},\n  \
         {\"next\": [\"Video View\", \"(end)\"], \"count\": 1},\n  \
         {\"next\": [\"Video View\", \"Video View\"], \"count\": 1},\n  \
         {\"next\": [\"signed up\", \"Video View\"], \"count\": 1}\n]}\n"
    );
    assert_eq!(
        next_json(
            &db,
            &s,
            &[
                "Video View",
                "--steps",
                "2",
                "--within",
                "3600s",
                "--top",
                "2"
            ]
        ),
        "{\"event\": \"Video View\", \"occurrences\": 6, \"sequences\": [\n  \
         {\"next\": [\"(end)\"], \"count\": 3},\n  \
         {\"next\": [\"Video View\", \"(end)\"], \"count\": 1}\n]}\n"
    );
    // --from/--to bound the anchor only; same-second events follow in line
    // order.
    assert_eq!(
        next_json(
            &db,
            &s,
            &[
                "visited site",
                "--from",
                "2015-01-01 00:00:01",
                "--to",
                "2015-01-01 00:00:06"
            ]
        ),
        "{\"event\": \"visited site\", \"occurrences\": 2, \"sequences\": [\n  \
         {\"next\": [\"(end)\"], \"count\": 1},\n  \
         {\"next\": [\"Video View\"], \"count\": 1}\n]}\n"
    );
    assert_eq!(
        next_json(&db, &s, &["a"]),
        "{\"event\": \"a\", \"occurrences\": 2, \"sequences\": [\n  \
         {\"next\": [\"(end)\"], \"count\": 1},\n  \
         {\"next\": [\"b\"], \"count\": 1}\n]}\n"
    );
    // A blacklisted property and an unknown event match nothing.
    for args in [
        &["Video View", "--where", "Screen=big"][..],
        &["no such event"][..],
    ] {
        let out = next_json(&db, &s, args);
        assert!(
            out.ends_with("\"occurrences\": 0, \"sequences\": []}\n"),
            "{out}"
        );
    }
}

#[test]
fn next_table_and_csv() {
    let (db, s) = loaded("an_next_formats", true);
    assert_eq!(
        kmdb(
            &db,
            &s,
            &[
                "next",
                "Video View",
                "--steps",
                "2",
                "--within",
                "1h",
                "--top",
                "3",
                "--format",
                "table"
            ]
        )
        .ok(),
        "Video View: 6 occurrences; the next 2 events within 1h\n\
         \x20 count  share  next\n\
         \x20     3  50.0%  (end)\n\
         \x20     1  16.7%  Video View → (end)\n\
         \x20     1  16.7%  Video View → Video View\n"
    );
    assert_eq!(
        kmdb(
            &db,
            &s,
            &[
                "next",
                "Video View",
                "--steps",
                "2",
                "--within",
                "1h",
                "--top",
                "2",
                "--format",
                "csv"
            ]
        )
        .ok(),
        "count,share,next_1,next_2\n3,0.5,(end),\n1,0.166667,Video View,(end)\n"
    );
}

/// Runs `kmdb` expecting `code`, no panic; returns stderr.
fn fails_with(k: Kmdb, code: i32) -> String {
    let out = k.output();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn errors_say_what_is_wrong() {
    let (db, s) = loaded("an_errors", true);
    let bad = s.join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"name": "ok", "steps": [{"event": "a"}]},
            {"name": "typo", "steps": [{"event": "a"}, {"event": "b", "wher": {"k": "v"}}]}]"#,
    )
    .unwrap();
    let err = fails_with(kmdb(&db, &s, &["funnel", "bad.json"]), 1);
    assert_eq!(
        err,
        "kmdb: error: bad.json: funnel #2 (\"typo\"): step 2: unknown field \"wher\" \
         (a step has \"event\" and \"where\")\n"
    );
    std::fs::write(
        &bad,
        r#"[{"name": "w", "steps": [{"event": "a"}], "window": "2 weeks"}]"#,
    )
    .unwrap();
    let err = fails_with(kmdb(&db, &s, &["funnel", "bad.json"]), 1);
    assert_eq!(
        err,
        "kmdb: error: bad.json: funnel #1 (\"w\"): \"window\": \"2 weeks\" is not a duration: \
         expected a whole number of seconds, or one followed by s, m, h or d \
         (e.g. 90s, 30m, 12h, 7d)\n"
    );
    std::fs::write(
        &bad,
        r#"[{"name": "x", "steps": [{"event": "a"}]}, {"name": "empty", "steps": []}]"#,
    )
    .unwrap();
    let err = fails_with(kmdb(&db, &s, &["funnel", "bad.json"]), 1);
    assert_eq!(
        err,
        "kmdb: error: bad.json: funnel #2 (\"empty\"): \"steps\" must be a non-empty list of steps\n"
    );
    std::fs::write(&bad, r#"[{"steps": [{"event": "a"}]}]"#).unwrap();
    let err = fails_with(kmdb(&db, &s, &["funnel", "bad.json"]), 1);
    assert_eq!(
        err,
        "kmdb: error: bad.json: funnel #1: \"name\" must be a non-empty string\n"
    );
    std::fs::write(&bad, "[{\"name\": ").unwrap();
    let err = fails_with(kmdb(&db, &s, &["funnel", "bad.json"]), 1);
    assert!(
        err.starts_with("kmdb: error: bad.json: not valid JSON"),
        "{err}"
    );
    let err = fails_with(kmdb(&db, &s, &["funnel", "missing.json"]), 1);
    assert!(
        err.starts_with("kmdb: error: reading the funnel file missing.json: "),
        "{err}"
    );

    let err = fails_with(
        kmdb(&db, &s, &["funnel", "funnels.json", "--format", "xml"]),
        2,
    );
    assert_eq!(
        err,
        "error: invalid value 'xml' for '--format <FORMAT>'\n  \
         [possible values: table, csv, json]\n\nFor more information, try '--help'.\n"
    );

    let err = fails_with(
        kmdb(&db, &s, &["funnel", "funnels.json", "--from", "2015-02-30"]),
        2,
    );
    assert_eq!(
        err,
        "kmdb: error: --from: \"2015-02-30\" is not a date: expected YYYY-MM-DD or \
         YYYY-MM-DD HH:MM:SS (UTC), from 1970-01-01 to 9999-12-31\n"
    );
    let err = fails_with(
        kmdb(
            &db,
            &s,
            &["next", "a", "--to", "2015-01-01", "--from", "2015-01-01"],
        ),
        2,
    );
    assert_eq!(
        err,
        "kmdb: error: --from 2015-01-01 00:00:00 is not before --to 2015-01-01 00:00:00: \
         nothing can be counted\n"
    );
    let err = fails_with(kmdb(&db, &s, &["next", "a", "--within", "3w"]), 2);
    assert_eq!(
        err,
        "kmdb: error: --within: \"3w\" is not a duration: expected a whole number of \
         seconds, or one followed by s, m, h or d (e.g. 90s, 30m, 12h, 7d)\n"
    );
    let err = fails_with(kmdb(&db, &s, &["next", "a", "--where", "Plan"]), 2);
    assert_eq!(
        err,
        "kmdb: error: --where \"Plan\": expected KEY=VALUE, like --where Plan=gold\n"
    );
    let err = fails_with(kmdb(&db, &s, &["next", "a", "--steps", "0"]), 2);
    assert_eq!(
        err,
        "kmdb: error: --steps must be between 1 and 100 (got 0)\n"
    );
}

#[test]
fn an_empty_or_missing_database_is_explained() {
    let s = Scratch::new();
    std::fs::write(
        s.join("f.json"),
        r#"[{"name": "x", "steps": [{"event": "a"}]}]"#,
    )
    .unwrap();
    let bare = TestDb::new("an_bare");
    let err = fails_with(
        Kmdb::new(Some(&bare), s.path()).args(["funnel", "f.json"]),
        1,
    );
    assert_eq!(
        err,
        "kmdb: error: the database has no kmdb schema: run `kmdb setup` first\n"
    );
    let empty = prepared_db("an_empty", &s);
    for args in [&["funnel", "f.json"][..], &["next", "a"][..]] {
        let err = fails_with(Kmdb::new(Some(&empty), s.path()).args(args), 1);
        assert_eq!(
            err,
            "kmdb: error: the database holds no events: import an export first \
             (`kmdb import SOURCE`), or point DATABASE_URL at the database you imported into\n"
        );
    }
}

/// Debian's Chromium, which scripts/test.sh installs.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium is not installed: run the tests with scripts/test.sh, which installs it");
}

/// Loads `page` in headless Chromium: the DOM it rendered, and the
/// browser's log lines that tell of a page error (console messages, failed
/// loads).
fn load_in_chromium(page: &Path, screenshot: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let run = |extra: &[String]| {
        let out = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dom = run(&["--dump-dom".to_owned()]);
    let shot = run(&[format!("--screenshot={}", screenshot.display())]);
    let errors = [&dom.stderr, &shot.stderr]
        .iter()
        .flat_map(|e| {
            String::from_utf8_lossy(e)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .collect();
    (String::from_utf8_lossy(&dom.stdout).into_owned(), errors)
}

#[test]
fn html_page_shows_one_chart_per_funnel_in_chromium() {
    let (db, s) = loaded("an_html", true);
    // The fixture's funnels, and 300 more made of its events.
    let names = [
        "visited site",
        "Video View",
        "signed up",
        "billed",
        "a",
        "b",
    ];
    let mut many: Vec<String> = (0..300)
        .map(|i| {
            let steps: Vec<String> = (0..2 + i % 7)
                .map(|k| {
                    let event = names[(i * 7 + k * 3) % names.len()];
                    if k % 3 == 1 {
                        format!(
                            "{{\"event\": \"{event}\", \"where\": {{\"video\": \"v{}\"}}}}",
                            1 + k % 2
                        )
                    } else {
                        format!("{{\"event\": \"{event}\"}}")
                    }
                })
                .collect();
            format!(
                "{{\"name\": \"generated {i}\", \"steps\": [{}]}}",
                steps.join(", ")
            )
        })
        .collect();
    let fixture = FUNNELS
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    many.insert(0, fixture);
    std::fs::write(s.join("many.json"), format!("[{}]", many.join(",\n"))).unwrap();
    for (file, count) in [("funnels.json", 6), ("many.json", 306)] {
        let page = s.join(&format!("{file}.html"));
        let out = kmdb(&db, &s, &["funnel", file, "--format", "json", "--html"])
            .arg_path(&page)
            .ok();
        assert_eq!(users(&out).len(), count);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(!html.contains("<script"), "the page needs no script");
        assert!(
            !html
                .replace("http://www.w3.org/2000/svg", "")
                .contains("://"),
            "the page fetches nothing"
        );
        let png = s.join(&format!("{file}.png"));
        let (dom, errors) = load_in_chromium(&page, &png);
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(
            dom.matches("<svg class=\"funnel-chart\"").count(),
            count,
            "{file}"
        );
        assert_eq!(dom.matches("<section class=\"card").count(), count);
        // One bar of people per step, every funnel's name as a heading.
        assert!(dom.contains("<h2>video</h2>") && dom.contains("<h2>same second</h2>"));
        assert!(dom.contains("nobody entered"));
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "a screenshot with content"
        );
    }
}

/// The README's recipe: a per-company weekly activity query that joins
/// kmdb's `users.name` with a product's own `accounts` table. The test runs
/// the README's SQL as written.
#[test]
fn readme_recipe_joins_users_with_a_product_table() {
    let (db, _s) = loaded("an_recipe", true);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = |marker: &str| -> String {
        let at = readme
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} not in README.md"));
        let rest = &readme[at..];
        let start = rest
            .find("```sql\n")
            .expect("an sql block after the marker")
            + 7;
        let end = rest[start..].find("```").unwrap();
        rest[start..start + end].to_owned()
    };
    // The product's accounts: 1001 and c3 at Acme, c2 at Initech; p4 has
    // no account.
    let accounts = "INSERT INTO accounts (login, company) \
                    VALUES ('1001', 'Acme'), ('c3', 'Acme'), ('c2', 'Initech')";
    let rows: Vec<(String, String, u64, u64)> = if db.is_postgres() {
        let mut pg = db.pg();
        pg.batch_execute(&block("<!-- recipe: accounts table, PostgreSQL -->"))
            .unwrap();
        pg.batch_execute(accounts).unwrap();
        pg.query(&block("<!-- recipe: weekly activity, PostgreSQL -->"), &[])
            .unwrap()
            .iter()
            .map(|r| {
                let count = |i| r.get::<_, i64>(i) as u64;
                (r.get(0), r.get(1), count(2), count(3))
            })
            .collect()
    } else {
        let mut conn = db.conn();
        use mysql::prelude::Queryable;
        for statement in block("<!-- recipe: accounts table -->").split(';') {
            if !statement.trim().is_empty() {
                conn.query_drop(statement).unwrap();
            }
        }
        conn.query_drop(accounts).unwrap();
        conn.query(block("<!-- recipe: weekly activity -->"))
            .unwrap()
    };
    // 2015-01-01 is a Thursday: its week starts on Monday 2014-12-29.
    // Acme: 1001 (5 events, c1's included) and c3 (2) that week, 1001's
    // billed on 2015-01-02 too; Initech: c2's 6 events, the last on
    // 2015-01-02 00:00:06 still in that week.
    assert_eq!(
        rows,
        vec![
            ("Acme".to_owned(), "2014-12-29".to_owned(), 2, 7),
            ("Initech".to_owned(), "2014-12-29".to_owned(), 1, 6),
        ]
    );
}

/// The database seam read directly, as `kmdb funnel` and `kmdb next` read
/// it: every event once whatever the slicing and the session, only the
/// names asked for, and the properties of the `where` pairs with their
/// event's person (the contract each database's `EventReader` keeps).
#[test]
fn event_reader_streams_each_row_once() {
    use kmdb::db::read::{Event, PropertyFilter, END_T, MIN_T};
    let (db, _s) = loaded("an_reader", true);
    let url = kmdb::db::DatabaseUrl::parse(&db.url).unwrap();
    let reader = kmdb::db::event_reader(&url).unwrap();
    assert!(reader.has_events().unwrap());

    let seconds = if db.is_postgres() {
        "EXTRACT(EPOCH FROM t)::bigint"
    } else {
        "TIMESTAMPDIFF(SECOND, '1970-01-01', t)"
    };
    let expected: Vec<Event> = db
        .rows(&format!(
            "SELECT user_id, {seconds}, id, n FROM events ORDER BY id"
        ))
        .iter()
        .map(|r| Event {
            user: r[0].parse().unwrap(),
            t: r[1].parse().unwrap(),
            id: r[2].parse().unwrap(),
            n: r[3].parse().unwrap(),
        })
        .collect();
    assert_eq!(expected.len(), 17);
    let read = |from: i64, to: i64, names: Option<&[u32]>| -> Vec<Event> {
        let slices = reader.slices(from, to).unwrap();
        assert!(!slices.is_empty());
        assert_eq!((slices[0].from, slices.last().unwrap().to), (from, to));
        assert!(slices.windows(2).all(|w| w[0].to == w[1].from));
        let mut rows = Vec::new();
        // Two sessions side by side, slices taken in turn.
        let mut sessions = [reader.session().unwrap(), reader.session().unwrap()];
        for (i, slice) in slices.iter().enumerate() {
            sessions[i % 2]
                .events(slice, names, &mut |e| {
                    rows.push(e);
                    Ok(())
                })
                .unwrap();
        }
        rows.sort_by_key(|e| e.id);
        rows
    };
    assert_eq!(read(MIN_T, END_T, None), expected);
    if db.is_postgres() {
        // Estimates for the progress bar, even before the tables are analyzed.
        let slices = reader.slices(MIN_T, END_T).unwrap();
        assert!(
            slices.iter().map(|s| s.rows).sum::<u64>() >= 17,
            "{slices:?}"
        );
    }
    // A time range: from inclusive, to exclusive.
    assert_eq!(
        read(T0 + 5, T0 + 3610, None),
        expected
            .iter()
            .filter(|e| (T0 + 5..T0 + 3610).contains(&e.t))
            .copied()
            .collect::<Vec<_>>()
    );
    let keys = reader.key_ids(&["Video View", "video", "no such"]).unwrap();
    assert_eq!(keys.len(), 2);
    let (video_view, video) = (keys["Video View"], keys["video"]);
    assert_eq!(
        reader.key_names(&[video_view, video]).unwrap(),
        [
            (video_view, "Video View".to_owned()),
            (video, "video".to_owned())
        ]
        .into_iter()
        .collect()
    );
    let views = read(MIN_T, END_T, Some(&[video_view]));
    assert_eq!(views.len(), 6);
    assert!(views.iter().all(|e| e.n == video_view));
    assert!(read(MIN_T, END_T, Some(&[])).is_empty());

    // The properties of `video = v2`: three events, c1's (1001's) with the
    // person its events carry.
    let filter = PropertyFilter {
        keys: vec![video],
        values: vec!["v2".to_owned()],
    };
    let mut session = reader.session().unwrap();
    let mut props = Vec::new();
    for slice in reader.slices(MIN_T, END_T).unwrap() {
        session
            .properties(&slice, &filter, &mut |p| {
                // A reader may send more than asked; the caller keeps these.
                if p.key == video && p.value == b"v2" {
                    props.push((p.event, p.user, p.key, p.value.to_vec()));
                }
                Ok(())
            })
            .unwrap();
    }
    props.sort();
    let v2: Vec<(i64, i64, u32, Vec<u8>)> = views
        .iter()
        .filter(|e| [T0 + 3610, T0 + 3621, T0 + 4001].contains(&e.t))
        .map(|e| (e.id, e.user, video, b"v2".to_vec()))
        .collect();
    assert_eq!(props, v2);
    assert_eq!(
        props
            .iter()
            .map(|p| p.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        2,
        "1001 and c2"
    );
}
