//! The shared conformance export and the real KM export load to exactly the
//! answers of their expected.json, however the import is split or repeated.

mod util;

use std::path::Path;

use util::*;

fn assert_accounting(stdout: &str, expected_path: &str) {
    let printed = printed_accounting(stdout);
    assert_expected_accounting(&printed, stdout, expected_path);
    let listed: u64 = REASONS.iter().filter_map(|r| printed.get(*r)).sum();
    assert_eq!(Some(&listed), printed.get("rejected"), "{stdout}");
}

#[test]
fn conformance_export_gives_the_expected_answers() {
    let s = Scratch::new();
    let db = prepared_db("conformance", &s);
    db.insert_filters(Path::new(&format!("{CONFORMANCE}/filters.json")));
    let out = import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    let expected_path = format!("{CONFORMANCE}/expected.json");
    assert_accounting(&out, &expected_path);
    assert_expected_answers(&db, &expected_path);

    // Every rejected line is in the rejects file, with its reason.
    let rejects = out
        .lines()
        .find_map(|l| l.strip_prefix("rejected lines written to "))
        .expect("rejects file named");
    // Raw lines are written as they were, invalid UTF-8 included.
    let text = String::from_utf8_lossy(&std::fs::read(rejects).unwrap()).into_owned();
    assert_eq!(
        text.lines().count() as u64 - 1,
        printed_accounting(&out)["rejected"]
    );
    assert!(text
        .lines()
        .any(|l| l.split('\t').nth(2) == Some("self_alias")));

    // The accounting is stored per import.
    assert_eq!(
        db.query_string("SELECT CONCAT_WS(',', `lines`, blank, events, property_sets, aliases, rejected_malformed) FROM kmdb_imports"),
        "15436,75,11142,1796,1135,231"
    );

    // A second run finds nothing new and changes nothing.
    let before = db.fingerprint();
    let again = import(&db, &s, Path::new(&format!("{CONFORMANCE}/export")), &[]);
    assert!(!again.contains("imported revisions"), "{again}");
    assert_eq!(db.fingerprint(), before);
}

#[test]
fn real_km_export_gives_the_expected_answers() {
    let s = Scratch::new();
    let db = prepared_db("realdata", &s);
    let out = import(&db, &s, Path::new(REALDATA), &[]);
    let expected_path = format!("{REALDATA}/expected.json");
    assert_accounting(&out, &expected_path);
    assert_expected_answers(&db, &expected_path);
}

#[test]
fn split_imports_give_the_one_shot_database() {
    let export = format!("{CONFORMANCE}/export");
    let filters = format!("{CONFORMANCE}/filters.json");

    let s1 = Scratch::new();
    let one = prepared_db("split_one_shot", &s1);
    one.insert_filters(Path::new(&filters));
    import(&one, &s1, Path::new(&export), &[]);

    let s2 = Scratch::new();
    let split = prepared_db("split_parts", &s2);
    split.insert_filters(Path::new(&filters));
    import(&split, &s2, Path::new(&export), &["--max-revision", "3"]);
    import(
        &split,
        &s2,
        Path::new(&export),
        &["--min-revision", "4", "--max-revision", "5"],
    );
    import(&split, &s2, Path::new(&export), &[]);

    assert_eq!(split.fingerprint(), one.fingerprint());
    assert_expected_answers(&split, &format!("{CONFORMANCE}/expected.json"));
}

#[test]
fn an_import_whose_state_commit_was_lost_reruns_to_the_same_rows() {
    // A crash after the rows reached MySQL but before the state store
    // committed: the re-run loads the same rows again, which the (t, id)
    // keys turn into no-ops.
    let export = format!("{CONFORMANCE}/export");
    let s = Scratch::new();
    let db = prepared_db("lost_commit", &s);
    db.insert_filters(Path::new(&format!("{CONFORMANCE}/filters.json")));
    import(&db, &s, Path::new(&export), &["--max-revision", "2"]);
    let state = default_state(&db, &s);
    let saved = std::fs::read(&state).unwrap();
    import(&db, &s, Path::new(&export), &[]);
    let full = db.fingerprint();
    // Roll the state store back to before the second import and re-run it.
    std::fs::write(&state, saved).unwrap();
    for ext in ["-wal", "-shm"] {
        let mut p = state.clone().into_os_string();
        p.push(ext);
        let _ = std::fs::remove_file(p);
    }
    db.exec("DELETE FROM kmdb_imports WHERE id > 1");
    import(&db, &s, Path::new(&export), &[]);
    assert_eq!(db.fingerprint(), full);
    assert_expected_answers(&db, &format!("{CONFORMANCE}/expected.json"));
}
