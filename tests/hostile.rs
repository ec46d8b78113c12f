//! Hostile text and hostile servers: text with every byte that TSV, SQL or
//! JSON treat specially survives the trip to MariaDB byte for byte; the
//! local-infile handler sends no file but the import's own; passwords never
//! leave the URL. (Hostile lines without a database: `tests/lines.rs`.)

mod util;

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kmdb::record::MAX_CHARS;
use kmdb::resolve::row_id;

use mysql::prelude::Queryable;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use util::*;

/// A database name of this test process: two runs of these tests at once on
/// one server (two people, or CI and a developer) must not drop each
/// other's databases.
fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

// ---------------------------------------------------------------------------
// Byte-exact round trip through MariaDB

/// Pieces of hostile text: TSV and `LOAD DATA` specials (tab, newline, CR,
/// backslash, NUL, `\N`), quotes, 4-byte UTF-8, combining marks, spaces,
/// text that looks like octal escapes or JSON escapes once written.
const ATOMS: &[&str] = &[
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\\",
    "\\\\",
    "\0",
    "\\N",
    "N",
    "\"",
    "'",
    "`",
    "😀",
    "𝄞",
    "👍🏽",
    "e\u{301}",
    "\u{301}",
    "\u{200d}",
    " ",
    "  ",
    "\u{a0}",
    "\u{3000}",
    "a",
    "Z",
    "_",
    "中",
    "é",
    "\u{7f}",
    "\u{1}",
    "\u{1f}",
    "\u{2028}",
    "\u{feff}",
    "\u{fffd}",
    "\u{10ffff}",
    "\\303\\251",
    "\\u00e9",
    "\\/",
    "%",
    ";",
    "--",
    "/*",
    "NULL",
    "\\0",
    "\\t",
    "\\n",
];

fn hostile(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ATOMS), min..max).prop_map(|v| v.concat())
}

/// A property value and the text kmdb must store for it (before the cut).
#[derive(Clone, Debug)]
enum Value {
    Str(String),
    /// Raw JSON written into the line, and the compact text expected.
    Raw(String, String),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => hostile(0, 300).prop_map(Value::Str),
        1 => (hostile(0, 20), hostile(0, 20)).prop_map(|(a, b)| {
            let (a, b) = (json_str(&a), json_str(&b));
            Value::Raw(
                format!("[ {a} , 1.50 ,true, null,{{ \"k\" : {b} }} ]"),
                format!("[{a},1.50,true,null,{{\"k\":{b}}}]"),
            )
        }),
        1 => prop::sample::select(&["1.50", "-0", "1e999999", "-12.5E+3", "true", "false"][..])
            .prop_map(|n| Value::Raw(n.to_string(), n.to_string())),
    ]
}

#[derive(Clone, Debug)]
enum Line {
    Event {
        identity: String,
        name: String,
        props: Vec<(String, Value)>,
        escape_all: bool,
    },
    Alias {
        a: String,
        b: String,
        escape_all: bool,
    },
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        5 => (
            hostile(1, 300),
            hostile(1, 300),
            prop::collection::vec((hostile(1, 40), value()), 0..4),
            any::<bool>()
        )
            .prop_map(|(id, name, props, escape_all)| Line::Event {
                // Event identities start with E, alias ones with A: aliases
                // never merge the users the events are checked against.
                identity: format!("E{id}"),
                name,
                props,
                escape_all,
            }),
        1 => (hostile(1, 280), hostile(1, 280), any::<bool>()).prop_map(|(a, b, escape_all)| {
            Line::Alias {
                a: format!("A{a}"),
                b: format!("A{b}"),
                escape_all,
            }
        }),
    ]
}

/// A JSON string literal, as a serializer writes it.
fn json_str(s: &str) -> String {
    sonic_rs::to_string(s).unwrap()
}

/// A JSON string literal with every non-ASCII character and every control
/// character written as `\uXXXX` (surrogate pairs beyond the BMP).
fn json_str_escaped(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", u));
                }
            }
        }
    }
    out.push('"');
    out
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_CHARS).collect()
}

