//! The edge cases of SPEC.md, each pinned down by what lands in MariaDB:
//! byte-exact round trips, the 255-character cut, both ends of the time
//! range, octal escapes, every reject reason, de-aliasing across imports,
//! the filters, duplicates, and the hand-written `fixtures/rules` export.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mysql::prelude::Queryable;
use util::*;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rules");

// ---------------------------------------------------------------- helpers

/// Every row of `sql`, each value as text.
fn rows(db: &TestDb, sql: &str) -> Vec<Vec<String>> {
    db.rows(sql)
}

/// The first column of every row of `sql`.
fn column(db: &TestDb, sql: &str) -> Vec<String> {
    rows(db, sql).into_iter().map(|mut r| r.remove(0)).collect()
}

/// Upper-case hex of the UTF-8 bytes of `s`, as `HEX()` prints it.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// `HEX(value)` of every property row whose key is exactly `key`.
fn values_of(db: &TestDb, key: &str) -> Vec<String> {
    column(
        db,
        &format!(
            "SELECT HEX(p.value) FROM properties p JOIN `keys` k ON k.id = p.`key`
             WHERE HEX(k.string) = '{}' ORDER BY p.id",
            hex(key)
        ),
    )
}

/// The one value stored under `key`, as its hex.
fn value_of(db: &TestDb, key: &str) -> String {
    let v = values_of(db, key);
    assert_eq!(v.len(), 1, "one property {key:?}, got {v:?}");
    v.into_iter().next().unwrap()
}

