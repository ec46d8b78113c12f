//! Downloads: bounded concurrency, `.part` files resumed with ranged GETs,
//! sizes and MD5 ETags checked, retries with backoff.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_s3::types::ServerSideEncryption;

use super::explain::chain;
use super::*;

impl S3Source {
    /// Downloads `files` into `dir` (created if missing) with at most `config.downloads`
    /// transfers at once.
    ///
    /// Each file goes to `<name>.part`, which is resumed with a ranged GET when it already
    /// exists, checked (size; MD5 against a plain single-part ETag), then renamed to
    /// `N.json` / `N.json.gz`. A final file of the right size is not fetched again, but is
    /// still reported on `done` and counted in `on_bytes`. Throttling, 5xx, timeouts,
    /// connection errors and short bodies are retried with backoff, resuming from what was
    /// written. Completed files are sent on `done` in completion order. The first fatal
    /// error is sent on `done` as `Err` (an [`ObjectError`]), stops new transfers and is
    /// returned. If the receiver is dropped, in-flight transfers stop and `Ok` is returned.
    pub fn download(
        &self,
        files: &[RemoteFile],
        dir: &Path,
        on_bytes: &(dyn Fn(u64) + Sync),
        done: &crossbeam_channel::Sender<anyhow::Result<Downloaded>>,
    ) -> anyhow::Result<()> {
        if let Err(e) = fs::create_dir_all(dir) {
            let msg = format!("creating download directory {}: {e}", dir.display());
            let _ = done.send(Err(anyhow!(msg.clone())));
            return Err(anyhow!(msg));
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error: Mutex<Option<ObjectError>> = Mutex::new(None);
        let workers = self.config.downloads.max(1).min(files.len().max(1));
        let handle = self.runtime.handle();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if stopped(&stop) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    match handle.block_on(self.fetch(file, dir, on_bytes, &stop)) {
                        Ok(Some(d)) => {
                            if done.send(Ok(d)).is_err() {
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            if slot.is_none() {
                                let _ = done.send(Err(e.clone().into()));
                                *slot = Some(e);
                            }
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Fetches one file; `Ok(None)` means it was abandoned because `stop` was set.
    async fn fetch(
        &self,
        file: &RemoteFile,
        dir: &Path,
        on_bytes: &(dyn Fn(u64) + Sync),
        stop: &AtomicBool,
    ) -> Result<Option<Downloaded>, ObjectError> {
        let obj_err = |reason: String| ObjectError {
            bucket: self.url.bucket.clone(),
            key: file.key.clone(),
            reason,
        };
        let name = file.name.clone();
        let final_path = dir.join(&name);
        let part_path = dir.join(format!("{name}.part"));
        let finished = Downloaded {
            revision: file.revision,
            path: final_path.clone(),
            gzip: file.gzip,
            bytes: file.size,
        };

        if fs::metadata(&final_path).is_ok_and(|m| m.is_file() && m.len() == file.size) {
            // A stale .part beside a complete file is left over from an earlier run.
            let _ = remove_part(&part_path);
            on_bytes(file.size);
            return Ok(Some(finished));
        }

        let expected_md5 = file.etag.as_deref().and_then(etag_md5);
        let mut check_md5 = expected_md5.is_some();
        // Running MD5 of the .part file's first `hashed` bytes (valid only while `hashed` tracks it).
        let mut hasher = Md5::new();
        let mut hashed: u64 = 0;
        let mut failures: u32 = 0;

        loop {
            if stopped(stop) {
                return Ok(None);
            }
            let mut have = fs::metadata(&part_path).map(|m| m.len()).unwrap_or(0);
            if have > file.size {
                remove_part(&part_path)
                    .map_err(|e| obj_err(local_io("removing", &part_path, &e)))?;
                have = 0;
            }
            let attempt = if have == file.size {
                if file.size == 0 {
                    File::create(&part_path)
                        .map_err(|e| obj_err(local_io("creating", &part_path, &e)))?;
                }
                Ok(())
            } else {
                self.transfer(
                    file,
                    &part_path,
                    have,
                    on_bytes,
                    stop,
                    &mut hasher,
                    &mut hashed,
                    &mut check_md5,
                )
                .await
            };
            let outcome = match attempt {
                Ok(()) => self.finish(
                    file,
                    &part_path,
                    &final_path,
                    expected_md5.filter(|_| check_md5),
                    &hasher,
                    hashed,
                ),
                Err(o) => o,
            };
            let (retry_reason, progressed) = match outcome {
                Outcome::Done => return Ok(Some(finished)),
                Outcome::Stopped => return Ok(None),
                Outcome::Fatal(reason) => return Err(obj_err(reason)),
                Outcome::Retry { reason, progressed } => (reason, progressed),
                Outcome::Restart(reason) => {
                    remove_part(&part_path)
                        .map_err(|e| obj_err(local_io("removing", &part_path, &e)))?;
                    hasher = Md5::new();
                    hashed = 0;
                    (reason, false)
                }
            };
            // A transfer that made progress does not use up a retry: long files on a flaky
            // link still finish, and every attempt moves forward.
            if progressed {
                failures = 0;
            } else {
                failures += 1;
            }
            if failures > self.config.retries {
                return Err(obj_err(format!(
                    "{retry_reason} (gave up after {} retries)",
                    self.config.retries
                )));
            }
            let until = tokio::time::Instant::now() + backoff(failures.saturating_sub(1));
            while tokio::time::Instant::now() < until {
                if stopped(stop) {
                    return Ok(None);
                }
                tokio::time::sleep_until(
                    until.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                )
                .await;
            }
        }
    }

    /// One GET appending to `part` from byte `have`. `Err` carries what to do next.
    #[allow(clippy::too_many_arguments)]
    async fn transfer(
        &self,
        file: &RemoteFile,
        part: &Path,
        have: u64,
        on_bytes: &(dyn Fn(u64) + Sync),
        stop: &AtomicBool,
        hasher: &mut Md5,
        hashed: &mut u64,
        check_md5: &mut bool,
    ) -> Result<(), Outcome> {
        let mut req = self
            .get_client
            .get_object()
            .bucket(&self.url.bucket)
            .key(&file.key);
        if have > 0 {
            req = req.range(format!("bytes={have}-"));
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.classify_get(&e)),
        };
        let kms = matches!(
            resp.server_side_encryption(),
            Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
        ) || resp.sse_customer_algorithm().is_some();
        if kms {
            // With SSE-KMS / SSE-C the ETag is not the MD5 of the data.
            *check_md5 = false;
        }
        let mut offset = have;
        if have > 0 {
            match resp.content_range().and_then(range_start) {
                Some(start) if start == have => {}
                None if resp.content_range().is_none() => offset = 0, // plain 200: whole object
                _ => {
                    return Err(Outcome::Restart(format!(
                        "unexpected Content-Range {:?}",
                        resp.content_range()
                    )))
                }
            }
        }
        let mut out = match open_part(part, offset) {
            Ok(f) => BufWriter::with_capacity(256 * 1024, f),
            Err(e) => return Err(Outcome::Fatal(local_io("opening", part, &e))),
        };
        if offset == 0 {
            *hasher = Md5::new();
            *hashed = 0;
        }
        let hashing = *check_md5 && *hashed == offset;
        let mut written = offset;
        let result = loop {
            if stopped(stop) {
                break Err(Outcome::Stopped);
            }
            match resp.body.next().await {
                None => break Ok(()),
                Some(Ok(chunk)) => {
                    if written + chunk.len() as u64 > file.size {
                        break Err(Outcome::Restart(format!(
                            "object is larger than the listed {} bytes (changed since listing?)",
                            file.size
                        )));
                    }
                    if let Err(e) = out.write_all(&chunk) {
                        break Err(Outcome::Fatal(local_io("writing", part, &e)));
                    }
                    if hashing {
                        hasher.update(&chunk);
                        *hashed += chunk.len() as u64;
                    }
                    written += chunk.len() as u64;
                    on_bytes(chunk.len() as u64);
                }
                Some(Err(e)) => {
                    break Err(Outcome::Retry {
                        reason: format!("connection lost mid-body: {}", chain(&e)),
                        progressed: written > have,
                    })
                }
            }
        };
        if let Err(e) = out.flush().and_then(|()| out.get_ref().sync_data()) {
            return Err(Outcome::Fatal(local_io("writing", part, &e)));
        }
        result?;
        if written < file.size {
            return Err(Outcome::Retry {
                reason: format!("body cut short at {written} of {} bytes", file.size),
                progressed: written > have,
            });
        }
        Ok(())
    }

    /// Verifies a complete `.part` and renames it into place.
    fn finish(
        &self,
        file: &RemoteFile,
        part: &Path,
        final_path: &Path,
        expected_md5: Option<[u8; 16]>,
        hasher: &Md5,
        hashed: u64,
    ) -> Outcome {
        let len = match fs::metadata(part) {
            Ok(m) => m.len(),
            Err(e) => return Outcome::Fatal(local_io("reading", part, &e)),
        };
        if len != file.size {
            return Outcome::Restart(format!(
                "downloaded {len} bytes but the listing says {}",
                file.size
            ));
        }
        if let Some(expected) = expected_md5 {
            let actual = if hashed == len {
                hasher.clone().finish()
            } else {
                match md5_file(part) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Fatal(local_io("reading", part, &e)),
                }
            };
            if actual != expected {
                return Outcome::Restart(format!(
                    "MD5 {} does not match ETag {}",
                    hex(&actual),
                    hex(&expected)
                ));
            }
        }
        match fs::rename(part, final_path) {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Fatal(format!(
                "renaming {} to {}: {e}",
                part.display(),
                final_path.display()
            )),
        }
    }
}

/// What to do after one attempt.
pub(super) enum Outcome {
    Done,
    Stopped,
    Fatal(String),
    /// Try again from what is in the `.part` file.
    Retry {
        reason: String,
        progressed: bool,
    },
    /// Discard the `.part` file and try again from byte 0.
    Restart(String),
}

pub(super) fn backoff(k: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1u32 << k.min(16))
        .min(BACKOFF_CAP);
    // Up to 25% jitter so parallel transfers do not retry in lockstep.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// Start offset of a `Content-Range: bytes A-B/T` header.
pub(super) fn range_start(content_range: &str) -> Option<u64> {
    content_range
        .trim()
        .strip_prefix("bytes")?
        .trim_start()
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

pub(super) fn open_part(part: &Path, offset: u64) -> io::Result<File> {
    if offset == 0 {
        File::create(part)
    } else {
        let f = OpenOptions::new().write(true).open(part)?;
        f.set_len(offset)?;
        let mut f = f;
        io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
        Ok(f)
    }
}

pub(super) fn remove_part(part: &Path) -> io::Result<()> {
    match fs::remove_file(part) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn local_io(action: &str, path: &Path, e: &io::Error) -> String {
    // ENOSPC (28) and EDQUOT (122 on Linux, 69 on macOS).
    let full = matches!(e.raw_os_error(), Some(28))
        || (cfg!(target_os = "linux") && e.raw_os_error() == Some(122));
    if full {
        format!("disk full {action} {}", path.display())
    } else {
        format!("{action} {}: {e}", path.display())
    }
}

/// The MD5 in a plain single-part ETag (32 hex digits, quotes optional); None for
/// multipart (`…-N`) or other ETags.
pub(super) fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let t = etag.trim().trim_matches('"').as_bytes();
    if t.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in t.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Checks `content` against an ETag: `Some(true/false)` for a plain MD5 ETag, `None` when
/// the ETag cannot be checked this way (multipart `…-N`, or not 32 hex digits).
pub fn etag_matches(etag: &str, content: &[u8]) -> Option<bool> {
    let expected = etag_md5(etag)?;
    let mut h = Md5::new();
    h.update(content);
    Some(h.finish() == expected)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn md5_file(path: &Path) -> io::Result<[u8; 16]> {
    let mut f = File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// MD5 (of the md-5 crate), to check S3 ETags.
#[derive(Clone, Default)]
pub(super) struct Md5(md5::Md5);

impl Md5 {
    fn new() -> Self {
        Md5::default()
    }

    fn update(&mut self, data: &[u8]) {
        md5::Digest::update(&mut self.0, data);
    }

    fn finish(self) -> [u8; 16] {
        md5::Digest::finalize(self.0).into()
    }
}

/// Whether transfers must stop: a failure elsewhere, or Ctrl-C (a `.part`
/// file resumes on the next run).
fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed) || crate::interrupt::requested()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_hex(data: &[u8]) -> String {
        let mut h = Md5::new();
        h.update(data);
        hex(&h.finish())
    }

    #[test]
    fn md5_known_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        let long: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut split = Md5::new();
        for piece in long.chunks(777) {
            split.update(piece);
        }
        assert_eq!(hex(&split.finish()), md5_hex(&long));
        for n in [55, 56, 63, 64, 65, 119, 120] {
            let data = vec![b'a'; n];
            let mut h = Md5::new();
            h.update(&data[..n / 2]);
            h.update(&data[n / 2..]);
            assert_eq!(hex(&h.finish()), md5_hex(&data), "len {n}");
        }
        assert_eq!(md5_hex(&[b'a'; 64]), "014842d480b571495a4a0363793f7367");
    }

    #[test]
    fn etag_forms() {
        assert_eq!(
            etag_matches("\"900150983cd24fb0d6963f7d28e17f72\"", b"abc"),
            Some(true)
        );
        assert_eq!(
            etag_matches("900150983CD24FB0D6963F7D28E17F72", b"abc"),
            Some(true)
        );
        assert_eq!(
            etag_matches("900150983cd24fb0d6963f7d28e17f72", b"abd"),
            Some(false)
        );
        assert_eq!(
            etag_matches("\"9b2cf535f27731c974343645a3985328-3\"", b"abc"),
            None
        );
        assert_eq!(
            etag_matches("zz0150983cd24fb0d6963f7d28e17f72", b"abc"),
            None
        );
    }

    #[test]
    fn content_ranges() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("garbage"), None);
    }

    #[test]
    fn local_errors() {
        let p = Path::new("/data/1.json.part");
        assert_eq!(
            local_io("writing", p, &io::Error::from_raw_os_error(28)),
            "disk full writing /data/1.json.part"
        );
        assert!(local_io("opening", p, &io::Error::from_raw_os_error(13))
            .starts_with("opening /data/1.json.part: "));
        assert!(
            backoff(0) >= Duration::from_millis(200) && backoff(0) <= Duration::from_millis(250)
        );
        assert!(
            backoff(3) >= Duration::from_millis(1600) && backoff(3) <= Duration::from_millis(2000)
        );
        assert!(backoff(40) <= BACKOFF_CAP + BACKOFF_CAP / 4);
    }
}
