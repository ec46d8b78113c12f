//! `kmdb import s3://…` end to end: the real binary against a local S3 server (moto) and the
//! real MariaDB. An import from S3 must give exactly the database that an import of the same
//! files from a local directory gives, however it is split, interrupted or repeated.
//!
//! Needs `KMDB_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:25000`, see scripts/s3-server.sh);
//! tests print a note and return when it is unset (scripts/test.sh always sets it).
//! Credentials are `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION` from the
//! environment, `test` / `test` / `us-east-1` when unset (moto accepts anything).

mod util;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;

use util::s3::*;
use util::*;

// ---------------------------------------------------------------------------
// S3 helpers

/// The real binary with S3 credentials in its environment.
fn kmdb(db: Option<&TestDb>, cwd: &Path) -> Kmdb {
    let mut k = Kmdb::new(db, cwd);
    for (key, default) in AWS_DEFAULTS {
        k = k.env(key, &aws_var(key, default));
    }
    k
}

/// `kmdb import -q SOURCE --endpoint-url EP EXTRA…` in the scratch dir; returns stdout.
fn s3_import(db: &TestDb, s: &Scratch, source: &str, ep: &str, extra: &[&str]) -> String {
    kmdb(Some(db), s.path())
        .args(["import", "-q", source, "--endpoint-url", ep])
        .args(extra)
        .ok()
}

/// The `imported revisions A .. B` line of an import's stdout, cut before the timing.
fn imported_range(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.starts_with("imported revisions "))
        .map(|l| l.split(" in ").next().unwrap().to_string())
}

/// File names in `dir` (empty when it does not exist).
fn names_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn assert_same_db(a: &TestDb, b: &TestDb) {
    let (fa, fb) = (a.fingerprint(), b.fingerprint());
    for (k, v) in &fa {
        assert_eq!(
            Some(v),
            fb.get(k),
            "{k} differs between {} and {}",
            a.name,
            b.name
        );
    }
    assert_eq!(fa, fb);
}

// ---------------------------------------------------------------------------
// Exports

/// The conformance export's files as objects under `prefix` (`""` or ending in `/`).
fn conformance_objects(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(CONFORMANCE).join("export");
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("revisions")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        out.push((
            format!("{prefix}revisions/{name}"),
            std::fs::read(e.path()).unwrap(),
        ));
    }
    assert_eq!(out.len(), 6, "the conformance export has 6 revision files");
    for name in ["index.csv", "status.csv"] {
        out.push((
            format!("{prefix}{name}"),
            std::fs::read(root.join(name)).unwrap(),
        ));
    }
    out
}

fn conformance_file(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(CONFORMANCE).join("export/revisions").join(name)).unwrap()
}

/// A small deterministic revision: two events (one by a known user `u{n%50}`, one by the
/// cookie `visitor{n}`), a property set, in every 4th revision an alias tying the cookie of
/// revision n-3 to a user (so aliases arrive after the events they re-point), in every 25th
/// a numeric account id (some of whose links are refused), in every 100th a malformed line.
struct Revision {
    n: u64,
    text: String,
    events: u64,
    aliases: u64,
}

fn revision(n: u64) -> Revision {
    let t = 1_400_000_000 + n * 3_600;
    let mut text = String::new();
    let mut aliases = 0;
    text += &format!(
        "{{\"_n\":\"ev{}\",\"_p\":\"u{}\",\"_t\":{t},\"rev\":\"{n}\",\"amount\":{}}}\n",
        n % 7,
        n % 50,
        n % 97
    );
    text += &format!(
        "{{\"_n\":\"visit\",\"_p\":\"visitor{n}\",\"_t\":{},\"page\":\"/p{}\"}}\n",
        t + 1,
        n % 13
    );
    text += &format!(
        "{{\"_p\":\"u{}\",\"_t\":{},\"plan\":\"p{}\"}}\n",
        (n + 1) % 50,
        t + 2,
        n % 3
    );
    if n % 4 == 0 && n > 3 {
        text += &format!(
            "{{\"_p\":\"u{}\",\"_p2\":\"visitor{}\",\"_t\":{}}}\n",
            n % 50,
            n - 3,
            t + 3
        );
        aliases += 1;
    }
    if n % 25 == 0 {
        text += &format!(
            "{{\"_p\":\"{}\",\"_p2\":\"u{}\",\"_t\":{}}}\n",
            1000 + n % 7,
            n % 50,
            t + 4
        );
        aliases += 1;
    }
    if n % 100 == 0 {
        text += "{not json\n\n";
    }
    Revision {
        n,
        text,
        events: 2,
        aliases,
    }
}