/// `(user name, event name, t)` of every event, with the user being the row
/// the event's `user_id` points to.
fn events(db: &TestDb) -> Vec<(String, String, String)> {
    rows(
        db,
        "SELECT CAST(u.name AS BINARY), CAST(k.string AS BINARY), CAST(e.t AS CHAR)
         FROM events e JOIN users u ON u.id = e.user_id JOIN `keys` k ON k.id = e.n
         ORDER BY e.id",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
    .collect()
}

/// `name -> canonical name` of every `users` row (itself when `alias_of` is
/// NULL); fails when `alias_of` points to a row that is not canonical.
fn users(db: &TestDb) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in rows(
        db,
        "SELECT CAST(u.name AS BINARY), CAST(c.name AS BINARY), u.alias_of, c.alias_of
         FROM users u LEFT JOIN users c ON c.id = u.alias_of",
    ) {
        if r[2] == "NULL" {
            out.insert(r[0].clone(), r[0].clone());
        } else {
            assert_ne!(r[1], "NULL", "users.alias_of of {} points nowhere", r[0]);
            assert_eq!(
                r[3], "NULL",
                "alias_of of {} points to a non-canonical row",
                r[0]
            );
            out.insert(r[0].clone(), r[1].clone());
        }
    }
    out
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn insert_names(db: &TestDb, table: &str, names: &[&str]) {
    for n in names {
        db.insert_name(table, n);
    }
}

/// Checks `lines = blank + events + property_sets + aliases + rejected` and
/// that the listed reasons add up to `rejected`.
fn assert_balanced(acc: &BTreeMap<String, u64>, stdout: &str) {
    let g = |k: &str| acc.get(k).copied().unwrap_or(0);
    let listed: u64 = REASONS.iter().map(|r| g(r)).sum();
    assert_eq!(listed, g("rejected"), "{stdout}");
    assert_eq!(
        g("lines"),
        g("blank") + g("events") + g("property_sets") + g("aliases") + g("rejected"),
        "{stdout}"
    );
}

/// The accounting printed by an import, checked against `want` (keys not
/// listed must be zero or absent).
fn assert_accounting(stdout: &str, want: &[(&str, u64)]) {
    let acc = printed_accounting(stdout);
    assert_balanced(&acc, stdout);
    let want: BTreeMap<&str, u64> = want.iter().copied().collect();
    for k in ["lines", "blank", "events", "property_sets", "aliases"]
        .into_iter()
        .chain(REASONS)
    {
        assert_eq!(
            acc.get(k).copied().unwrap_or(0),
            want.get(k).copied().unwrap_or(0),
            "accounting {k} in:\n{stdout}"
        );
    }
}

/// `(revision, line, reason)` of every row of the rejects file the import
/// named, and the raw text column.
fn rejects(stdout: &str) -> Vec<(u64, u64, String, String)> {
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rejected lines written to "))
        .unwrap_or_else(|| panic!("no rejects file named in:\n{stdout}"));
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("revision\tline\treason\ttext"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
                f.get(3).copied().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// `s` as the test target stores it: U+0000 is U+FFFD on PostgreSQL (SPEC §8).
fn stored(db: &TestDb, s: &str) -> String {
    if db.is_postgres() {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

/// The strings of `keys`, sorted by bytes.
fn key_strings(db: &TestDb) -> Vec<String> {
    column(
        db,
        "SELECT CAST(string AS BINARY) FROM `keys` ORDER BY CAST(string AS BINARY)",
    )
}

// ----------------------------------------------------- values, names, cuts

#[test]
fn special_characters_round_trip_byte_exact() {
    let s = Scratch::new();
    let db = prepared_db("rules_special_chars", &s);
    let lines = concat!(
        r#"{"_n":"ev\tname\n\\N\u0000\"q\" 😀","_p":"id\t\n\r\\\u0000\\N'\"😀","_t":1400000000,"k\ttab\u0000":"v"}"#,
        "\n",
        // Values of every JSON type (SPEC §3): numbers as written, compact arrays and objects.
        r#"{"_p":"forms","_t":1400000000,"int":12,"float":3.50,"exp":1E+2,"neg":-0.0,"yes":true,"no":false,"arr":[ 1 , "a b" , null ],"obj":{ "k" : [ ] , "s":"x\"y" },"lone":"a\ud800b"}"#,
        "\n",
        r#"{"_p":"plain","_t":1400000000,"tab":"a\tb","nl":"a\nb","cr":"a\rb","bs":"a\\b","nul":"a\u0000b","null_marker":"\\N","emoji":"😀 \ud83d\ude00","quote":"it's \"q\" `b`","empty":"","mixed":"\\\t\\n\u0000\r\n"}"#,
        "\n",
    );
    let export = s.export("x", &[(1, lines)]);
    let out = import(&db, &s, &export, &[]);
    assert_accounting(&out, &[("lines", 3), ("events", 1), ("property_sets", 2)]);

    for (key, want) in [
        ("tab", "a\tb"),
        ("nl", "a\nb"),
        ("cr", "a\rb"),
        ("bs", "a\\b"),
        ("nul", "a\0b"),
        ("null_marker", "\\N"),
        ("emoji", "😀 😀"),
        ("quote", "it's \"q\" `b`"),
        ("empty", ""),
        ("mixed", "\\\t\\n\0\r\n"),
        ("k\ttab\0", "v"),
        ("int", "12"),
        ("float", "3.50"),
        ("exp", "1E+2"),
        ("neg", "-0.0"),
        ("yes", "true"),
        ("no", "false"),
        ("arr", r#"[1,"a b",null]"#),
        ("obj", r#"{"k":[],"s":"x\"y"}"#),
        ("lone", "a\u{FFFD}b"),
    ] {
        assert_eq!(
            value_of(&db, &stored(&db, key)),
            hex(&stored(&db, want)),
            "value of {key:?}"
        );
    }
    // An empty string is a value, not NULL; `\N` is text, not NULL.
    assert_eq!(
        db.query_string("SELECT COUNT(*) FROM properties WHERE value IS NULL"),
        "0"
    );

    let event = &stored(&db, "ev\tname\n\\N\0\"q\" 😀");
    let identity = &stored(&db, "id\t\n\r\\\0\\N'\"😀");
    assert_eq!(
        events(&db),
        [(
            identity.to_owned(),
            event.to_owned(),
            "2014-05-13 16:53:20".to_owned()
        )]
    );
    let mut keys = column(&db, "SELECT HEX(string) FROM `keys`");
    keys.sort();
    assert!(keys.contains(&hex(event)), "{keys:?}");
    assert!(keys.contains(&hex(&stored(&db, "k\ttab\0"))), "{keys:?}");
    let users = column(&db, "SELECT HEX(name) FROM users ORDER BY id");
    assert_eq!(users.len(), 3);
    assert!(users.contains(&hex(identity)), "{users:?}");
    assert!(users.contains(&hex("plain")), "{users:?}");
}

#[test]
fn long_names_and_values_are_cut_to_255_characters() {
    let s = Scratch::new();
    let db = prepared_db("rules_cut_255", &s);
    // Multi-byte characters, so that bytes and characters differ.
    let id = "é".repeat(300);
    let id_same_255 = format!("{}{}", "é".repeat(255), "x".repeat(45));
    let event = format!("ev {}", "ê".repeat(297));
    let prop = format!("p {}", "ü".repeat(298));
    let value = format!("{}{}", "ö".repeat(150), "😀".repeat(150));
    let exact = "ä".repeat(255);
    let lines = format!(
        "{}\n{}\n{}\n",
        format_args!(
            r#"{{"_n":"{event}","_p":"{id}","_t":1400000000,"{prop}":"{value}","exact":"{exact}"}}"#
        ),
        // The same user and event after the cut.
        format_args!(r#"{{"_n":"{event}xyz","_p":"{id_same_255}","_t":1400000001}}"#),
        // Filters compare the cut names: the whitelist holds the 255-character name.
        format_args!(r#"{{"_n":"other event","_p":"{id}","_t":1400000002}}"#),
    );
    let export = s.export("x", &[(1, &lines)]);
    let event_cut: String = event.chars().take(255).collect();
    insert_names(&db, "whitelisted_events", &[&event_cut]);
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 3),
            ("events", 2),
            ("rejected", 1),
            ("not_whitelisted", 1),
        ],
    );

    let id_cut: String = id.chars().take(255).collect();
    let prop_cut: String = prop.chars().take(255).collect();
    let value_cut: String = value.chars().take(255).collect();
    assert_eq!(value_cut.chars().count(), 255);
    assert_ne!(value_cut.len(), 255);

    assert_eq!(
        column(
            &db,
            "SELECT CONCAT(CHAR_LENGTH(name), ':', HEX(name)) FROM users"
        ),
        [format!("255:{}", hex(&id_cut))]
    );
    let mut keys = column(
        &db,
        "SELECT CONCAT(CHAR_LENGTH(string), ':', HEX(string)) FROM `keys`",
    );
    keys.sort();
    let mut want = [
        format!("255:{}", hex(&event_cut)),
        format!("255:{}", hex(&prop_cut)),
        format!("5:{}", hex("exact")),
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(value_of(&db, &prop_cut), hex(&value_cut));
    assert_eq!(value_of(&db, "exact"), hex(&exact));
    assert_eq!(
        db.query_string("SELECT GROUP_CONCAT(CHAR_LENGTH(value) ORDER BY id) FROM properties"),
        "255,255"
    );
    // Both events: one user, one key.
    assert_eq!(
        db.query_string("SELECT CONCAT(COUNT(*), ',', COUNT(DISTINCT user_id), ',', COUNT(DISTINCT n)) FROM events"),
        "2,1,1"
    );
}

#[test]
fn names_are_compared_byte_for_byte() {
    let s = Scratch::new();
    let db = prepared_db("rules_byte_exact", &s);
    let names = ["abc", "abc ", "ABC", "Café", "Cafe\u{301}"];
    let mut lines = String::new();
    for (i, n) in names.iter().enumerate() {
        // Identity and event name alike; the property names too.
        let json_n = sonic_rs::to_string(n).unwrap();
        lines.push_str(&format!(
            "{{\"_n\":{json_n},\"_p\":{json_n},\"_t\":{},{json_n}:\"{i}\"}}\n",
            1400000000 + i
        ));
    }
    let export = s.export("x", &[(1, &lines)]);
    let out = import(&db, &s, &export, &[]);
    assert_accounting(&out, &[("lines", 5), ("events", 5)]);

    assert_eq!(db.count("users"), 5);
    assert_eq!(db.count("keys"), 5);
    let got = events(&db);
    assert_eq!(got.len(), 5);
    for (i, (user, event, _)) in got.iter().enumerate() {
        assert_eq!(user, names[i]);
        assert_eq!(event, names[i]);
        assert_eq!(
            values_of(&db, names[i]),
            [hex(&i.to_string())],
            "{:?}",
            names[i]
        );
    }
    assert_eq!(
        db.query_string("SELECT COUNT(DISTINCT user_id) FROM events"),
        "5"
    );
}

#[test]
fn filters_compare_names_byte_for_byte() {
    let s = Scratch::new();
    let db = prepared_db("rules_filters_exact", &s);
    insert_names(&db, "whitelisted_events", &["viewed", "Café"]);
    insert_names(&db, "ignored_users", &["abc "]);
    insert_names(&db, "blacklisted_properties", &["k"]);
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"viewed","_p":"abc","_t":1400000000,"k":"1","k ":"2","K":"3"}"#,
                r#"{"_n":"viewed","_p":"abc ","_t":1400000001}"#,
                r#"{"_n":"viewed","_p":"ABC","_t":1400000002}"#,
                r#"{"_n":"viewed ","_p":"abc","_t":1400000003}"#,
                r#"{"_n":"VIEWED","_p":"abc","_t":1400000004}"#,
                r#"{"_n":"Café","_p":"abc","_t":1400000005}"#,
                r#"{"_n":"Cafe\u0301","_p":"abc","_t":1400000006}"#,
            ],
        )],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 7),
            ("events", 3),
            ("rejected", 4),
            ("ignored_user", 1),
            ("not_whitelisted", 3),
        ],
    );
    assert_eq!(users(&db), map(&[("abc", "abc"), ("ABC", "ABC")]));
    assert!(values_of(&db, "k").is_empty());
    assert_eq!(values_of(&db, "k "), [hex("2")]);
    assert_eq!(values_of(&db, "K"), [hex("3")]);
}

