//! What a user sees at the command line: exit codes, messages, the URL with
//! only its password hidden, partition plans (warned about, re-planned,
//! taken from the export), the end-of-import tables and `--dry-run`.

mod util;

use std::path::Path;
use std::process::Output;

use util::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit code `code`, no panic, and `kmdb: error: ` + `says` on
/// stderr; returns stderr.
fn exits(out: Output, code: i32, says: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("kmdb: error: {says}")),
        "expected {says:?} in:\n{stderr}"
    );
    stderr
}

fn partition_args<'a>(min: &'a str, max: &'a str, days: &'a str) -> [&'a str; 7] {
    [
        "partition",
        "--min-date",
        min,
        "--max-date",
        max,
        "--days-per-partition",
        days,
    ]
}

/// `n` as kmdb writes counts: `15,436`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn partition_count(db: &TestDb, table: &str) -> u64 {
    db.query_string(&format!(
        "SELECT COUNT(*) FROM information_schema.partitions
         WHERE table_schema = DATABASE() AND table_name = '{table}'"
    ))
    .parse()
    .unwrap()
}

// ------------------------------------------------------ exit codes

#[test]
fn usage_mistakes_exit_2_before_touching_the_database() {
    let s = Scratch::new();
    // No server listens there: a usage mistake must be found first.
    let url = "mysql://u:pw@127.0.0.1:1/db";
    for (args, says) in [
        (
            partition_args("2014-13-01", "2015-01-01", "7"),
            "--min-date: 2014-13-01 is not a day of the calendar",
        ),
        (
            partition_args("2014-01-01", "2015-02-29", "7"),
            "--max-date: 2015-02-29 is not a day of the calendar",
        ),
        (
            partition_args("01/01/2014", "2015-01-01", "7"),
            "--min-date: \"01/01/2014\" is not a date of the form YYYY-MM-DD",
        ),
        (
            partition_args("1969-12-31", "2015-01-01", "7"),
            "--min-date: 1969-12-31 is before 1970-01-01",
        ),
        (
            partition_args("2014-01-01", "2015-01-01", "0"),
            "--days-per-partition must be at least 1",
        ),
        (
            partition_args("2015-01-01", "2014-01-01", "7"),
            "--max-date (2014-01-01) must be after --min-date (2015-01-01)",
        ),
        (
            partition_args("2013-12-01", "2016-02-01", "10000"),
            "--days-per-partition 10000 is longer than 2013-12-01 .. 2016-02-01 (792 days)",
        ),
        (
            partition_args("1970-01-01", "2000-01-01", "1"),
            "1970-01-01 .. 2000-01-01 in 1-day partitions needs 10958 partitions",
        ),
    ] {
        let out = Kmdb::new(None, s.path())
            .args(args)
            .env("DATABASE_URL", url)
            .output();
        let err = exits(out, 2, says);
        assert!(!err.contains("connect"), "{err}");
    }
    let out = Kmdb::new(None, s.path())
        .args(["import", "--jobs", "0", "."])
        .env("DATABASE_URL", url)
        .output();
    exits(
        out,
        2,
        "--jobs, --load-sessions and --batch-mb must be at least 1",
    );
    // clap's own mistakes exit 2 too.
    let out = Kmdb::new(None, s.path())
        .args(["partition", "--no-such-option"])
        .output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

// ------------------------------------------------------ the URL in messages

#[test]
fn only_the_password_of_the_url_is_hidden() {
    let s = Scratch::new();
    for (url, shown) in [
        (
            "mysql://kmdb:kmdb@127.0.0.1:1/kmdb",
            "mysql://kmdb:***@127.0.0.1:1/kmdb",
        ),
        (
            "postgres://u:p@127.0.0.1:1/p",
            "postgres://u:***@127.0.0.1:1/p",
        ),
    ] {
        for args in [vec!["setup"], vec!["status"]] {
            let out = Kmdb::new(None, s.path())
                .args(&args)
                .env("DATABASE_URL", url)
                .output();
            let err = exits(out, 1, "");
            assert!(err.contains(shown), "{url} {args:?}: {err}");
            assert!(!err.contains("***:***"), "{err}");
            assert!(!err.contains("***ostgres"), "{err}");
            assert!(!err.contains("@127.0.0.1:1/***"), "{err}");
        }
    }
}

#[test]
fn a_refused_connection_says_what_failed_and_what_to_check() {
    let s = Scratch::new();
    let out = Kmdb::new(None, s.path())
        .args(["setup"])
        .env("DATABASE_URL", "mysql://u:secretpw@127.0.0.1:1/db")
        .output();
    let err = exits(out, 1, "cannot connect to MySQL at 127.0.0.1:1");
    assert!(
        err.contains("could not connect to 127.0.0.1:1: connection refused"),
        "{err}"
    );
    assert!(
        err.contains("check that MySQL or MariaDB runs at 127.0.0.1:1"),
        "{err}"
    );
    for structure in ["DriverError", "MySqlError", "IoError", "secretpw"] {
        assert!(!err.contains(structure), "{err}");
    }
}

#[test]
fn a_missing_database_is_named_with_the_fix() {
    let s = Scratch::new();
    let db = TestDb::new("cli_no_such_db");
    let url = format!("{}_gone", db.url);
    let out = Kmdb::new(None, s.path())
        .args(["setup"])
        .env("DATABASE_URL", &url)
        .output();
    let err = exits(out, 1, "cannot connect to MySQL");
    assert!(err.contains("(MySQL error 1049)"), "{err}");
    assert!(
        err.contains("CREATE DATABASE `kmdb_t_cli_no_such_db_gone`"),
        "{err}"
    );
    assert!(!err.contains("MySqlError"), "{err}");
}

// ------------------------------------------------------ partition plans

#[test]
fn a_wrong_plan_is_warned_about_and_replanned_with_the_rows() {
    let s = Scratch::new();
    let db = TestDb::new("cli_replan");
    let run = |args: &[&str]| Kmdb::new(Some(&db), s.path()).args(args).output();
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    // One partition over the whole range, then rows in it.
    let out = run(&partition_args("2013-12-01", "2016-02-01", "792"));
    assert!(out.status.success(), "{out:?}");
    import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    let before = db.fingerprint();
    let events = db.count("events");
    assert_eq!(partition_count(&db, "events"), 2);

    // Another plan without --replan: only its partition past the last bound
    // is added, and it says so.
    let out = run(&partition_args("2013-12-01", "2016-02-01", "28"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).lines().next(), Some("1 partition(s) added per table; plan: 2013-12-01 .. 2016-02-01, 28 day(s) each, plus pLast"));
    assert_eq!(
        text(&out.stderr).trim(),
        "warning: the tables are partitioned on another plan (1 partition, of the rows \
         before 2016-02-01, then pLast) than the one asked for (29 partitions of 28 day(s) \
         with bounds 2013-12-29 .. 2016-02-21, then pLast): only the 1 partition(s) past \
         their last bound were added. To have \
         exactly the plan asked for, run the same command with --replan (it moves the rows \
         already loaded into the new partitions)"
    );
    assert_eq!(partition_count(&db, "events"), 3);

    // --replan: the plan asked for, every row kept and in its partition.
    let mut args = partition_args("2013-12-01", "2016-02-01", "28").to_vec();
    args.push("--replan");
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).starts_with("re-planned 3 table(s), rows kept: 29 partitions"),
        "{out:?}"
    );
    for table in ["events", "properties", "aliases"] {
        assert_eq!(partition_count(&db, table), 30, "{table}");
    }
    assert_eq!(db.fingerprint(), before);
    assert_eq!(db.count("events"), events);
    assert_eq!(
        db.query_string("SELECT COUNT(*) FROM events PARTITION (p20140126)"),
        db.query_string("SELECT COUNT(*) FROM events WHERE t >= '2013-12-29' AND t < '2014-01-26'")
    );
    // The same again: nothing to do.
    let out = run(&args);
    assert!(
        text(&out.stdout).starts_with("the tables already have this plan"),
        "{out:?}"
    );
    // flush empties the tables and names the partitions it keeps.
    let out = run(&["flush", "--yes"]);
    assert!(
        text(&out.stdout).contains(
            "partitions kept: 29 partitions of 28 day(s) with bounds 2013-12-29 .. 2016-02-21, \
             then pLast; `kmdb partition ... --replan` changes them"
        ),
        "{out:?}"
    );
}