impl Revision {
    /// `N.json`, or `N.json.gz` for every third revision.
    fn file(&self) -> (String, Vec<u8>) {
        if self.n % 3 == 0 {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(self.text.as_bytes()).unwrap();
            (format!("{}.json.gz", self.n), gz.finish().unwrap())
        } else {
            (format!("{}.json", self.n), self.text.clone().into_bytes())
        }
    }
}

/// Revisions as S3 objects under `prefix`.
fn objects(prefix: &str, revs: &[Revision]) -> Vec<(String, Vec<u8>)> {
    revs.iter()
        .map(|r| {
            let (name, body) = r.file();
            (format!("{prefix}revisions/{name}"), body)
        })
        .collect()
}

/// Revisions as a local export `dir/revisions/…`.
fn write_local(dir: &Path, revs: &[Revision]) {
    let revisions = dir.join("revisions");
    std::fs::create_dir_all(&revisions).unwrap();
    for r in revs {
        let (name, body) = r.file();
        std::fs::write(revisions.join(name), body).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn s3_import_equals_local_import() {
    let Some(ep) = endpoint("s3_import_equals_local_import") else {
        return;
    };
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("conf");
    let mut objs = conformance_objects("exports/acct1/");
    // Neighbours that must not be read: another account whose prefix extends ours, and
    // objects under revisions/ that are not revision files.
    objs.push((
        "exports/acct10/revisions/7.json".into(),
        b"{\"_n\":\"intruder\",\"_p\":\"x\",\"_t\":1400000000}\n".to_vec(),
    ));
    objs.push(("exports/acct1/revisions/README".into(), b"junk".to_vec()));
    objs.push((
        "exports/acct1/revisions/old/8.json".into(),
        b"{\"_n\":\"intruder\",\"_p\":\"x\",\"_t\":1400000000}\n".to_vec(),
    ));
    admin.put_all(&bucket, &objs);
    let url = format!("s3://{bucket}/exports/acct1");
    let filters = format!("{CONFORMANCE}/filters.json");

    // From S3, in two runs: 1..3 (files deleted once imported), then the rest with
    // --keep-files, the endpoint from AWS_ENDPOINT_URL and a trailing slash on the prefix.
    let s = Scratch::new();
    let from_s3 = prepared_db("s3i_conf_s3", &s);
    from_s3.insert_filters(Path::new(&filters));
    let download = s.join("kmdb-work/download");
    let out = s3_import(&from_s3, &s, &url, &ep, &["--max-revision", "3"]);
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 1 .. 3"),
        "{out}"
    );
    assert!(
        names_in(&download).is_empty(),
        "downloads are deleted after the import: {:?}",
        names_in(&download)
    );

    let out = kmdb(Some(&from_s3), s.path())
        .env("AWS_ENDPOINT_URL", &ep)
        .args(["import", "-q", &format!("{url}/"), "--keep-files"])
        .ok();
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 4 .. 6"),
        "{out}"
    );
    let kept = names_in(&download);
    assert_eq!(
        kept,
        BTreeSet::from(["4.json".into(), "5.json".into(), "6.json.gz".into()]),
        "--keep-files keeps exactly this import's downloads"
    );
    for name in &kept {
        assert_eq!(
            std::fs::read(download.join(name)).unwrap(),
            conformance_file(name),
            "{name}"
        );
    }
    assert_eq!(
        from_s3.query_string("SELECT GROUP_CONCAT(DISTINCT source) FROM kmdb_imports"),
        url
    );
    assert_eq!(
        from_s3.query_string("SELECT GROUP_CONCAT(revisions ORDER BY id) FROM kmdb_imports"),
        "1-3,4-6"
    );

    // From the local copy, in one run.
    let s2 = Scratch::new();
    let local = prepared_db("s3i_conf_local", &s2);
    local.insert_filters(Path::new(&filters));
    import(
        &local,
        &s2,
        Path::new(&format!("{CONFORMANCE}/export")),
        &[],
    );

    assert_same_db(&from_s3, &local);
    assert_expected_answers(&from_s3, &format!("{CONFORMANCE}/expected.json"));
    assert_eq!(
        from_s3.query_string(
            "SELECT COUNT(*) FROM events e JOIN `keys` k ON k.id = e.n WHERE k.string = 'intruder'"
        ),
        "0",
        "nothing from the neighbouring prefix or sub-directories"
    );

    // `kmdb download` writes the export as it is in the bucket.
    let to = s.join("copy");
    let out = kmdb(None, s.path())
        .args(["download", "-q", &url, "--endpoint-url", &ep, "--to"])
        .arg_path(&to)
        .ok();
    assert!(out.contains("downloaded 6 revision file(s)"), "{out}");
    let export = Path::new(CONFORMANCE).join("export");
    assert_eq!(
        names_in(&to.join("revisions")),
        names_in(&export.join("revisions"))
    );
    for name in names_in(&export.join("revisions")) {
        assert_eq!(
            std::fs::read(to.join("revisions").join(&name)).unwrap(),
            conformance_file(&name),
            "{name}"
        );
    }
    for name in ["index.csv", "status.csv"] {
        assert_eq!(
            std::fs::read(to.join(name)).unwrap(),
            std::fs::read(export.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn twelve_hundred_revisions_across_listing_pages() {
    let Some(ep) = endpoint("twelve_hundred_revisions_across_listing_pages") else {
        return;
    };
    let started = Instant::now();
    let revs: Vec<Revision> = (1..=1200).map(revision).collect();
    let events: u64 = revs.iter().map(|r| r.events).sum();
    let aliases: u64 = revs.iter().map(|r| r.aliases).sum();
    assert!(revs.iter().any(|r| r.file().0.ends_with(".gz")));

    let admin = Admin::new(&ep);
    let bucket = admin.bucket("many");
    admin.put_all(&bucket, &objects("", &revs));
    let uploaded = started.elapsed();

    let s = Scratch::new();
    let from_s3 = prepared_db("s3i_many_s3", &s);
    let t = Instant::now();
    let out = s3_import(
        &from_s3,
        &s,
        &format!("s3://{bucket}"),
        &ep,
        &["--downloads", "16"],
    );
    let s3_secs = t.elapsed();
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 1 .. 1200"),
        "{out}"
    );
    let printed = printed_accounting(&out);
    assert_eq!(printed.get("events"), Some(&events), "{out}");
    assert_eq!(printed.get("malformed"), Some(&12), "{out}");
    assert!(names_in(&s.join("kmdb-work/download")).is_empty());

    let s2 = Scratch::new();
    let local = prepared_db("s3i_many_local", &s2);
    let dir = s2.join("export");
    write_local(&dir, &revs);
    import(&local, &s2, &dir, &[]);

    assert_eq!(from_s3.count("events"), events);
    assert_eq!(from_s3.count("aliases"), aliases);
    assert_eq!(
        from_s3.query_string("SELECT COUNT(DISTINCT id >> 40) FROM events"),
        "1200",
        "every revision contributed"
    );
    assert!(
        from_s3.query_string("SELECT COUNT(*) FROM aliases WHERE applied = 0") != "0",
        "some links between numeric accounts were refused"
    );
    assert_same_db(&from_s3, &local);
    eprintln!(
        "1200 revisions: upload {uploaded:?}, S3 import {s3_secs:?}, total {:?}",
        started.elapsed()
    );
}

#[test]
fn objects_that_look_like_revisions_but_are_not_are_named() {
    let Some(ep) = endpoint("objects_that_look_like_revisions_but_are_not_are_named") else {
        return;
    };
    let line = br#"{"_n":"visit","_p":"a","_t":1400000000}
"#;
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("nearmiss");
    let objects: Vec<(String, Vec<u8>)> = ["1.json", "2.JSON", "3.json.bz2", "sub/4.json"]
        .iter()
        .map(|name| (format!("revisions/{name}"), line.to_vec()))
        .collect();
    admin.put_all(&bucket, &objects);

    let s = Scratch::new();
    let db = prepared_db("s3i_near_miss", &s);
    let out = kmdb(Some(&db), s.path())
        .args([
            "import",
            "-q",
            &format!("s3://{bucket}"),
            "--endpoint-url",
            &ep,
        ])
        .output();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("warning: 2 file(s) in s3://{bucket}"))
            && stderr.ends_with(
                " look like revisions but are not named N.json or N.json.gz, \
                 and are not imported: 2.JSON, 3.json.bz2\n"
            ),
        "{stderr}"
    );
    assert_eq!(db.count("events"), 1);
}

#[test]
fn a_second_run_imports_only_new_revisions() {
    let Some(ep) = endpoint("a_second_run_imports_only_new_revisions") else {
        return;
    };
    let revs: Vec<Revision> = (1..=15).map(revision).collect();
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("nightly");
    admin.put_all(&bucket, &objects("", &revs[..10]));

    // Explicit --state and --work-dir, and the bucket from AWS_BUCKET (no SOURCE), as a
    // nightly km-db-style job would run it.
    let s = Scratch::new();
    let db = prepared_db("s3i_nightly", &s);
    let work = s.join("work");
    let state = s.join("state/kmdb.sqlite");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let run = |quiet: bool| {
        let mut k = kmdb(Some(&db), s.path())
            .env("AWS_BUCKET", &bucket)
            .args(["import", "--endpoint-url", &ep, "--work-dir"])
            .arg_path(&work)
            .args(["--state"])
            .arg_path(&state);
        if quiet {
            k = k.args(["-q"]);
        }
        k.output()
    };
    let ok = |out: std::process::Output| {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "kmdb failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        (stdout, stderr)
    };

    let (out, _) = ok(run(true));
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 1 .. 10"),
        "{out}"
    );
    assert!(state.exists(), "the state store is where --state says");
    assert!(names_in(&work.join("download")).is_empty());
    assert_eq!(db.count("events"), 20);

    admin.put_all(&bucket, &objects("", &revs[10..]));
    let (out, _) = ok(run(true));
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 11 .. 15"),
        "{out}"
    );
    assert_eq!(printed_accounting(&out).get("events"), Some(&10), "{out}");
    assert!(names_in(&work.join("download")).is_empty());

    // Nothing new: says so (progress lines are on without -q) and changes nothing.
    let before = db.fingerprint();
    let (out, err) = ok(run(false));
    assert!(imported_range(&out).is_none(), "{out}");
    assert!(err.contains("nothing to import"), "stderr:\n{err}");
    assert_eq!(db.fingerprint(), before);
    assert_eq!(
        db.query_string("SELECT GROUP_CONCAT(revisions ORDER BY id) FROM kmdb_imports"),
        "1-10,11-15"
    );

    // Same as importing all 15 at once (the alias in revision 12 re-points the cookie of
    // revision 9, loaded by the first run).
    let s2 = Scratch::new();
    let one_shot = prepared_db("s3i_nightly_one_shot", &s2);
    let dir = s2.join("export");
    write_local(&dir, &revs);
    import(&one_shot, &s2, &dir, &[]);
    assert_same_db(&db, &one_shot);
    assert_eq!(
        db.query_string(
            "SELECT u2.name FROM events e JOIN users u2 ON u2.id = e.user_id \
             JOIN `keys` k ON k.id = e.n WHERE k.string = 'visit' AND e.id >> 40 = 9"
        ),
        "u12",
        "the cookie's earlier event follows the later alias"
    );
}