// ------------------------------------------------------------- timestamps

#[test]
fn timestamps_at_both_ends_of_the_range() {
    let s = Scratch::new();
    let db = prepared_db("rules_timestamps", &s);
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"zero","_p":"u","_t":0}"#,
                r#"{"_n":"max","_p":"u","_t":253402300799}"#,
                r#"{"_n":"max float","_p":"u","_t":253402300799.5}"#,
                r#"{"_n":"too late","_p":"u","_t":253402300800}"#,
                r#"{"_n":"negative","_p":"u","_t":-1}"#,
                r#"{"_n":"negative fraction","_p":"u","_t":-0.5}"#,
                r#"{"_n":"negative fraction string","_p":"u","_t":"-0.999"}"#,
                r#"{"_n":"negative float","_p":"u","_t":-1.5}"#,
                r#"{"_n":"float","_p":"u","_t":1400000000.9}"#,
                r#"{"_n":"exponent","_p":"u","_t":1.4e9}"#,
                r#"{"_n":"string","_p":"u","_t":"1400000001"}"#,
                r#"{"_n":"float string","_p":"u","_t":"1400000002.5"}"#,
                r#"{"_n":"word","_p":"u","_t":"soon"}"#,
                r#"{"_n":"bool","_p":"u","_t":true}"#,
                r#"{"_p":"u","_t":0,"set at":"zero"}"#,
                r#"{"_p":"u","_p2":"v","_t":253402300799}"#,
            ],
        )],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 16),
            ("events", 9),
            ("property_sets", 1),
            ("aliases", 1),
            ("rejected", 5),
            ("bad_timestamp", 5),
        ],
    );
    let want = [
        ("zero", "1970-01-01 00:00:00"),
        ("max", "9999-12-31 23:59:59"),
        ("max float", "9999-12-31 23:59:59"),
        // Truncated toward zero, then checked: 0 is in range, -1 is not.
        ("negative fraction", "1970-01-01 00:00:00"),
        ("negative fraction string", "1970-01-01 00:00:00"),
        ("float", "2014-05-13 16:53:20"),
        ("exponent", "2014-05-13 16:53:20"),
        ("string", "2014-05-13 16:53:21"),
        ("float string", "2014-05-13 16:53:22"),
    ];
    let sql = "SELECT CAST(k.string AS BINARY), CAST(e.t AS CHAR) FROM events e
               JOIN `keys` k ON k.id = e.n ORDER BY e.id";
    let got: Vec<(String, String)> = rows(&db, sql)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);

    if db.is_postgres() {
        // `timestamp` holds the text written, whatever the session's zone.
        let mut c = db.pg();
        c.batch_execute("SET TimeZone = 'Asia/Kolkata'").unwrap();
        let shifted: Vec<(String, String)> = c
            .simple_query(&util::pg_sql(sql))
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((r.get(0).unwrap().to_owned(), r.get(1).unwrap().to_owned()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(shifted, want);
        // The ends land in the first partition and in the DEFAULT one.
        let first = column(
            &db,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass ORDER BY c.relname LIMIT 1",
        );
        let in_first = column(&db, &format!("SELECT CAST(t AS CHAR) FROM {}", first[0]));
        assert_eq!(in_first, ["1970-01-01 00:00:00"; 3]);
        let in_last = column(&db, "SELECT CAST(t AS CHAR) FROM events_plast");
        assert_eq!(in_last, ["9999-12-31 23:59:59", "9999-12-31 23:59:59"]);
        return;
    }
    // DATETIME holds the text written, whatever the reading session's zone.
    let opts = mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&db.url).unwrap())
        .init(vec!["SET time_zone = '+05:00'"]);
    let mut conn = mysql::Conn::new(opts).unwrap();
    let tz: Option<String> = conn.query_first("SELECT @@session.time_zone").unwrap();
    assert_eq!(tz.as_deref(), Some("+05:00"));
    let shifted: Vec<(String, String)> = conn
        .query::<(Vec<u8>, String), _>(sql)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (String::from_utf8(k).unwrap(), t))
        .collect();
    assert_eq!(shifted, want);
    let other: Vec<String> = conn
        .query("SELECT CAST(t AS CHAR) AS t FROM properties UNION ALL SELECT CAST(t AS CHAR) FROM aliases ORDER BY t")
        .unwrap();
    assert_eq!(other, ["1970-01-01 00:00:00", "9999-12-31 23:59:59"]);

    // Nothing is refused for its date: the ends land in the first partition
    // and in pLast.
    let first: String = conn
        .query_first(
            "SELECT partition_name FROM information_schema.partitions
             WHERE table_schema = DATABASE() AND table_name = 'events'
             ORDER BY partition_ordinal_position LIMIT 1",
        )
        .unwrap()
        .unwrap();
    let in_first: Vec<String> = conn
        .query(format!(
            "SELECT CAST(t AS CHAR) FROM events PARTITION ({first})"
        ))
        .unwrap();
    assert_eq!(in_first, ["1970-01-01 00:00:00"; 3]);
    let in_last: Vec<String> = conn
        .query("SELECT CAST(t AS CHAR) FROM events PARTITION (pLast)")
        .unwrap();
    assert_eq!(in_last, ["9999-12-31 23:59:59", "9999-12-31 23:59:59"]);
}