/// Writes one export line.
fn write_line(l: &Line, t: i64) -> String {
    match l {
        Line::Event {
            identity,
            name,
            props,
            escape_all,
        } => {
            let q = if *escape_all {
                json_str_escaped
            } else {
                json_str
            };
            let mut s = format!("{{\"_n\":{},\"_p\":{},\"_t\":{t}", q(name), q(identity));
            for (k, v) in props {
                let v = match v {
                    Value::Str(v) => q(v),
                    Value::Raw(raw, _) => raw.clone(),
                };
                s.push_str(&format!(",{}:{v}", q(k)));
            }
            s.push('}');
            s
        }
        Line::Alias { a, b, escape_all } => {
            let q = if *escape_all {
                json_str_escaped
            } else {
                json_str
            };
            format!("{{\"_p\":{},\"_p2\":{},\"_t\":{t}}}", q(a), q(b))
        }
    }
}

/// The properties kmdb must store for an event: keys cut, the last value of
/// a repeated key in the place of the first.
fn expected_props(props: &[(String, Value)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in props {
        let k = cut(k);
        let v = cut(match v {
            Value::Str(s) => s,
            Value::Raw(_, compact) => compact,
        });
        match out.iter().position(|(ok, _)| *ok == k) {
            Some(i) => out[i].1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// The bytes of a `HEX()` the harness read (`NULL` as `<NULL>`).
fn unhex(h: &str) -> Vec<u8> {
    if h == "NULL" {
        return b"<NULL>".to_vec();
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// The lines as the test target stores their texts: U+0000 is U+FFFD on
/// PostgreSQL (SPEC §8).
fn as_stored(db: &TestDb, lines: &[Line]) -> Vec<Line> {
    let s = |t: &String| {
        if db.is_postgres() {
            t.replace('\0', "\u{FFFD}")
        } else {
            t.clone()
        }
    };
    lines
        .iter()
        .map(|l| match l {
            Line::Event {
                identity,
                name,
                props,
                escape_all,
            } => Line::Event {
                identity: s(identity),
                name: s(name),
                props: props
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Str(x) => Value::Str(s(x)),
                            Value::Raw(r, c) if db.is_postgres() => {
                                // Kept as written, `\u0000` escapes too: they
                                // read as `\ufffd`.
                                let c = kmdb::format::nul::replace_nul(c).into_owned();
                                Value::Raw(r.clone(), c)
                            }
                            Value::Raw(r, c) => Value::Raw(r.clone(), c.clone()),
                        };
                        (s(k), v)
                    })
                    .collect(),
                escape_all: *escape_all,
            },
            Line::Alias { a, b, escape_all } => Line::Alias {
                a: s(a),
                b: s(b),
                escape_all: *escape_all,
            },
        })
        .collect()
}

/// `(name, value)` rows, as stored bytes.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Checks one imported revision against the lines written.
fn check_revision(db: &TestDb, revision: u64, lines: &[Line]) -> Result<(), TestCaseError> {
    let lines = &as_stored(db, lines)[..];
    let lo = row_id(revision, 0);
    let hi = row_id(revision + 1, 0);
    let triples = |sql: &str| -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        db.rows(
            &sql.replace("{lo}", &lo.to_string())
                .replace("{hi}", &hi.to_string()),
        )
        .into_iter()
        .map(|r| (r[0].parse().unwrap_or(0), unhex(&r[1]), unhex(&r[2])))
        .collect()
    };
    let events: HashMap<u64, (Vec<u8>, Vec<u8>)> = triples(
        "SELECT e.id, HEX(k.string), HEX(u.name) FROM events e \
         JOIN `keys` k ON k.id = e.n JOIN users u ON u.id = e.user_id \
         WHERE e.id >= {lo} AND e.id < {hi}",
    )
    .into_iter()
    .map(|(id, k, u)| (id, (k, u)))
    .collect();
    let mut props: HashMap<u64, Pairs> = HashMap::new();
    let rows = triples(
        "SELECT COALESCE(p.event_id, 0), HEX(k.string), HEX(p.value) FROM properties p \
         JOIN `keys` k ON k.id = p.`key` WHERE p.id >= {lo} AND p.id < {hi} ORDER BY p.id",
    );
    for (e, k, v) in rows {
        props.entry(e).or_default().push((k, v));
    }
    let aliases: HashMap<u64, (Vec<u8>, Vec<u8>)> =
        triples("SELECT id, HEX(name1), HEX(name2) FROM aliases WHERE id >= {lo} AND id < {hi}")
            .into_iter()
            .map(|(id, a, b)| (id, (a, b)))
            .collect();
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let mut expected_aliases = 0;
    for (i, l) in lines.iter().enumerate() {
        let id = row_id(revision, i as u64 + 1);
        match l {
            Line::Event {
                identity,
                name,
                props: p,
                ..
            } => {
                let got = events
                    .get(&id)
                    .ok_or_else(|| TestCaseError::fail(format!("line {} not stored", i + 1)))?;
                prop_assert_eq!(
                    show(&got.0),
                    show(cut(name).as_bytes()),
                    "event name, line {}",
                    i + 1
                );
                prop_assert_eq!(
                    show(&got.1),
                    show(cut(identity).as_bytes()),
                    "identity, line {}",
                    i + 1
                );
                let want: Vec<(String, String)> = expected_props(p);
                let got: Vec<(String, String)> = props
                    .get(&id)
                    .map(|v| v.iter().map(|(k, v)| (show(k), show(v))).collect())
                    .unwrap_or_default();
                let want: Vec<(String, String)> = want
                    .iter()
                    .map(|(k, v)| (show(k.as_bytes()), show(v.as_bytes())))
                    .collect();
                prop_assert_eq!(got, want, "properties, line {}", i + 1);
            }
            Line::Alias { a, b, .. } => {
                let (a, b) = (cut(a), cut(b));
                if a == b {
                    prop_assert!(
                        !aliases.contains_key(&id),
                        "self alias stored, line {}",
                        i + 1
                    );
                    continue;
                }
                expected_aliases += 1;
                let (n1, n2) = if a.as_bytes() <= b.as_bytes() {
                    (a, b)
                } else {
                    (b, a)
                };
                let got = aliases.get(&id).ok_or_else(|| {
                    TestCaseError::fail(format!("alias line {} not stored", i + 1))
                })?;
                prop_assert_eq!(
                    show(&got.0),
                    show(n1.as_bytes()),
                    "alias name1, line {}",
                    i + 1
                );
                prop_assert_eq!(
                    show(&got.1),
                    show(n2.as_bytes()),
                    "alias name2, line {}",
                    i + 1
                );
            }
        }
    }
    prop_assert_eq!(aliases.len(), expected_aliases);
    prop_assert_eq!(
        events.len(),
        lines
            .iter()
            .filter(|l| matches!(l, Line::Event { .. }))
            .count()
    );
    Ok(())
}

/// Random hostile strings as event names, identities, property keys and
/// values and alias names, written as JSON (by a serializer, or with every
/// non-ASCII character as `\u` escapes), imported by kmdb and read back from
/// MariaDB byte for byte (after the cut to 255 characters). Each case is one
/// import of 64 lines, as a new revision on top of the earlier cases.
#[test]
fn hostile_text_round_trips_through_mariadb_byte_exact() {
    let s = Scratch::new();
    let db = prepared_db(&unique("hostile_roundtrip"), &s);
    let export = s.join("export");
    std::fs::create_dir_all(export.join("revisions")).unwrap();
    let revision = Cell::new(0u64);
    let mut runner = TestRunner::new(Config {
        cases: 6,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(line(), 64), |lines| {
        let rev = revision.get() + 1;
        revision.set(rev);
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| write_line(l, 1_400_000_000 + (rev as i64) * 1000 + i as i64) + "\n")
            .collect();
        std::fs::write(export.join("revisions").join(format!("{rev}.json")), text).unwrap();
        let out = import(&db, &s, &export, &[]);
        let acc = printed_accounting(&out);
        prop_assert_eq!(acc.get("lines").copied(), Some(64), "{}", out);
        check_revision(&db, rev, &lines)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The state store kept the hostile identities exactly too: a last
    // import of the same lines under another revision maps them to the
    // same users.
    let users_before = db.count("users");
    let first = std::fs::read(export.join("revisions/1.json")).unwrap();
    let rev = revision.get() + 1;
    std::fs::write(export.join("revisions").join(format!("{rev}.json")), first).unwrap();
    import(&db, &s, &export, &[]);
    assert_eq!(db.count("users"), users_before, "identities matched again");
}

// ---------------------------------------------------------------------------
// The local-infile handler

#[test]
fn local_infile_handler_sends_only_allowed_files() {
    // MySQL's LOAD DATA LOCAL; PostgreSQL's COPY FROM STDIN asks for no file.
    mysql_only!();
    let s = Scratch::new();
    let db = TestDb::new(&unique("hostile_infile"));
    let url = kmdb::db::DatabaseUrl::parse(&db.url).unwrap();
    let allow = Arc::new(kmdb::db::mysql::InfileAllowlist::default());
    let ok_file = s.join("rows.tsv");
    std::fs::write(&ok_file, "allowed\n").unwrap();
    let other = s.join("other.tsv");
    std::fs::write(&other, "secret\n").unwrap();
    allow.allow(&ok_file);
    let mut conn = kmdb::db::mysql::connect(&url, Some(allow.clone())).unwrap();
    conn.query_drop("CREATE TABLE t (s VARCHAR(255))").unwrap();

    let sql_for = |p: &str| {
        format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE t",
            p.replace('\\', "\\\\").replace('\'', "\\'")
        )
    };
    let ok_path = ok_file.display().to_string();
    let dir = s.path().display().to_string();
    let refused = [
        "/etc/passwd".to_string(),
        "/proc/self/environ".to_string(),
        other.display().to_string(),
        format!(
            "{dir}/../{}/rows.tsv",
            s.path().file_name().unwrap().to_string_lossy()
        ),
        format!("{ok_path}.bak"),
        "rows.tsv".to_string(),
    ];
    for path in &refused {
        let mut c = kmdb::db::mysql::connect(&url, Some(allow.clone())).unwrap();
        let err = c
            .query_drop(sql_for(path))
            .expect_err(&format!("the server got {path:?}"));
        let msg = err.to_string();
        assert!(
            msg.contains("refuses to send"),
            "{path:?}: expected kmdb's refusal, got: {msg}"
        );
    }
    assert_eq!(db.count("t"), 0, "nothing of a refused file arrived");

    // The allowed file loads, on a session that refused one before.
    let _ = conn.query_drop(sql_for("/etc/passwd"));
    let mut conn = match conn.query_drop("SELECT 1") {
        Ok(()) => conn,
        Err(_) => kmdb::db::mysql::connect(&url, Some(allow.clone())).unwrap(),
    };
    conn.query_drop(sql_for(&ok_path)).unwrap();
    assert_eq!(db.query_string("SELECT GROUP_CONCAT(s) FROM t"), "allowed");

    // Revoked: refused again.
    allow.revoke(&ok_file);
    let err = kmdb::db::mysql::connect(&url, Some(allow.clone()))
        .unwrap()
        .query_drop(sql_for(&ok_path))
        .unwrap_err();
    assert!(err.to_string().contains("refuses to send"), "{err}");
    assert_eq!(db.count("t"), 1);

    // A session opened without an allowlist (setup, status, ...) sends
    // nothing either: the driver answers with an empty file.
    let mut bare = kmdb::db::mysql::connect(&url, None).unwrap();
    let _ = bare.query_drop(sql_for("/etc/passwd"));
    assert_eq!(db.count("t"), 1);
}

// ---------------------------------------------------------------------------
// Passwords

const SECRET: &str = "pw-Zx9-secret";

/// Every file under `dir` (recursively) with its bytes.
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Admin statement outside any test database.
fn admin(sql: &str) {
    let mut c = mysql::Conn::new(mysql::Opts::from_url(&base_url()).unwrap()).unwrap();
    c.query_drop(sql).unwrap();
}

#[test]
fn passwords_never_appear_in_output_state_rejects_or_work_dir() {
    // A MySQL user of its own; tests/postgres.rs has PostgreSQL's URLs.
    mysql_only!();
    let s = Scratch::new();
    let export = s.export(
        "export",
        &[
            (
                1,
                "{\"_n\":\"signed up\",\"_p\":\"jane\",\"_t\":1400000000,\"Plan\":\"gold\"}\n\
                 not json at all\n\
                 {\"_p\":\"jane\",\"_p2\":\"42\",\"_t\":1400000001}\n",
            ),
            (
                2,
                "{\"_n\":\"billed\",\"_p\":\"42\",\"_t\":1400000100}\n{\"_t\":1}\n",
            ),
        ],
    );
    let opts = mysql::Opts::from_url(&base_url()).unwrap();
    let (host, port) = (opts.get_ip_or_hostname().to_string(), opts.get_tcp_port());
    let db = TestDb::new(&unique("hostile_password"));
    let user = unique("kmdb_pw");
    let user = user.as_str();
    admin(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    admin(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'"
    ));
    admin(&format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", db.name));
    struct DropUser(String);
    impl Drop for DropUser {
        fn drop(&mut self) {
            let sql = format!("DROP USER IF EXISTS '{}'@'%'", self.0);
            let _ = std::panic::catch_unwind(|| admin(&sql));
        }
    }
    let _drop_user = DropUser(user.to_string());

    let urls = [
        (
            "wrong port",
            format!("mysql://{user}:{SECRET}@127.0.0.1:1/{}", db.name),
            false,
        ),
        (
            "wrong port, %-encoded password",
            format!("mysql://{user}:pw-Zx9%2Dsecret@127.0.0.1:1/{}", db.name),
            false,
        ),
        (
            "wrong password",
            format!("mysql://kmdb:{SECRET}@{host}:{port}/{}", db.name),
            false,
        ),
        (
            "right password",
            format!("mysql://{user}:{SECRET}@{host}:{port}/{}", db.name),
            true,
        ),
    ];
    let state = s.join("state.sqlite");
    let work = s.join("work");
    let mut seen = Vec::new();
    for (what, url, works) in &urls {
        let runs: Vec<Vec<String>> = vec![
            vec!["setup".into()],
            vec![
                "partition".into(),
                "--min-date".into(),
                "2014-01-01".into(),
                "--max-date".into(),
                "2014-12-01".into(),
                "--days-per-partition".into(),
                "30".into(),
            ],
            vec![
                "import".into(),
                export.display().to_string(),
                "--state".into(),
                state.display().to_string(),
                "--work-dir".into(),
                work.display().to_string(),
            ],
            vec![
                "status".into(),
                "--state".into(),
                state.display().to_string(),
            ],
            // As an argument too (not only from the environment).
            vec!["status".into(), "--database-url".into(), url.clone()],
        ];
        for args in runs {
            let mut k = Kmdb::new(None, s.path()).env("DATABASE_URL", url);
            k = k.args(&args);
            let out = k.output();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.status.success(),
                *works,
                "{what}: kmdb {} -> {}:\n{text}",
                args[0],
                out.status
            );
            if !works {
                assert!(text.contains("kmdb: error:"), "{what}: {text}");
            }
            for needle in [SECRET, "Zx9"] {
                assert!(
                    !contains(&out.stdout, needle) && !contains(&out.stderr, needle),
                    "{what}: kmdb {} shows the password:\n{text}",
                    args[0]
                );
            }
            seen.push(format!(
                "{what} / {}: {}",
                args[0],
                text.lines().last().unwrap_or("")
            ));
        }
    }
    println!("{}", seen.join("\n"));
    // The right password imported, with rejects.
    assert_eq!(db.count("events"), 2);
    let mut files = Vec::new();
    files_under(&work, &mut files);
    files_under(s.path(), &mut files);
    assert!(
        files.iter().any(|(p, _)| p.contains("rejects-")),
        "a rejects file was written: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(files.iter().any(|(p, _)| p.ends_with("state.sqlite")));
    for (path, bytes) in &files {
        assert!(!contains(bytes, SECRET), "{path} holds the password");
        assert!(!contains(bytes, "Zx9"), "{path} holds the password");
    }
    // Nor does the database itself (kmdb_imports, kmdb_meta).
    for table in ["kmdb_imports", "kmdb_meta"] {
        let rows: Vec<mysql::Row> = db.conn().query(format!("SELECT * FROM {table}")).unwrap();
        for r in rows {
            let text = format!("{r:?}");
            assert!(!text.contains("Zx9"), "{table}: {text}");
        }
    }
}
