//! `kmdb prune --before DATE` (SPEC §8) on the test target: every events,
//! properties and aliases row before DATE goes, and nothing else; whole
//! partitions are dropped; the pruned revisions stay imported; without
//! `--yes` nothing changes.

mod util;

use std::path::Path;

use util::*;

/// The partitions of `table`, by kmdb's names, in order.
fn partitions(db: &TestDb, table: &str) -> Vec<String> {
    if db.is_postgres() {
        let prefix = format!("{table}_");
        let mut names: Vec<(String, String)> = db
            .rows(&format!(
                "SELECT c.relname, COALESCE(substring(pg_get_expr(c.relpartbound, c.oid) \
                 from 'TO \\(''([^'']*)''\\)'), 'zzz')
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = '{table}'::regclass"
            ))
            .into_iter()
            .map(|r| (r[1].clone(), r[0].clone()))
            .collect();
        names.sort();
        return names
            .into_iter()
            .map(|(_, n)| {
                let short = n.strip_prefix(&prefix).unwrap().to_owned();
                if short == "plast" {
                    "pLast".to_owned()
                } else {
                    short
                }
            })
            .collect();
    }
    db.rows(&format!(
        "SELECT partition_name FROM information_schema.partitions
         WHERE table_schema = DATABASE() AND table_name = '{table}'
         ORDER BY partition_ordinal_position"
    ))
    .into_iter()
    .map(|mut r| r.remove(0))
    .collect()
}

/// Rows of each data table, and of the three time tables before `day`.
fn counts(db: &TestDb, day: &str) -> Vec<u64> {
    let mut out: Vec<u64> = ["events", "properties", "aliases", "users", "keys"]
        .iter()
        .map(|t| db.count(t))
        .collect();
    for t in ["events", "properties", "aliases"] {
        out.push(
            db.query_string(&format!(
                "SELECT COUNT(*) FROM {t} WHERE t < '{day} 00:00:00'"
            ))
            .parse()
            .unwrap(),
        );
    }
    out
}

#[test]
fn prune_removes_the_rows_before_the_day_and_only_with_yes() {
    let s = Scratch::new();
    let db = prepared_db("prune", &s);
    let export = Path::new(&format!("{CONFORMANCE}/export")).to_owned();
    import(&db, &s, &export, &[]);
    let day = "2014-08-15";
    let before = counts(&db, day);
    assert!(
        before[5] > 0 && before[6] > 0 && before[7] > 0,
        "{before:?}"
    );
    let plan = partitions(&db, "events");
    assert_eq!(&plan[..3], ["p20140331", "p20140729", "p20141126"]);

    // Without --yes: what would go, and nothing changes.
    let out = Kmdb::new(Some(&db), s.path())
        .args(["prune", "--before", day])
        .ok();
    assert!(
        out.starts_with(&format!("kmdb prune --before {day} would remove from ")),
        "{out}"
    );
    let events_line = out.lines().find(|l| l.contains("events")).unwrap();
    assert!(
        events_line.contains("2 whole partition(s) p20140331, p20140729 (about "),
        "{out}"
    );
    assert!(events_line.ends_with(" rows of p20141126"), "{out}");
    assert!(
        out.ends_with("nothing was changed: run it again with --yes to remove them\n"),
        "{out}"
    );
    assert_eq!(counts(&db, day), before);
    assert_eq!(partitions(&db, "events"), plan);

    // With --yes: the rows before the day go, and nothing else.
    let out = Kmdb::new(Some(&db), s.path())
        .args(["prune", "--before", day, "--yes"])
        .ok();
    assert!(
        out.contains("2 dropped partition(s) p20140331, p20140729"),
        "{out}"
    );
    let after = counts(&db, day);
    assert_eq!(
        after,
        [
            before[0] - before[5],
            before[1] - before[6],
            before[2] - before[7],
            before[3],
            before[4],
            0,
            0,
            0
        ]
    );
    for table in ["events", "properties", "aliases"] {
        assert_eq!(partitions(&db, table), plan[2..], "{table}");
    }
    // The rows from the day on are untouched: their ids and times.
    let fingerprint = |db: &TestDb| {
        db.query_digest(&format!(
            "SELECT COALESCE(SUM(CRC32(CONCAT_WS('|', id, t))),0) FROM events \
             WHERE t >= '{day} 00:00:00'"
        ))
    };
    let whole = prepared_db("prune_whole", &s);
    let s2 = Scratch::new();
    import(&whole, &s2, &export, &[]);
    assert_eq!(fingerprint(&db), fingerprint(&whole));

    // The pruned revisions stay imported; later imports and a second
    // prune find nothing more.
    let out = import(&db, &s, &export, &[]);
    assert!(
        out.is_empty() || !out.contains("imported revisions"),
        "{out}"
    );
    assert_eq!(counts(&db, day), after);
    let out = Kmdb::new(Some(&db), s.path())
        .args(["prune", "--before", day, "--yes"])
        .ok();
    assert!(out.contains("removed about 0 rows"), "{out}");
    // New partitions still extend the plan.
    Kmdb::new(Some(&db), s.path())
        .args([
            "partition",
            "--min-date",
            "2013-12-01",
            "--max-date",
            "2016-08-01",
        ])
        .ok();
    assert_eq!(counts(&db, day), after);
}

#[test]
fn prune_before_every_partition_deletes_from_the_first() {
    let s = Scratch::new();
    let db = prepared_db("prune_early", &s);
    import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    let day = "2014-01-10";
    let before = counts(&db, day);
    assert!(before[5] > 0, "{before:?}");
    let plan = partitions(&db, "events");
    let out = Kmdb::new(Some(&db), s.path())
        .args(["prune", "--before", day, "--yes"])
        .ok();
    assert!(
        out.contains(&format!("{} rows deleted from p20140331", before[5])),
        "{out}"
    );
    assert_eq!(
        counts(&db, day)[..3],
        [
            before[0] - before[5],
            before[1] - before[6],
            before[2] - before[7]
        ]
    );
    assert_eq!(partitions(&db, "events"), plan);
}

#[test]
fn a_prune_date_that_is_not_a_date_is_a_usage_error() {
    let s = Scratch::new();
    for bad in ["2014-13-01", "yesterday", "2014-1-1"] {
        let out = Kmdb::new(None, s.path())
            .args(["prune", "--before", bad, "--yes"])
            .env("DATABASE_URL", "postgres://u:secret-pw@127.0.0.1:1/db")
            .output();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err,
            format!(
                "kmdb: error: --before \"{bad}\" is not a date: give the first day to keep as \
                 YYYY-MM-DD, e.g. --before 2014-06-01\n"
            )
        );
    }
}