// --------------------------------------------------------------- decoding

#[test]
fn octal_escapes_invalid_utf8_and_crlf() {
    let s = Scratch::new();
    let db = prepared_db("rules_octal", &s);
    let mut bytes: Vec<u8> = Vec::new();
    bytes.extend_from_slice(
        br#"{"_n":"caf\351","_p":"Fran\303\247ois","_t":1400000000,"a":"Caf\303\251","b":"Frigidman\231","c":"\\303","d":"\\\303\251","e":"\303\251\231","f":"\360\237\230\200","g":"C:\134dir","h":"say \042hi\042","i":"a\201b","j":"a\012b","na\357ve":"k"}"#,
    );
    bytes.extend_from_slice(b"\r\n");
    // Raw bytes that are not UTF-8: a lone 0xFF, a truncated sequence.
    bytes.extend_from_slice(
        b"{\"_n\":\"raw\",\"_p\":\"raw\xc3\",\"_t\":1400000001,\"r\":\"x\xffy\"}\r\n",
    );
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(b"  \t\r\n");
    bytes.extend_from_slice(b"{\"_p\":\"crlf\",\"_t\":1400000002,\"last\":\"v\"}\r\n");
    let root = s.join("x");
    std::fs::create_dir_all(root.join("revisions")).unwrap();
    std::fs::write(root.join("revisions/1.json"), &bytes).unwrap();

    let out = import(&db, &s, &root, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 5),
            ("blank", 2),
            ("events", 2),
            ("property_sets", 1),
        ],
    );
    for (key, want) in [
        ("a", "Café"),
        ("b", "Frigidman™"),
        ("c", "\\303"),
        ("d", "\\é"),
        ("e", "Ã©™"),
        ("f", "😀"),
        ("g", "C:\\dir"),
        ("h", "say \"hi\""),
        ("i", "a\u{FFFD}b"),
        ("j", "a\nb"),
        ("naïve", "k"),
        ("r", "x\u{FFFD}y"),
        ("last", "v"),
    ] {
        assert_eq!(value_of(&db, key), hex(want), "value of {key:?}");
    }
    assert_eq!(
        events(&db)
            .into_iter()
            .map(|(u, e, _)| (u, e))
            .collect::<Vec<_>>(),
        [
            ("François".to_owned(), "café".to_owned()),
            ("raw\u{FFFD}".to_owned(), "raw".to_owned()),
        ]
    );
    assert!(users(&db).contains_key("crlf"));
}

// ---------------------------------------------------------------- rejects

#[test]
fn every_reject_reason_is_accounted_and_written_to_the_rejects_file() {
    let s = Scratch::new();
    let db = prepared_db("rules_rejects", &s);
    insert_names(&db, "ignored_users", &["boss@corp"]);
    insert_names(&db, "whitelisted_events", &["ok"]);
    let export = write_export(
        &s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"ok","_p":"a","_t":1400000000}"#,  // 1 event
                    "",                                         // 2 blank
                    r#"{"_n":"ok","_p":"a","_t":1400000000"#,   // 3 malformed
                    r#"["not","an","object"]"#,                 // 4 malformed
                    r#"{"_n":"ok","_p":"a","_t":1}garbage"#,    // 5 malformed
                    r#"{"_n":"ok","_t":1400000000}"#,           // 6 no_identity
                    r#"{"_n":"ok","_p":null,"_t":1400000000}"#, // 7 no_identity
                    r#"{"_n":"ok","_p":"","_t":"never"}"#,      // 8 no_identity (before _t)
                    r#"{"_n":"ok","_p":"a"}"#,                  // 9 bad_timestamp
                    r#"{"_n":"ok","_p":"a","_t":"x"}"#,         // 10 bad_timestamp
                ],
            ),
            (
                2,
                vec![
                    r#"{"_p":"a","_t":1400000000}"#,                   // 1 empty
                    r#"{"_p":"a","_t":1400000000,"k":null}"#,          // 2 empty
                    r#"{"_p":"a","_p2":"a","_t":1400000000}"#,         // 3 self_alias
                    r#"{"_p":"1","_p2":2,"_t":1400000000}"#,           // 4 numeric_alias
                    r#"{"_n":"no","_p":"a","_t":1400000000}"#,         // 5 not_whitelisted
                    r#"{"_n":"ok","_p":"boss@corp","_t":1400000000}"#, // 6 ignored_user
                    r#"{"_n":"no","_p":"boss@corp","_t":1400000000}"#, // 7 ignored_user first
                    r#"{"_p":"a","_t":1400000000,"k":"v"}"#,           // 8 property set
                    r#"{"_p":"a","_p2":"b","_t":1400000000}"#,         // 9 alias
                    "   ",                                             // 10 blank
                ],
            ),
        ],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 20),
            ("blank", 2),
            ("events", 1),
            ("property_sets", 1),
            ("aliases", 1),
            ("rejected", 15),
            ("malformed", 3),
            ("no_identity", 3),
            ("bad_timestamp", 2),
            ("empty", 2),
            ("self_alias", 1),
            ("numeric_alias", 1),
            ("not_whitelisted", 1),
            ("ignored_user", 2),
        ],
    );
    let listed: Vec<(u64, u64, String)> = rejects(&out)
        .into_iter()
        .map(|(r, l, why, _)| (r, l, why))
        .collect();
    let want: Vec<(u64, u64, String)> = [
        (1, 3, "malformed"),
        (1, 4, "malformed"),
        (1, 5, "malformed"),
        (1, 6, "no_identity"),
        (1, 7, "no_identity"),
        (1, 8, "no_identity"),
        (1, 9, "bad_timestamp"),
        (1, 10, "bad_timestamp"),
        (2, 1, "empty"),
        (2, 2, "empty"),
        (2, 3, "self_alias"),
        (2, 4, "numeric_alias"),
        (2, 5, "not_whitelisted"),
        (2, 6, "ignored_user"),
        (2, 7, "ignored_user"),
    ]
    .into_iter()
    .map(|(r, l, w)| (r, l, w.to_owned()))
    .collect();
    assert_eq!(listed, want);
    // The raw line is there too.
    assert_eq!(rejects(&out)[1].3, r#"["not","an","object"]"#);

    // The same accounting is stored with the import.
    assert_eq!(
        db.query_string(
            "SELECT CONCAT_WS(',', `lines`, blank, events, property_sets, aliases,
                    rejected_bad_timestamp, rejected_empty, rejected_ignored_user,
                    rejected_malformed, rejected_no_identity, rejected_not_whitelisted,
                    rejected_numeric_alias, rejected_self_alias) FROM kmdb_imports"
        ),
        "20,2,1,1,1,2,2,2,3,3,1,1,1"
    );
    // Rejected records leave no rows, not even users.
    assert_eq!(users(&db), map(&[("a", "a"), ("b", "a")]));
    assert_eq!(db.count("events"), 1);
}