/// What a [`proxy`] does with one request.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Passes request and response through.
    Forward,
    /// Passes the response head and this many body bytes, then cuts the connection.
    CutAfter(usize),
    /// Closes the connection without sending the request on (no response at all).
    Close,
}

/// A loopback HTTP/1.1 proxy to `upstream` that decides per request, from its path
/// (without query) and how many times that path was requested before, what to do.
struct Proxy {
    url: String,
    /// Response bytes passed to the client (heads included).
    forwarded: Arc<AtomicU64>,
    /// Requests carrying a `Range: bytes=` header.
    ranged: Arc<AtomicUsize>,
    /// Requests seen per path.
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Proxy {
    fn requests_of(&self, path_suffix: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p.ends_with(path_suffix))
            .map(|(_, n)| n)
            .sum()
    }
}

fn proxy<F>(upstream: &str, rule: F) -> Proxy
where
    F: Fn(&str, usize) -> Action + Send + Sync + 'static,
{
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let forwarded = Arc::new(AtomicU64::new(0));
    let ranged = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let rule = Arc::new(rule);
    let (fwd, rng, seen2) = (forwarded.clone(), ranged.clone(), seen.clone());
    // Detached: the listener lives as long as the test process.
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            // The action for the response the server sends next (HTTP/1.1 without
            // pipelining: a request goes out only once the previous response is read).
            let pending: Arc<Mutex<Option<Action>>> = Arc::default();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (rng, seen, rule, pending2) =
                (rng.clone(), seen2.clone(), rule.clone(), pending.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let mut action = Action::Forward;
                    if let Some(line) = text.lines().next().filter(|l| l.ends_with("HTTP/1.1")) {
                        let path = line.split(' ').nth(1).unwrap_or("");
                        let path = path.split('?').next().unwrap().to_string();
                        let before = {
                            let mut seen = seen.lock().unwrap();
                            let n = seen.entry(path.clone()).or_insert(0);
                            *n += 1;
                            *n - 1
                        };
                        if text.to_ascii_lowercase().contains("\r\nrange: bytes=") {
                            rng.fetch_add(1, Ordering::SeqCst);
                        }
                        action = rule(&path, before);
                        *pending2.lock().unwrap() = Some(action);
                    }
                    if matches!(action, Action::Close) {
                        c_in.shutdown(Shutdown::Both).ok();
                        s_out.shutdown(Shutdown::Both).ok();
                        break;
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                s_out.shutdown(Shutdown::Write).ok();
            });
            let fwd = fwd.clone();
            let (mut s_in, mut c_out) = (server, client);
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                // While cutting: the head seen so far (None once complete), body bytes left.
                let mut cutting: Option<(Option<Vec<u8>>, usize)> = None;
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    if let Some(Action::CutAfter(limit)) = pending.lock().unwrap().take() {
                        cutting = Some((Some(Vec::new()), limit));
                    }
                    let mut data = &buf[..n];
                    let mut cut = false;
                    if let Some((head, left)) = cutting.as_mut() {
                        let mut send = 0;
                        if let Some(h) = head.as_mut() {
                            let start = h.len();
                            h.extend_from_slice(data);
                            match h.windows(4).position(|w| w == b"\r\n\r\n") {
                                None => send = data.len(),
                                Some(end) => {
                                    send = end + 4 - start;
                                    *head = None;
                                }
                            }
                        }
                        if head.is_none() {
                            let body = (data.len() - send).min(*left);
                            *left -= body;
                            send += body;
                            cut = *left == 0;
                        }
                        data = &data[..send];
                    }
                    fwd.fetch_add(data.len() as u64, Ordering::SeqCst);
                    if c_out.write_all(data).is_err() || cut {
                        break;
                    }
                }
                c_out.shutdown(Shutdown::Both).ok();
                s_in.shutdown(Shutdown::Both).ok();
            });
        }
    });
    Proxy {
        url,
        forwarded,
        ranged,
        seen,
    }
}