#[test]
fn a_plan_comes_from_the_export_index_or_its_rows() {
    let s = Scratch::new();
    let db = TestDb::new("cli_from_export");
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    let generated = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/generated");
    let out = Kmdb::new(Some(&db), s.path())
        .args([
            "partition",
            "--from-export",
            generated,
            "--days-per-partition",
            "28",
        ])
        .ok();
    assert_eq!(
        out,
        format!(
            "{generated}: index.csv dates its files 2014-01-01 .. 2015-12-31: planning \
             2014-01-01 .. 2016-01-01\n\
             27 partition(s) added per table; plan: 2014-01-01 .. 2016-01-01, 28 day(s) each, \
             plus pLast\n"
        )
    );
    // No index.csv: the rows' own dates, a stray clock left out.
    let db = TestDb::new("cli_from_rows");
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    let mut lines: Vec<String> = (0..3000u64)
        .map(|i| {
            format!(
                r#"{{"_n":"v","_p":"u{i}","_t":{}}}"#,
                1_400_000_000 + i * 3600
            )
        })
        .collect();
    lines.push(r#"{"_n":"v","_p":"clock","_t":1}"#.to_owned());
    let export = write_export(&s, &[(1, lines.iter().map(|l| l.as_str()).collect())]);
    let out = Kmdb::new(Some(&db), s.path())
        .args(["partition", "-q", "--from-export"])
        .arg_path(&export)
        .args(["--days-per-partition", "30"])
        .ok();
    assert_eq!(
        out,
        format!(
            "{}: 3,001 records dated 2014-05-13 .. 2014-09-15: planning 2014-05-13 .. \
             2014-09-16\n\
             5 partition(s) added per table; plan: 2014-05-13 .. 2014-09-16, 30 day(s) each, \
             plus pLast\n",
            export.display()
        )
    );
}

#[test]
fn an_import_into_tables_without_partitions_is_warned_about() {
    let s = Scratch::new();
    let db = TestDb::new("cli_no_partitions");
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    let export = write_export(&s, &[(1, vec![r#"{"_n":"v","_p":"a","_t":1400000000}"#])]);
    let out = Kmdb::new(Some(&db), s.path())
        .args(["import", "-q"])
        .arg_path(&export)
        .output();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "warning: events, properties and aliases have no time partitions: every row goes \
             to their one partition, pLast. Plan them from the export's dates with `kmdb \
             partition --from-export {}` (before importing, or after: add --replan to move \
             the rows)",
            export.display()
        )
    );
}

// ------------------------------------------------------ what an import shows

#[test]
fn an_import_ends_with_rows_per_table_and_status_counts_blank_lines() {
    let s = Scratch::new();
    let db = prepared_db("cli_tables", &s);
    let out = import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("  table "))
        .collect();
    assert!(table.len() >= 7, "{out}");
    for (line, name) in table[1..6]
        .iter()
        .zip(["events", "properties", "aliases", "users", "keys"])
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], name, "{out}");
        let rows: u64 = fields[1].replace(',', "").parse().unwrap();
        assert_eq!(rows, db.count(name), "{name} in:\n{out}");
        assert!(
            fields[2].parse::<f64>().is_ok() && fields[3] == "s",
            "{out}"
        );
    }
    assert!(table[6].starts_with("  total "), "{out}");
    assert!(table[6].ends_with(" s (the whole import)"), "{out}");

    let acc = printed_accounting(&out);
    let status = Kmdb::new(Some(&db), s.path()).args(["status"]).ok();
    let want = format!(
        "{} lines = {} events + {} property sets + {} aliases + {} rejected + {} blank",
        grouped(acc["lines"]),
        grouped(acc["events"]),
        grouped(acc["property_sets"]),
        grouped(acc["aliases"]),
        grouped(acc["rejected"]),
        grouped(acc["blank"])
    );
    assert!(status.contains(&want), "{want}\nin:\n{status}");
}