// ------------------------------------------------------------ de-aliasing

#[test]
fn alias_chain_puts_every_event_on_the_numeric_user() {
    let s = Scratch::new();
    let db = prepared_db("rules_alias_chain", &s);
    let export = write_export(
        &s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"a","_p":"cookie","_t":1400000000,"pa":"1"}"#,
                    r#"{"_p":"cookie","_p2":"me@x.com","_t":1400000001}"#,
                    r#"{"_n":"b","_p":"me@x.com","_t":1400000002}"#,
                ],
            ),
            (
                2,
                vec![
                    r#"{"_p":"me@x.com","_p2":"42","_t":1400000003}"#,
                    r#"{"_n":"c","_p":"42","_t":1400000004}"#,
                    r#"{"_p":"cookie","_t":1400000005,"ps":"2"}"#,
                ],
            ),
        ],
    );
    import(&db, &s, &export, &[]);
    assert_eq!(
        events(&db)
            .into_iter()
            .map(|(u, e, _)| (u, e))
            .collect::<Vec<_>>(),
        [
            ("42".to_owned(), "a".to_owned()),
            ("42".to_owned(), "b".to_owned()),
            ("42".to_owned(), "c".to_owned()),
        ]
    );
    assert_eq!(
        column(
            &db,
            "SELECT DISTINCT CAST(u.name AS BINARY) FROM properties p JOIN users u ON u.id = p.user_id"
        ),
        ["42"]
    );
    assert_eq!(
        users(&db),
        map(&[("cookie", "42"), ("me@x.com", "42"), ("42", "42")])
    );
    assert_eq!(
        rows(&db, "SELECT name1, name2, applied FROM aliases ORDER BY id"),
        [["cookie", "me@x.com", "1"], ["42", "me@x.com", "1"]]
    );
}

#[test]
fn shared_browser_keeps_two_accounts() {
    let s = Scratch::new();
    let db = prepared_db("rules_shared_browser", &s);
    let export = write_export(
        &s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"early","_p":"c","_t":1400000000}"#,
                    r#"{"_p":"c","_p2":"100","_t":1400000001}"#,
                    r#"{"_n":"own","_p":"200","_t":1400000002}"#,
                    // Two groups holding a numeric id, joined through non-numeric names.
                    r#"{"_p":"x","_p2":"300","_t":1400000003}"#,
                    r#"{"_p":"400","_p2":"y","_t":1400000004}"#,
                ],
            ),
            (
                2,
                vec![
                    r#"{"_p":"c","_p2":"200","_t":1400000005}"#,
                    r#"{"_n":"late","_p":"c","_t":1400000006}"#,
                    r#"{"_p":"y","_p2":"x","_t":1400000007}"#,
                    r#"{"_n":"xy","_p":"x","_t":1400000008}"#,
                    r#"{"_n":"xy","_p":"y","_t":1400000009}"#,
                ],
            ),
        ],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(&out, &[("lines", 10), ("events", 5), ("aliases", 5)]);
    assert_eq!(
        rows(&db, "SELECT name1, name2, applied FROM aliases ORDER BY id"),
        [
            ["100", "c", "1"],
            ["300", "x", "1"],
            ["400", "y", "1"],
            ["200", "c", "0"],
            ["x", "y", "0"],
        ]
    );
    assert_eq!(
        users(&db),
        map(&[
            ("c", "100"),
            ("100", "100"),
            ("200", "200"),
            ("x", "300"),
            ("300", "300"),
            ("y", "400"),
            ("400", "400"),
        ])
    );
    assert_eq!(
        events(&db)
            .into_iter()
            .map(|(u, e, _)| (u, e))
            .collect::<Vec<_>>(),
        [
            ("100".to_owned(), "early".to_owned()),
            ("200".to_owned(), "own".to_owned()),
            ("100".to_owned(), "late".to_owned()),
            ("300".to_owned(), "xy".to_owned()),
            ("400".to_owned(), "xy".to_owned()),
        ]
    );
}

/// An export with events of two identities in revision 1 that later
/// revisions alias together, then to a numeric id.
fn later_alias_export(s: &Scratch) -> PathBuf {
    write_export(
        s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"a","_p":"email@x","_t":1400000000,"p":"1"}"#,
                    r#"{"_n":"b","_p":"cookie","_t":1400000001}"#,
                    r#"{"_p":"email@x","_t":1400000002,"q":"2"}"#,
                ],
            ),
            (
                2,
                vec![r#"{"_p":"cookie","_p2":"email@x","_t":1400000003}"#],
            ),
            (
                3,
                vec![
                    r#"{"_p":"77","_p2":"email@x","_t":1400000004}"#,
                    r#"{"_n":"c","_p":"cookie","_t":1400000005}"#,
                ],
            ),
        ],
    )
}