#[test]
fn an_interrupted_download_resumes() {
    let Some(ep) = endpoint("an_interrupted_download_resumes") else {
        return;
    };
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("cut");
    admin.put_all(&bucket, &conformance_objects("exports/acct9/"));
    let url = format!("s3://{bucket}/exports/acct9");
    let filters = format!("{CONFORMANCE}/filters.json");
    let size2 = conformance_file("2.json").len() as u64;

    let s = Scratch::new();
    let db = prepared_db("s3i_cut", &s);
    db.insert_filters(Path::new(&filters));
    let download: PathBuf = s.join("kmdb-work/download");

    // Revision 2's download is cut 150 KB into the body; every retry then gets the response
    // head and no body, more times than the retries allow. The other files go through.
    let cut = proxy(&ep, |path, before| {
        if path.ends_with("/revisions/2.json") {
            Action::CutAfter(if before == 0 { 150_000 } else { 0 })
        } else {
            Action::Forward
        }
    });
    let started = Instant::now();
    let err = kmdb(Some(&db), s.path())
        .args(["import", "-q", &url, "--endpoint-url", &cut.url])
        .fails();
    let failed_after = started.elapsed();
    let object = format!("s3://{bucket}/exports/acct9/revisions/2.json: ");
    assert!(err.contains(&object), "the error names the object:\n{err}");
    assert!(err.contains("gave up after 5 retries"), "{err}");
    assert!(cut.requests_of("/revisions/2.json") >= 6, "retried");
    // Nothing reached the database or the state store.
    assert_eq!(db.count("events"), 0);
    assert_eq!(db.count("kmdb_imports"), 0);
    let left = names_in(&download);
    assert!(left.contains("2.json.part"), "{left:?}");
    assert!(!left.contains("2.json"), "{left:?}");
    let part = std::fs::metadata(download.join("2.json.part"))
        .unwrap()
        .len();
    assert!((100_000..=150_000).contains(&part), "{part}");
    let mut missing = size2 - part;
    for name in names_in(&Path::new(CONFORMANCE).join("export/revisions")) {
        if name == "2.json" {
            continue;
        }
        match std::fs::read(download.join(&name)) {
            Ok(bytes) => assert_eq!(bytes, conformance_file(&name), "{name}"),
            Err(_) => missing += conformance_file(&name).len() as u64,
        }
    }

    // Again through a proxy that works: complete files are not fetched again, 2.json
    // resumes from its .part with a ranged GET.
    let good = proxy(&ep, |_, _| Action::Forward);
    let out = kmdb(Some(&db), s.path())
        .args(["import", "-q", &url, "--endpoint-url", &good.url])
        .ok();
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 1 .. 6"),
        "{out}"
    );
    let fetched = good.forwarded.load(Ordering::SeqCst);
    assert!(
        fetched >= missing && fetched < missing + 30_000,
        "fetched {fetched} bytes for {missing} missing bytes"
    );
    assert_eq!(
        good.ranged.load(Ordering::SeqCst),
        1,
        "resumed with a ranged GET"
    );
    assert!(names_in(&download).is_empty(), "{:?}", names_in(&download));

    // Nothing lost, nothing doubled: the database of a clean import.
    let s2 = Scratch::new();
    let clean = prepared_db("s3i_cut_clean", &s2);
    clean.insert_filters(Path::new(&filters));
    import(
        &clean,
        &s2,
        Path::new(&format!("{CONFORMANCE}/export")),
        &[],
    );
    assert_same_db(&db, &clean);
    assert_expected_answers(&db, &format!("{CONFORMANCE}/expected.json"));
    eprintln!("the interrupted import gave up after {failed_after:?}");
}

