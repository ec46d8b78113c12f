//! S3 listing and download against a local S3 server (moto).
//!
//! Needs `KMDB_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:25000`, see scripts/s3-server.sh);
//! tests that need it print a note and return when it is unset. Credentials default to
//! `test`/`test` in us-east-1 when the environment has none.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use kmdb::format::KM;
use kmdb::source::s3::*;
use kmdb::source::summary::describe_export;
use util::s3::*;

/// Credentials for the in-process client of `kmdb::source::s3`, which reads them from the
/// environment: the moto defaults where the environment has none.
fn ensure_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in AWS_DEFAULTS {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    });
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn source(endpoint: &str, url: &str, retries: u32) -> S3Source {
    ensure_env();
    let config = S3Config {
        endpoint_url: Some(endpoint.to_string()),
        downloads: 8,
        retries,
    };
    S3Source::connect(url.parse().unwrap(), config).unwrap()
}

/// Deterministic revision content; gzip ones start with the gzip magic.
fn revision_body(n: u64, gzip: bool) -> Vec<u8> {
    let mut out = if gzip {
        vec![0x1f, 0x8b, 8, 0]
    } else {
        Vec::new()
    };
    for i in 0..(n % 7 + 1) {
        out.extend_from_slice(
            format!(
                "{{\"_n\":\"event {n}.{i}\",\"_p\":\"user-{}\",\"_t\":{}}}\n",
                n * 31 % 97,
                1_400_000_000 + n * 60 + i
            )
            .as_bytes(),
        );
    }
    out
}

/// Pseudo-random bytes (xorshift) so resumed halves cannot match by accident.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Run {
    result: anyhow::Result<()>,
    done: Vec<anyhow::Result<Downloaded>>,
    bytes: u64,
}

fn run_download(src: &S3Source, files: &[RemoteFile], dir: &Path) -> Run {
    let counted = AtomicU64::new(0);
    let (tx, rx) = crossbeam_channel::unbounded();
    let result = src.download(
        files,
        dir,
        &|n| {
            counted.fetch_add(n, Ordering::Relaxed);
        },
        &tx,
    );
    drop(tx);
    Run {
        result,
        done: rx.iter().collect(),
        bytes: counted.into_inner(),
    }
}

fn no_part_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".part"))
}

#[test]
fn lists_across_pages_downloads_and_skips_complete_files() {
    let Some(ep) = endpoint("lists_across_pages_downloads_and_skips_complete_files") else {
        return;
    };
    let started = Instant::now();
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("many");
    let mut objects: Vec<(String, Vec<u8>)> = (1..=1200u64)
        .map(|n| {
            let gzip = n % 4 == 0;
            (
                format!("revisions/{n}.json{}", if gzip { ".gz" } else { "" }),
                revision_body(n, gzip),
            )
        })
        .collect();
    for junk in [
        "revisions/README",
        "revisions/abc.json",
        "revisions/sub/5.json",
        "revisions/7.json.bak",
        "other/8.json",
    ] {
        objects.push((junk.to_string(), b"not a revision".to_vec()));
    }
    objects.push((
        "status.csv".into(),
        b"total_revisions,exported_revisions\n1200,1200\n".to_vec(),
    ));
    admin.put_all(&bucket, &objects);

    let src = source(&ep, &format!("s3://{bucket}"), 5);
    let listing = src.list(&KM).unwrap();
    let revs: Vec<u64> = listing.files.iter().map(|f| f.revision).collect();
    assert_eq!(
        revs,
        (1..=1200).collect::<Vec<_>>(),
        "all revisions, numeric order, junk ignored"
    );
    for f in &listing.files {
        assert_eq!(f.gzip, f.revision % 4 == 0);
        assert_eq!(f.size, revision_body(f.revision, f.gzip).len() as u64);
        assert!(
            f.etag
                .as_deref()
                .is_some_and(|e| e.len() == 32 && !e.contains('"')),
            "{:?}",
            f.etag
        );
    }
    assert_eq!(listing.index_csv, None);
    assert_eq!(
        describe_export(None, listing.status_csv.as_deref()).unwrap(),
        "KM says: 1200 revisions exported"
    );

    let dir = temp_dir("many");
    let run = run_download(&src, &listing.files, &dir);
    run.result.unwrap();
    assert_eq!(run.done.len(), 1200);
    let total: u64 = listing.files.iter().map(|f| f.size).sum();
    assert_eq!(run.bytes, total);
    let mut seen: Vec<u64> = Vec::new();
    for d in run.done {
        let d = d.unwrap();
        assert_eq!(
            d.path,
            dir.join(format!(
                "{}.json{}",
                d.revision,
                if d.gzip { ".gz" } else { "" }
            ))
        );
        assert_eq!(
            std::fs::read(&d.path).unwrap(),
            revision_body(d.revision, d.gzip),
            "{}",
            d.path.display()
        );
        assert_eq!(d.bytes, std::fs::metadata(&d.path).unwrap().len());
        seen.push(d.revision);
    }
    seen.sort_unstable();
    assert_eq!(seen, revs);
    assert!(no_part_files(&dir));

    // Again, against an endpoint where nothing listens: complete files are not fetched.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let offline = source(&format!("http://{dead}"), &format!("s3://{bucket}"), 0);
    let again = run_download(&offline, &listing.files, &dir);
    again.result.unwrap();
    assert_eq!(again.done.len(), 1200);
    assert!(again.done.iter().all(|d| d.is_ok()));

    // The dead endpoint does fail a file that is missing locally, naming the object.
    std::fs::remove_file(dir.join("3.json")).unwrap();
    let failed = run_download(&offline, &listing.files[..5], &dir);
    let err = failed.result.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("s3://{bucket}/revisions/3.json: ")),
        "{err}"
    );
    assert!(err.contains("gave up after 0 retries"), "{err}");
    assert_eq!(failed.done.iter().filter(|d| d.is_err()).count(), 1);

    std::fs::remove_dir_all(&dir).ok();
    eprintln!("1200-object test took {:?}", started.elapsed());
}