#[test]
fn a_later_alias_repoints_rows_of_earlier_imports() {
    let s = Scratch::new();
    let export = later_alias_export(&s);
    let split = prepared_db("rules_later_alias_split", &s);
    // The user of every event and property row, sorted.
    let user_of_rows = |db: &TestDb| {
        column(
            db,
            "SELECT CAST(u.name AS BINARY) AS n FROM events e JOIN users u ON u.id = e.user_id
             UNION ALL
             SELECT CAST(u.name AS BINARY) FROM properties p JOIN users u ON u.id = p.user_id
             ORDER BY n",
        )
    };

    import(&split, &s, &export, &["--max-revision", "1"]);
    assert_eq!(
        user_of_rows(&split),
        ["cookie", "email@x", "email@x", "email@x"]
    );
    assert_eq!(
        users(&split),
        map(&[("email@x", "email@x"), ("cookie", "cookie")])
    );

    import(&split, &s, &export, &["--max-revision", "2"]);
    assert_eq!(user_of_rows(&split), ["cookie"; 4]);
    assert_eq!(
        users(&split),
        map(&[("email@x", "cookie"), ("cookie", "cookie")])
    );

    import(&split, &s, &export, &[]);
    assert_eq!(user_of_rows(&split), ["77"; 5]);
    assert_eq!(
        users(&split),
        map(&[("email@x", "77"), ("cookie", "77"), ("77", "77")])
    );

    let s1 = Scratch::new();
    let one = prepared_db("rules_later_alias_one", &s1);
    import(&one, &s1, &export, &[]);
    assert_eq!(split.fingerprint(), one.fingerprint());
    assert_eq!(users(&split), users(&one));
    assert_eq!(key_strings(&split), key_strings(&one));
}

/// Revision 1: rows of `cookie` (and `cookie2`, aliased to it) and of
/// `keep`; revision 2 aliases `cookie2` to the ignored `boss@corp`.
fn later_ignore_export(s: &Scratch) -> PathBuf {
    write_export(
        s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"cookie event","_p":"cookie","_t":1400000000,"cp":"1"}"#,
                    r#"{"_p":"cookie","_t":1400000001,"set":"2"}"#,
                    r#"{"_p":"cookie","_p2":"cookie2","_t":1400000002}"#,
                    r#"{"_n":"shared","_p":"cookie2","_t":1400000003}"#,
                    r#"{"_n":"shared","_p":"keep","_t":1400000004,"kp":"3"}"#,
                ],
            ),
            (
                2,
                vec![r#"{"_p":"cookie2","_p2":"boss@corp","_t":1400000005}"#],
            ),
        ],
    )
}

#[test]
fn a_later_alias_to_an_ignored_user_deletes_rows_of_earlier_imports() {
    let s = Scratch::new();
    let export = later_ignore_export(&s);
    let split = prepared_db("rules_later_ignore_split", &s);
    insert_names(&split, "ignored_users", &["boss@corp"]);
    import(&split, &s, &export, &["--max-revision", "1"]);
    assert_eq!(split.count("events"), 3);
    assert_eq!(split.count("properties"), 3);
    assert_eq!(split.count("aliases"), 1);
    assert_eq!(split.count("users"), 3);

    let out = import(&split, &s, &export, &[]);
    assert_accounting(&out, &[("lines", 1), ("rejected", 1), ("ignored_user", 1)]);
    assert_eq!(users(&split), map(&[("keep", "keep")]));
    assert_eq!(
        events(&split),
        [(
            "keep".to_owned(),
            "shared".to_owned(),
            "2014-05-13 16:53:24".to_owned()
        )]
    );
    assert_eq!(split.count("properties"), 1);
    assert_eq!(split.count("aliases"), 0);

    // The one-shot import rejects them all as ignored_user.
    let s1 = Scratch::new();
    let one = prepared_db("rules_later_ignore_one", &s1);
    insert_names(&one, "ignored_users", &["boss@corp"]);
    let out = import(&one, &s1, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 6),
            ("events", 1),
            ("rejected", 5),
            ("ignored_user", 5),
        ],
    );
    assert_eq!(split.fingerprint(), one.fingerprint());
    assert_eq!(users(&split), users(&one));
}

#[test]
fn a_later_ignore_leaves_the_keys_of_a_one_shot_import() {
    let s = Scratch::new();
    let export = later_ignore_export(&s);
    let split = prepared_db("rules_later_ignore_keys_split", &s);
    insert_names(&split, "ignored_users", &["boss@corp"]);
    import(&split, &s, &export, &["--max-revision", "1"]);
    import(&split, &s, &export, &[]);
    let s1 = Scratch::new();
    let one = prepared_db("rules_later_ignore_keys_one", &s1);
    insert_names(&one, "ignored_users", &["boss@corp"]);
    import(&one, &s1, &export, &[]);
    assert_eq!(key_strings(&split), key_strings(&one));
}

#[test]
fn a_later_ignore_drops_users_named_only_by_an_unapplied_alias() {
    // `300` is named only by an alias that was not applied (c's group and
    // 300 both hold an account) and whose other side, c, is later ignored:
    // the one-shot import rejects that alias, so 300 has no users row there.
    // (`d` is named by such an alias too, but also by a stored one.)
    let s = Scratch::new();
    let export = write_export(
        &s,
        &[
            (
                1,
                vec![
                    r#"{"_p":"c","_p2":"100","_t":1400000000}"#,
                    r#"{"_p":"200","_p2":"d","_t":1400000001}"#,
                    r#"{"_p":"c","_p2":"d","_t":1400000002}"#,
                    r#"{"_p":"c","_p2":"300","_t":1400000002}"#,
                    r#"{"_n":"visit","_p":"c","_t":1400000003}"#,
                    r#"{"_n":"visit","_p":"keep","_t":1400000004}"#,
                ],
            ),
            (2, vec![r#"{"_p":"100","_p2":"boss@corp","_t":1400000005}"#]),
        ],
    );
    let split = prepared_db("rules_later_ignore_unapplied_split", &s);
    insert_names(&split, "ignored_users", &["boss@corp"]);
    import(&split, &s, &export, &["--max-revision", "1"]);
    assert_eq!(
        rows(
            &split,
            "SELECT name1, name2, applied FROM aliases ORDER BY id"
        ),
        [
            ["100", "c", "1"],
            ["200", "d", "1"],
            ["c", "d", "0"],
            ["300", "c", "0"]
        ]
    );
    import(&split, &s, &export, &[]);

    let s1 = Scratch::new();
    let one = prepared_db("rules_later_ignore_unapplied_one", &s1);
    insert_names(&one, "ignored_users", &["boss@corp"]);
    let out = import(&one, &s1, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 7),
            ("events", 1),
            ("aliases", 1),
            ("rejected", 5),
            ("ignored_user", 5),
        ],
    );
    assert_eq!(
        users(&one),
        map(&[("200", "200"), ("d", "200"), ("keep", "keep")])
    );
    assert_eq!(users(&split), users(&one));
    assert_eq!(split.fingerprint(), one.fingerprint());
}