#[test]
fn dry_run_says_what_would_be_imported_and_loads_nothing() {
    let s = Scratch::new();
    let db = prepared_db("cli_dry_run", &s);
    let export = Path::new(&format!("{CONFORMANCE}/export")).to_owned();
    let dry = |extra: &[&str]| {
        Kmdb::new(Some(&db), s.path())
            .args(["import", "-q", "--dry-run"])
            .arg_path(&export)
            .args(extra)
            .ok()
    };
    let out = dry(&[]);
    assert!(
        out.starts_with("dry run: nothing is downloaded, loaded or written\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  source       {} (local)\n", export.display())),
        "{out}"
    );
    let password = mysql::Opts::from_url(&db.url)
        .unwrap()
        .get_pass()
        .unwrap_or_default()
        .to_owned();
    assert!(
        out.contains(":***@") && out.contains(&format!("/{}\n", db.name)),
        "{out}"
    );
    assert!(password.is_empty() || !out.contains(&password), "{out}");
    let state = util::default_state(&db, &s);
    let state_name = state.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        out.contains(&format!("  state store  {state_name}: not created yet\n")),
        "{out}"
    );
    assert!(
        out.contains("would import 6 revision file(s), 1 .. 6, "),
        "{out}"
    );
    for rev in [
        "1.json",
        "2.json",
        "3.json.gz",
        "4.json",
        "5.json",
        "6.json.gz",
    ] {
        assert!(out.contains(&format!("revisions/{rev}\n")), "{out}");
    }
    assert_eq!(db.count("events"), 0);
    assert_eq!(db.count("kmdb_imports"), 0);
    assert!(!state.exists());
    assert!(!s.join("kmdb-work").exists());

    import(&db, &s, &export, &["--max-revision", "2"]);
    let out = dry(&[]);
    assert!(
        out.contains(&format!(
            "state store  {state_name}: 2 revision(s) imported (1 .. 2)"
        )),
        "{out}"
    );
    assert!(
        out.contains("would import 4 revision file(s), 3 .. 6, "),
        "{out}"
    );
    assert!(
        out.contains("; 2 revision(s) in range already imported:"),
        "{out}"
    );
    let out = dry(&["--max-revision", "2"]);
    assert!(out.contains("would import nothing"), "{out}");
    // A state store that does not belong to the database: the import would stop.
    let out = Kmdb::new(Some(&db), s.path())
        .args(["import", "-q", "--dry-run", "--state", "other.sqlite"])
        .arg_path(&export)
        .output();
    exits(
        out,
        1,
        "the import would stop: state store other.sqlite has committed no import, but the \
         database already holds imported data",
    );
    assert!(!s.join("other.sqlite").exists());
}