#[test]
fn prefix_selects_one_export_and_reads_km_csvs() {
    let Some(ep) = endpoint("prefix_selects_one_export_and_reads_km_csvs") else {
        return;
    };
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("prefix");
    let index = "filename,min_timestamp,max_timestamp,min_utc_date,max_utc_date\n\
        revisions/1.json,1388707200,1388710800,2014-01-03 00:00 GMT,2014-01-03 01:00 GMT\n\
        revisions/10.json,1448841600,1448845200,2015-11-30 00:00 GMT,2015-11-30 01:00 GMT\n";
    let status = "total_revisions,exported_revisions,max_exported_revision_timestamp,max_exported_revision_utc_date\n\
        10,10,1448845200,2015-11-30 01:00 GMT\n";
    let objects = vec![
        (
            "exports/acct1/revisions/1.json".to_string(),
            revision_body(1, false),
        ),
        (
            "exports/acct1/revisions/2.json".to_string(),
            revision_body(2, false),
        ),
        (
            "exports/acct1/revisions/10.json".to_string(),
            revision_body(10, false),
        ),
        (
            "exports/acct1/revisions/3.json.gz".to_string(),
            revision_body(3, true),
        ),
        (
            "exports/acct1/index.csv".to_string(),
            index.as_bytes().to_vec(),
        ),
        (
            "exports/acct1/status.csv".to_string(),
            status.as_bytes().to_vec(),
        ),
        (
            "exports/acct10/revisions/4.json".to_string(),
            revision_body(4, false),
        ),
        (
            "exports/acct2/revisions/5.json".to_string(),
            revision_body(5, false),
        ),
        ("revisions/6.json".to_string(), revision_body(6, false)),
    ];
    admin.put_all(&bucket, &objects);

    for url in [
        format!("s3://{bucket}/exports/acct1"),
        format!("s3://{bucket}/exports/acct1/"),
    ] {
        let src = source(&ep, &url, 5);
        let listing = src.list(&KM).unwrap();
        let got: Vec<(u64, bool, &str)> = listing
            .files
            .iter()
            .map(|f| (f.revision, f.gzip, f.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, false, "exports/acct1/revisions/1.json"),
                (2, false, "exports/acct1/revisions/2.json"),
                (3, true, "exports/acct1/revisions/3.json.gz"),
                (10, false, "exports/acct1/revisions/10.json"),
            ]
        );
        assert_eq!(listing.index_csv.as_deref(), Some(index));
        assert_eq!(
            describe_export(listing.index_csv.as_deref(), listing.status_csv.as_deref()).unwrap(),
            "KM says: 10 revisions exported (latest 2015-11-30); index lists 2 files (revisions 1..10) \
             covering 2014-01-03 .. 2015-11-30 (KM receive times)"
        );
        let dir = temp_dir("prefix");
        let run = run_download(&src, &listing.files, &dir);
        run.result.unwrap();
        assert_eq!(run.done.len(), 4);
        for f in &listing.files {
            assert_eq!(
                std::fs::read(dir.join(&f.name)).unwrap(),
                revision_body(f.revision, f.gzip)
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    // A dropped receiver stops the download without an error.
    let src = source(&ep, &format!("s3://{bucket}/exports/acct1"), 5);
    let listing = src.list(&KM).unwrap();
    let dir = temp_dir("dropped");
    let (tx, rx) = crossbeam_channel::unbounded();
    drop(rx);
    src.download(&listing.files, &dir, &|_| {}, &tx).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resumes_part_files_with_ranged_get() {
    let Some(ep) = endpoint("resumes_part_files_with_ranged_get") else {
        return;
    };
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("resume");
    let a = noise(300_000, 7);
    let b = noise(200_001, 8);
    admin.put_all(
        &bucket,
        &[
            ("revisions/7.json".into(), a.clone()),
            ("revisions/8.json.gz".into(), b.clone()),
            ("revisions/9.json".into(), Vec::new()),
        ],
    );
    let src = source(&ep, &format!("s3://{bucket}"), 5);
    let listing = src.list(&KM).unwrap();
    let dir = temp_dir("resume");

    // 7.json: a good first half, as left by an interrupted run.
    std::fs::write(dir.join("7.json.part"), &a[..150_000]).unwrap();
    let run = run_download(&src, &listing.files[..1], &dir);
    run.result.unwrap();
    assert_eq!(run.bytes, 150_000, "only the missing half is fetched");
    assert_eq!(std::fs::read(dir.join("7.json")).unwrap(), a);

    // 8.json.gz: a .part whose bytes are wrong; the MD5 check catches it and it is fetched anew.
    let mut bad = b[..100_000].to_vec();
    bad[500] ^= 0xff;
    std::fs::write(dir.join("8.json.gz.part"), &bad).unwrap();
    let run = run_download(&src, &listing.files[1..2], &dir);
    run.result.unwrap();
    assert_eq!(
        run.bytes,
        100_001 + 200_001,
        "the ranged rest, then the whole object"
    );
    assert_eq!(std::fs::read(dir.join("8.json.gz")).unwrap(), b);

    // A final file of the wrong size is replaced; an empty object is fine.
    std::fs::write(dir.join("7.json"), b"truncated").unwrap();
    let run = run_download(&src, &listing.files, &dir);
    run.result.unwrap();
    assert_eq!(run.done.len(), 3);
    assert_eq!(std::fs::read(dir.join("7.json")).unwrap(), a);
    assert_eq!(std::fs::read(dir.join("9.json")).unwrap(), b"");
    assert!(no_part_files(&dir));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_bucket_and_empty_prefix_are_explained() {
    let Some(ep) = endpoint("missing_bucket_and_empty_prefix_are_explained") else {
        return;
    };
    let missing = unique("absent");
    let err = source(&ep, &format!("s3://{missing}/x"), 1)
        .list(&KM)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("bucket {missing} does not exist")),
        "{err}"
    );

    let admin = Admin::new(&ep);
    let bucket = admin.bucket("empty");
    admin.put_all(
        &bucket,
        &[("exports/acct1/index.csv".into(), b"filename\n".to_vec())],
    );
    let err = source(&ep, &format!("s3://{bucket}/exports/acct1"), 1)
        .list(&KM)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("no revisions/N.json files under s3://{bucket}/exports/acct1")
    );
}

/// A fake S3 endpoint answering every request with one S3 error (bounded: 20 connections).
/// Returns its URL and a count of requests answered.
fn fake_s3_error(status: &str, code: &str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>fake {code}</Message><RequestId>1</RequestId></Error>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    thread::spawn(move || {
        for conn in listener.incoming().take(20) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            // Counted before answering: the client may give up (and the
            // test read the count) as soon as the last answer arrives.
            counter.fetch_add(1, Ordering::SeqCst);
            conn.write_all(response.as_bytes()).ok();
        }
    });
    (format!("http://{addr}"), hits)
}