/// S3 sometimes closes a connection without answering (the SDK calls it a transient
/// `IncompleteMessage`). The download must retry it like any connection error.
#[test]
fn a_connection_closed_without_an_answer_is_retried() {
    let Some(ep) = endpoint("a_connection_closed_without_an_answer_is_retried") else {
        return;
    };
    let revs: Vec<Revision> = (1..=3).map(revision).collect();
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("closed");
    admin.put_all(&bucket, &objects("", &revs));
    let s = Scratch::new();
    let db = prepared_db("s3i_closed", &s);
    let closing = proxy(&ep, |path, before| {
        if path.ends_with("/revisions/1.json") && before == 0 {
            Action::Close
        } else {
            Action::Forward
        }
    });
    let out = s3_import(&db, &s, &format!("s3://{bucket}"), &closing.url, &[]);
    assert_eq!(
        imported_range(&out).as_deref(),
        Some("imported revisions 1 .. 3"),
        "{out}"
    );
    assert_eq!(closing.requests_of("/revisions/1.json"), 2);
    assert_eq!(db.count("events"), 6);
}

#[test]
fn s3_source_errors_are_explained() {
    let Some(ep) = endpoint("s3_source_errors_are_explained") else {
        return;
    };
    let s = Scratch::new();
    let db = prepared_db("s3i_errors", &s);
    let fails = |args: &[&str]| -> String {
        let err = kmdb(Some(&db), s.path())
            .env("AWS_BUCKET", "")
            .args(["import", "-q", "--endpoint-url", &ep])
            .args(args)
            .fails();
        assert!(err.starts_with("kmdb: error: "), "{err}");
        err
    };

    // A bucket that does not exist.
    let missing = unique("absent");
    let err = fails(&[&format!("s3://{missing}/exports/acct1")]);
    assert!(
        err.contains(&format!("bucket {missing} does not exist")),
        "{err}"
    );

    // A prefix with no revisions (its neighbours have some).
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("empty");
    admin.put_all(
        &bucket,
        &[
            ("exports/acct1/index.csv".into(), b"filename\n".to_vec()),
            ("exports/acct1/revisions/README".into(), b"junk".to_vec()),
            (
                "exports/acct10/revisions/1.json".into(),
                revision(1).text.into_bytes(),
            ),
            (
                "exports/revisions/2.json".into(),
                revision(2).text.into_bytes(),
            ),
        ],
    );
    let err = fails(&[&format!("s3://{bucket}/exports/acct1")]);
    assert!(
        err.contains(&format!(
            "no revisions/N.json files under s3://{bucket}/exports/acct1"
        )),
        "{err}"
    );

    // No bucket in the URL.
    for source in ["s3://", "s3:///exports/acct1"] {
        let err = fails(&[source]);
        assert!(err.contains("invalid S3 URL"), "{source}: {err}");
        assert!(
            err.contains("the bucket name is missing"),
            "{source}: {err}"
        );
    }

    // No SOURCE and no AWS_BUCKET.
    let err = fails(&[]);
    assert!(err.contains("no SOURCE given"), "{err}");

    // `kmdb download` explains a missing bucket the same way.
    let err = kmdb(None, s.path())
        .args([
            "download",
            "-q",
            &format!("s3://{missing}"),
            "--endpoint-url",
            &ep,
        ])
        .args(["--to"])
        .arg_path(&s.join("copy"))
        .fails();
    assert!(
        err.contains(&format!("bucket {missing} does not exist")),
        "{err}"
    );

    // None of it touched the database.
    assert_eq!(db.count("events"), 0);
    assert_eq!(db.count("kmdb_imports"), 0);
}
