//! Lines longer than the reader's chunk (about 1 MB), from plain and gzip
//! revision files, loaded into the real MariaDB: whole, accounted for, and
//! their texts cut to 255 characters (SPEC §1-3).

mod util;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use util::*;

/// Longer than the chunk the reader cuts files into (1 MiB).
const LONG: usize = 2 << 20;

/// `kmdb import -q SOURCE`, failing the test rather than hanging it when
/// the import does not finish in time (a reader that loops never does).
fn import_within(db: &TestDb, s: &Scratch, source: &Path) -> String {
    let mut child = Kmdb::new(Some(db), s.path())
        .args(["import", "-q"])
        .arg_path(source)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kmdb");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).ok();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(300) {
            child.kill().ok();
            child.wait().ok();
            panic!("kmdb import did not finish in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "kmdb import failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

/// Writes `revisions/N.json` or `N.json.gz` of the export at `root`.
fn write_revision(root: &Path, revision: u64, gzip: bool, lines: &[Vec<u8>]) -> PathBuf {
    let dir = root.join("revisions");
    std::fs::create_dir_all(&dir).unwrap();
    let text: Vec<u8> = lines
        .iter()
        .flat_map(|l| [&l[..], b"\n"].concat())
        .collect();
    let path = dir.join(format!("{revision}.json{}", if gzip { ".gz" } else { "" }));
    let mut f = std::fs::File::create(&path).unwrap();
    if gzip {
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        gz.finish().unwrap();
    } else {
        f.write_all(&text).unwrap();
    }
    path
}

fn event(identity: &str, t: u64, props: &str) -> Vec<u8> {
    format!(r#"{{"_n":"visit","_p":"{identity}","_t":{t}{props}}}"#).into_bytes()
}

/// `text` repeated to at least `len` bytes.
fn repeated(text: &str, len: usize) -> String {
    text.repeat(len.div_ceil(text.len()))
}

/// The first 255 characters of `s`.
fn cut(s: &str) -> String {
    s.chars().take(255).collect()
}

/// `(identity, key, value)` of every stored property, in id order.
fn properties(db: &TestDb) -> Vec<(String, String, String)> {
    db.conn()
        .query_map(
            "SELECT u.name, k.string, p.value FROM properties p
             JOIN users u ON u.id = p.user_id JOIN `keys` k ON k.id = p.`key`
             ORDER BY p.id",
            |(u, k, v): (Vec<u8>, Vec<u8>, Vec<u8>)| {
                let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
                (text(u), text(k), text(v))
            },
        )
        .unwrap()
}

/// An event whose value is 2 MB, in a gzip revision and in a plain one,
/// between short lines: every line loads, the value cut to 255 characters.
/// (The gzip reader used to loop forever on a line longer than its chunk.)
#[test]
fn a_line_longer_than_a_chunk_loads_from_gzip_and_plain_files() {
    let s = Scratch::new();
    let db = prepared_db("long_line", &s);
    // Multi-byte characters: the cut counts characters, not bytes.
    let value = repeated("été 😀 ", LONG);
    assert!(value.len() >= LONG);
    let root = s.join("export");
    for (revision, gzip) in [(1, true), (2, false)] {
        let who = format!("u{revision}");
        let lines = [
            event(&who, 1_400_000_000, r#","before":"1""#),
            event(&who, 1_400_000_001, &format!(r#","big":"{value}""#)),
            event(&who, 1_400_000_002, r#","after":"2""#),
        ];
        write_revision(&root, revision, gzip, &lines);
    }
    let out = import_within(&db, &s, &root);
    let acc = printed_accounting(&out);
    assert_eq!(acc.get("lines"), Some(&6), "{out}");
    assert_eq!(acc.get("events"), Some(&6), "{out}");
    assert_eq!(acc.get("rejected"), Some(&0), "{out}");
    let cut_value = cut(&value);
    assert_eq!(cut_value.chars().count(), 255);
    let mut want = Vec::new();
    for who in ["u1", "u2"] {
        want.push((who.to_owned(), "before".to_owned(), "1".to_owned()));
        want.push((who.to_owned(), "big".to_owned(), cut_value.clone()));
        want.push((who.to_owned(), "after".to_owned(), "2".to_owned()));
    }
    assert!(properties(&db) == want, "{:?}", properties(&db));
    let times: Vec<String> = db
        .conn()
        .query("SELECT CAST(t AS CHAR) FROM events ORDER BY id")
        .unwrap();
    assert_eq!(
        times,
        [
            "2014-05-13 16:53:20",
            "2014-05-13 16:53:21",
            "2014-05-13 16:53:22",
            "2014-05-13 16:53:20",
            "2014-05-13 16:53:21",
            "2014-05-13 16:53:22"
        ]
    );
}

/// The other shapes of a long line, each 2 MB, from gzip: octal escapes,
/// JSON escapes, raw invalid UTF-8, a nested array, a long identity and
/// event name, an alias between long identities, and a malformed line,
/// which the rejects file holds whole.
#[test]
fn long_lines_of_every_shape_are_cut_or_rejected_whole() {
    let s = Scratch::new();
    let db = prepared_db("long_shapes", &s);
    let octal = repeated(r"Caf\303\251 ", LONG);
    let escaped = repeated(r#"say \"hi\"\n\u00e9 "#, LONG);
    let mut invalid = repeated("ab", LONG / 2).into_bytes();
    invalid.extend(std::iter::repeat_n(0xff_u8, LONG / 2));
    let items = repeated(r#"[1, "x", {"a": [2]}], "#, LONG);
    let long_id = repeated("id-é-", LONG);
    let long_name = repeated("name ", LONG);
    let malformed = format!(
        r#"{{"_n":"visit","_p":"m","_t":1,"v":"{}" oops"#,
        repeated("m", LONG)
    );
    let lines = [
        event("o", 1_400_000_000, &format!(r#","v":"{octal}""#)),
        event("e", 1_400_000_000, &format!(r#","v":"{escaped}""#)),
        [
            &br#"{"_n":"visit","_p":"i","_t":1400000000,"v":""#[..],
            &invalid,
            b"\"}",
        ]
        .concat(),
        event("a", 1_400_000_000, &format!(r#", "v":[{items} 0]"#)),
        format!(r#"{{"_n":"{long_name}","_p":"{long_id}","_t":1400000000,"k":"1"}}"#).into_bytes(),
        format!(
            r#"{{"_p":"{long_id}","_p2":"{}","_t":1400000000}}"#,
            repeated("other-", LONG)
        )
        .into_bytes(),
        malformed.clone().into_bytes(),
        event("z", 1_400_000_000, r#","v":"last""#),
    ];
    let root = s.join("export");
    write_revision(&root, 1, true, &lines);
    let out = import_within(&db, &s, &root);
    let acc = printed_accounting(&out);
    assert_eq!(acc.get("lines"), Some(&8), "{out}");
    assert_eq!(acc.get("events"), Some(&6), "{out}");
    assert_eq!(acc.get("aliases"), Some(&1), "{out}");
    assert_eq!(acc.get("malformed"), Some(&1), "{out}");

    let id = cut(&long_id);
    // No spaces inside the array's strings: compact JSON drops them all.
    let compact = cut(&format!("[{items} 0]").replace(' ', ""));
    let want = [
        (
            "o".to_owned(),
            "v".to_owned(),
            cut(&repeated("Café ", LONG)),
        ),
        (
            "e".to_owned(),
            "v".to_owned(),
            cut(&repeated("say \"hi\"\né ", LONG)),
        ),
        ("i".to_owned(), "v".to_owned(), cut(&repeated("ab", LONG))),
        ("a".to_owned(), "v".to_owned(), compact),
        (id.clone(), "k".to_owned(), "1".to_owned()),
        ("z".to_owned(), "v".to_owned(), "last".to_owned()),
    ];
    assert!(properties(&db) == want, "{:#?}", properties(&db));
    let name: Vec<Vec<u8>> = db
        .conn()
        .query(
            "SELECT k.string FROM events e JOIN `keys` k ON k.id = e.n WHERE e.id = (1 << 40) | 5",
        )
        .unwrap();
    assert_eq!(name, [cut(&long_name).into_bytes()]);
    let alias: Vec<(Vec<u8>, Vec<u8>)> =
        db.conn().query("SELECT name1, name2 FROM aliases").unwrap();
    assert_eq!(
        alias,
        [(id.into_bytes(), cut(&repeated("other-", LONG)).into_bytes())]
    );

    // The rejects file holds the malformed line whole.
    let rejects: Vec<PathBuf> = std::fs::read_dir(s.join("kmdb-work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rejects-")
        })
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let text = std::fs::read_to_string(&rejects[0]).unwrap();
    assert_eq!(
        text,
        format!("revision\tline\treason\ttext\n1\t7\tmalformed\t{malformed}\n")
    );
}