#[test]
fn credential_and_permission_errors_are_explained() {
    ensure_env();
    let list_err = |status: &str, code: &str| {
        let (ep, _) = fake_s3_error(status, code);
        source(&ep, "s3://km-export/acct", 1)
            .list(&KM)
            .unwrap_err()
            .to_string()
    };
    let err = list_err("403 Forbidden", "InvalidAccessKeyId");
    assert!(
        err.contains("bad credentials: the access key ID is not known"),
        "{err}"
    );
    assert!(err.contains("s3:ListBucket and s3:GetObject"), "{err}");
    let err = list_err("403 Forbidden", "SignatureDoesNotMatch");
    assert!(
        err.contains("bad credentials: the secret access key does not match"),
        "{err}"
    );
    let err = list_err("403 Forbidden", "AccessDenied");
    assert!(
        err.starts_with("listing s3://km-export/acct: access denied;"),
        "{err}"
    );
    assert!(err.contains("s3:ListBucket and s3:GetObject"), "{err}");

    // Download errors name the object and are not retried.
    let (ep, hits) = fake_s3_error("403 Forbidden", "AccessDenied");
    let src = source(&ep, "s3://km-export", 3);
    let file = RemoteFile {
        revision: 1,
        key: "revisions/1.json".into(),
        name: "1.json".into(),
        size: 10,
        etag: None,
        gzip: false,
    };
    let dir = temp_dir("denied");
    let started = Instant::now();
    let run = run_download(&src, &[file.clone(), file], &dir);
    let err = run.result.unwrap_err().to_string();
    assert!(
        err.starts_with("s3://km-export/revisions/1.json: access denied;"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "not retried");
    assert_eq!(run.done.len(), 1, "one Err, and no further downloads");
    assert!(run.done[0].as_ref().is_err_and(|e| e.to_string() == err));
    assert!(hits.load(Ordering::SeqCst) <= 2, "no retries of 403");

    // Throttling is retried with backoff, then reported with the last reason.
    let (ep, hits) = fake_s3_error("503 Slow Down", "SlowDown");
    let src = source(&ep, "s3://km-export", 2);
    let file = RemoteFile {
        revision: 2,
        key: "revisions/2.json".into(),
        name: "2.json".into(),
        size: 10,
        etag: None,
        gzip: false,
    };
    let started = Instant::now();
    let run = run_download(&src, &[file], &dir);
    let err = run.result.unwrap_err().to_string();
    assert!(
        err.starts_with("s3://km-export/revisions/2.json: S3 error SlowDown (HTTP 503)"),
        "{err}"
    );
    assert!(err.ends_with("(gave up after 2 retries)"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "first try and two retries");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "backed off 200 ms, then 400 ms"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn etag_check() {
    let md5_abc = "900150983cd24fb0d6963f7d28e17f72";
    assert_eq!(etag_matches(md5_abc, b"abc"), Some(true));
    assert_eq!(etag_matches(&format!("\"{md5_abc}\""), b"abc"), Some(true));
    assert_eq!(
        etag_matches(md5_abc, b"abd"),
        Some(false),
        "mismatch detected"
    );
    assert_eq!(
        etag_matches("\"d41d8cd98f00b204e9800998ecf8427e-2\"", b""),
        None,
        "multipart ETag not checked"
    );
    assert_eq!(etag_matches("W/\"abc\"", b"abc"), None);
}

/// A loopback proxy to `upstream` that cuts each of the first `cuts` connections after
/// `limit` response bytes. Returns its URL, a count of connections and of ranged GETs.
fn cutting_proxy(
    upstream: &str,
    cuts: usize,
    limit: usize,
) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let ranged = Arc::new(AtomicUsize::new(0));
    let (c2, r2) = (conns.clone(), ranged.clone());
    thread::spawn(move || {
        for (i, client) in listener.incoming().take(40).enumerate() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            c2.fetch_add(1, Ordering::SeqCst);
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let ranged = r2.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    if String::from_utf8_lossy(&buf[..n])
                        .to_ascii_lowercase()
                        .contains("range: bytes=")
                    {
                        ranged.fetch_add(1, Ordering::SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                s_out.shutdown(Shutdown::Write).ok();
            });
            let (mut s_in, mut c_out) = (server, client);
            thread::spawn(move || {
                let mut sent = 0usize;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    let n = if i < cuts { n.min(limit - sent) } else { n };
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                    if i < cuts && sent >= limit {
                        break;
                    }
                }
                c_out.shutdown(Shutdown::Both).ok();
                s_in.shutdown(Shutdown::Both).ok();
            });
        }
    });
    (format!("http://{addr}"), conns, ranged)
}

#[test]
fn connection_cut_mid_body_is_resumed() {
    let Some(ep) = endpoint("connection_cut_mid_body_is_resumed") else {
        return;
    };
    let admin = Admin::new(&ep);
    let bucket = admin.bucket("cut");
    let data = noise(400_000, 9);
    admin.put_all(&bucket, &[("revisions/1.json".into(), data.clone())]);
    let listing = source(&ep, &format!("s3://{bucket}"), 5).list(&KM).unwrap();

    let (proxy, conns, ranged) = cutting_proxy(&ep, 2, 100_000);
    let src = source(&proxy, &format!("s3://{bucket}"), 5);
    let dir = temp_dir("cut");
    let run = run_download(&src, &listing.files, &dir);
    run.result.unwrap();
    assert_eq!(std::fs::read(dir.join("1.json")).unwrap(), data);
    assert_eq!(run.bytes, 400_000, "every byte arrived once");
    assert!(
        conns.load(Ordering::SeqCst) >= 3,
        "two cut connections, then one that finished"
    );
    assert!(
        ranged.load(Ordering::SeqCst) >= 2,
        "resumed with ranged GETs"
    );
    std::fs::remove_dir_all(&dir).ok();
}
