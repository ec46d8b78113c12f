//! `kmdb partition`: the plan, and extending it over loaded data.

mod util;

use std::path::Path;

use util::*;

fn partition(db: &TestDb, s: &Scratch, max: &str) -> String {
    Kmdb::new(Some(db), s.path())
        .args([
            "partition",
            "--min-date",
            "2013-12-01",
            "--max-date",
            max,
            "--days-per-partition",
            "30",
        ])
        .ok()
}

fn partitions(db: &TestDb, table: &str) -> u64 {
    if db.is_postgres() {
        return db
            .query_string(&format!(
                "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = '{table}'::regclass"
            ))
            .parse()
            .unwrap();
    }
    db.query_string(&format!(
        "SELECT COUNT(*) FROM information_schema.partitions
         WHERE table_schema = DATABASE() AND table_name = '{table}'"
    ))
    .parse()
    .unwrap()
}

#[test]
fn extending_the_plan_keeps_loaded_rows() {
    let s = Scratch::new();
    let db = TestDb::new("partition_extend");
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    assert!(partition(&db, &s, "2014-06-01").starts_with("7 partition(s) added"));
    db.insert_filters(Path::new(&format!("{CONFORMANCE}/filters.json")));
    import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    let before = db.fingerprint();
    let in_last = db.query_string("SELECT COUNT(*) FROM events PARTITION (pLast)");
    assert_ne!(in_last, "0", "rows past the plan land in pLast");

    // Later max date: pLast is split, nothing is lost or moved out of reach.
    assert!(partition(&db, &s, "2016-02-01").starts_with("20 partition(s) added"));
    for table in ["events", "properties", "aliases"] {
        assert_eq!(partitions(&db, table), 28, "{table}");
    }
    assert_eq!(db.fingerprint(), before);
    assert_eq!(
        db.query_string("SELECT COUNT(*) FROM events PARTITION (p20140629)"),
        db.query_string("SELECT COUNT(*) FROM events WHERE t >= '2014-05-30' AND t < '2014-06-29'")
    );
    // The same plan again adds nothing.
    assert!(partition(&db, &s, "2016-02-01").starts_with("0 partition(s) added"));
    assert_eq!(partitions(&db, "events"), 28);
}

/// A partition is loaded once the revisions have moved past it; a row that
/// comes for it later (a straggler) still lands, with its properties.
#[test]
fn rows_that_come_late_for_a_loaded_partition_land() {
    let s = Scratch::new();
    let db = prepared_db("partition_late_rows", &s);
    // 2014-01-10, 2014-05-10 and 2014-09-10: three 120-day partitions.
    let (jan, may, sep) = (1_389_312_000u64, 1_399_680_000u64, 1_410_307_200u64);
    let month = |t0: u64, user: &str| -> Vec<String> {
        (0..12_000u64)
            .map(|i| {
                format!(
                    r#"{{"_n":"view","_p":"{user}{}","_t":{}}}"#,
                    i % 500,
                    t0 + i * 60
                )
            })
            .collect()
    };
    let mut third = month(sep, "c");
    third.insert(
        6_000,
        format!(r#"{{"_n":"late","_p":"a1","_t":{},"k":"v"}}"#, jan + 1),
    );
    let revisions = [month(jan, "a"), month(may, "b"), third];
    let revisions: Vec<(u64, Vec<&str>)> = revisions
        .iter()
        .enumerate()
        .map(|(i, lines)| (i as u64 + 1, lines.iter().map(|l| l.as_str()).collect()))
        .collect();
    let export = write_export(&s, &revisions);
    let out = import(&db, &s, &export, &[]);
    assert_eq!(printed_accounting(&out)["events"], 36_001, "{out}");
    assert_eq!(db.count("events"), 36_001);
    assert_eq!(
        db.query_string("SELECT COUNT(*) FROM events PARTITION (p20140331)"),
        "12001"
    );
    assert_eq!(
        db.query_string(
            "SELECT COUNT(*) FROM properties p JOIN events e ON e.id = p.event_id
             WHERE e.t = '2014-01-10 00:00:01' AND p.value = 'v'"
        ),
        "1"
    );
}