#[test]
fn ids_do_not_depend_on_filters() {
    // "The same input line always gets the same ids": filters change which
    // rows are stored, never the ids of the rows that are.
    let s = Scratch::new();
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"a","_p":"u","_t":1400000000,"secret":"1","plan":"2"}"#,
                r#"{"_n":"b","_p":"u","_t":1400000001,"x":"3"}"#,
                r#"{"_p":"u","_t":1400000002,"secret":"4","city":"5"}"#,
                r#"{"_n":"a","_p":"u","_t":1400000003,"y":"6"}"#,
            ],
        )],
    );
    let ids = |db: &TestDb| {
        rows(
            db,
            "SELECT 'e', e.id, CAST(k.string AS BINARY) FROM events e JOIN `keys` k ON k.id = e.n
             UNION ALL
             SELECT 'p', p.id, p.value FROM properties p ORDER BY 1, 2",
        )
    };
    let plain = prepared_db("rules_ids_plain", &s);
    import(&plain, &s, &export, &[]);
    let s1 = Scratch::new();
    let filtered = prepared_db("rules_ids_filtered", &s1);
    insert_names(&filtered, "blacklisted_properties", &["secret"]);
    insert_names(&filtered, "whitelisted_events", &["a"]);
    import(&filtered, &s1, &export, &[]);

    let all = ids(&plain);
    let kept: Vec<Vec<String>> = all
        .iter()
        .filter(|r| !matches!(r[2].as_str(), "b" | "1" | "3" | "4"))
        .cloned()
        .collect();
    assert_eq!(all.len(), 9);
    assert_eq!(ids(&filtered), kept);
}

// ---------------------------------------------------------------- filters

#[test]
fn whitelist_limits_events_only() {
    let s = Scratch::new();
    let db = prepared_db("rules_whitelist", &s);
    insert_names(&db, "whitelisted_events", &["kept"]);
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"kept","_p":"a","_t":1400000000,"ep":"1"}"#,
                r#"{"_n":"dropped","_p":"a","_t":1400000001,"dp":"2"}"#,
                r#"{"_n":"dropped","_p":"only-dropped","_t":1400000002}"#,
                r#"{"_p":"b","_t":1400000003,"sp":"3"}"#,
                r#"{"_p":"a","_p2":"c","_t":1400000004}"#,
            ],
        )],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 5),
            ("events", 1),
            ("property_sets", 1),
            ("aliases", 1),
            ("rejected", 2),
            ("not_whitelisted", 2),
        ],
    );
    assert_eq!(
        column(
            &db,
            "SELECT CAST(string AS BINARY) FROM `keys` k JOIN events e ON e.n = k.id"
        ),
        ["kept"]
    );
    assert_eq!(values_of(&db, "ep"), [hex("1")]);
    assert!(values_of(&db, "dp").is_empty());
    assert_eq!(values_of(&db, "sp"), [hex("3")]);
    assert_eq!(db.count("aliases"), 1);
    // An identity named only by rejected records has no users row.
    assert_eq!(users(&db), map(&[("a", "a"), ("b", "b"), ("c", "a")]));
}

#[test]
fn blacklisted_property_is_dropped_but_its_record_stored() {
    let s = Scratch::new();
    let db = prepared_db("rules_blacklist", &s);
    insert_names(&db, "blacklisted_properties", &["secret"]);
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"signed up","_p":"a","_t":1400000000,"secret":"pw","plan":"gold"}"#,
                r#"{"_p":"a","_t":1400000001,"secret":"pw","city":"Paris"}"#,
                r#"{"_p":"b","_t":1400000002,"secret":"only"}"#,
                r#"{"_n":"no props","_p":"c","_t":1400000003,"secret":"pw"}"#,
            ],
        )],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(&out, &[("lines", 4), ("events", 2), ("property_sets", 2)]);
    assert_eq!(db.count("events"), 2);
    assert!(values_of(&db, "secret").is_empty());
    assert_eq!(values_of(&db, "plan"), [hex("gold")]);
    assert_eq!(values_of(&db, "city"), [hex("Paris")]);
    assert_eq!(db.count("properties"), 2);
    // The records are stored, so their identities are users.
    assert_eq!(users(&db), map(&[("a", "a"), ("b", "b"), ("c", "c")]));
}

#[test]
fn ignored_users_aliased_cookie_is_dropped() {
    let s = Scratch::new();
    let db = prepared_db("rules_ignored_cookie", &s);
    insert_names(&db, "ignored_users", &["boss@corp"]);
    let export = write_export(
        &s,
        &[
            (
                1,
                vec![
                    r#"{"_n":"visit","_p":"cookie","_t":1400000000,"p":"1"}"#,
                    r#"{"_p":"cookie","_t":1400000001,"q":"2"}"#,
                    r#"{"_n":"visit","_p":"other","_t":1400000002}"#,
                ],
            ),
            (
                2,
                vec![
                    r#"{"_p":"boss@corp","_p2":"cookie","_t":1400000003}"#,
                    r#"{"_n":"visit","_p":"boss@corp","_t":1400000004}"#,
                    // A third identity joining later is ignored too.
                    r#"{"_p":"cookie","_p2":"phone","_t":1400000005}"#,
                    r#"{"_n":"visit","_p":"phone","_t":1400000006}"#,
                ],
            ),
        ],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 7),
            ("events", 1),
            ("rejected", 6),
            ("ignored_user", 6),
        ],
    );
    assert_eq!(users(&db), map(&[("other", "other")]));
    assert_eq!(db.count("properties"), 0);
    assert_eq!(db.count("aliases"), 0);
}

