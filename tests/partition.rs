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