#[test]
fn ignoring_does_not_cross_a_link_that_was_not_applied() {
    let s = Scratch::new();
    let db = prepared_db("rules_ignore_unapplied", &s);
    insert_names(&db, "ignored_users", &["boss@corp"]);
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_p":"boss@corp","_p2":"100","_t":1400000000}"#, // ignored_user, links
                r#"{"_p":"c","_p2":"200","_t":1400000001}"#,         // alias
                r#"{"_p":"c","_p2":"100","_t":1400000002}"#, // not applied; names an ignored group
                r#"{"_n":"visit","_p":"c","_t":1400000003}"#,
                r#"{"_n":"visit","_p":"200","_t":1400000004}"#,
                r#"{"_n":"visit","_p":"100","_t":1400000005}"#, // ignored_user
            ],
        )],
    );
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 6),
            ("events", 2),
            ("aliases", 1),
            ("rejected", 3),
            ("ignored_user", 3),
        ],
    );
    assert_eq!(users(&db), map(&[("c", "200"), ("200", "200")]));
    assert_eq!(
        column(
            &db,
            "SELECT CAST(u.name AS BINARY) FROM events e JOIN users u ON u.id = e.user_id"
        ),
        ["200", "200"]
    );
    assert_eq!(
        rows(&db, "SELECT name1, name2, applied FROM aliases"),
        [["200", "c", "1"]]
    );
}

#[test]
fn an_import_without_a_partition_plan_stores_every_date() {
    let s = Scratch::new();
    let db = TestDb::new("rules_no_partition_plan");
    Kmdb::new(Some(&db), s.path()).args(["setup"]).ok();
    let export = write_export(
        &s,
        &[(
            1,
            vec![
                r#"{"_n":"a","_p":"u","_t":0,"p":"1"}"#,
                r#"{"_n":"a","_p":"u","_t":1400000000}"#,
                r#"{"_p":"u","_p2":"v","_t":253402300799}"#,
            ],
        )],
    );
    import(&db, &s, &export, &[]);
    assert_eq!(
        column(
            &db,
            "SELECT CAST(t AS CHAR) AS t FROM events UNION ALL SELECT CAST(t AS CHAR) FROM properties
             UNION ALL SELECT CAST(t AS CHAR) FROM aliases ORDER BY t"
        ),
        [
            "1970-01-01 00:00:00",
            "1970-01-01 00:00:00",
            "2014-05-13 16:53:20",
            "9999-12-31 23:59:59"
        ]
    );
}

// ------------------------------------------------------------- duplicates

#[test]
fn duplicate_lines_are_two_rows_with_two_ids() {
    let s = Scratch::new();
    let db = prepared_db("rules_duplicates", &s);
    let event = r#"{"_n":"visit","_p":"a","_t":1400000000,"p":"1"}"#;
    let set = r#"{"_p":"a","_t":1400000000,"q":"2"}"#;
    let alias = r#"{"_p":"a","_p2":"b","_t":1400000000}"#;
    let text = format!("{event}\n{event}\n{set}\n{set}\n{alias}\n{alias}\n");
    let export = s.export("x", &[(1, &text)]);
    let out = import(&db, &s, &export, &[]);
    assert_accounting(
        &out,
        &[
            ("lines", 6),
            ("events", 2),
            ("property_sets", 2),
            ("aliases", 2),
        ],
    );
    for (table, n) in [("events", 2), ("properties", 4), ("aliases", 2)] {
        assert_eq!(
            db.query_string(&format!(
                "SELECT CONCAT(COUNT(*), ',', COUNT(DISTINCT id)) FROM {table}"
            )),
            format!("{n},{n}"),
            "{table}"
        );
    }
    // Each event keeps its own property.
    assert_eq!(
        db.query_string(
            "SELECT COUNT(DISTINCT p.event_id) FROM properties p JOIN events e ON e.id = p.event_id"
        ),
        "2"
    );
    assert_eq!(
        db.query_string("SELECT COALESCE(SUM(applied),0) FROM aliases"),
        "2"
    );

    // A re-run of the same import adds nothing.
    let before = db.fingerprint();
    let again = import(&db, &s, &export, &[]);
    assert!(!again.contains("imported revisions"), "{again}");
    assert_eq!(db.fingerprint(), before);
}

// ---------------------------------------------------- the rules fixture

fn assert_rules_answers(db: &TestDb) {
    let want = expected(&format!("{RULES}/expected.json"));
    let got = db.answers();
    assert_eq!(
        want.keys().collect::<BTreeSet<_>>(),
        got.keys().collect::<BTreeSet<_>>(),
        "expected.json answers every query of queries.json"
    );
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: want {v}, got {:?}", got.get(k)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn rules_fixture_gives_the_expected_answers() {
    let s = Scratch::new();
    let db = prepared_db("rules_fixture", &s);
    db.insert_filters(Path::new(&format!("{RULES}/filters.json")));
    let out = import(&db, &s, Path::new(RULES), &[]);

    let printed = printed_accounting(&out);
    assert_balanced(&printed, &out);
    assert_expected_accounting(&printed, &out, &format!("{RULES}/expected.json"));
    assert_eq!(rejects(&out).len() as u64, printed["rejected"]);
    assert_rules_answers(&db);
}

#[test]
fn rules_fixture_imported_revision_by_revision_gives_the_same_answers() {
    let s = Scratch::new();
    let db = prepared_db("rules_fixture_split", &s);
    db.insert_filters(Path::new(&format!("{RULES}/filters.json")));
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for max in ["1", "2", "3", "4"] {
        let out = import(&db, &s, Path::new(RULES), &["--max-revision", max]);
        for (k, n) in printed_accounting(&out) {
            *total.entry(k).or_default() += n;
        }
    }
    for (k, n) in expected_accounting(&format!("{RULES}/expected.json")) {
        assert_eq!(total.get(&k), Some(&n), "accounting {k}");
    }
    assert_rules_answers(&db);
}
