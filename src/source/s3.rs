//! S3 source: list and download a KM export bucket. Async stays inside this module.
//!
//! KissMetrics writes an export as `<prefix>revisions/1.json … N.json` (some `N.json.gz`)
//! plus `<prefix>index.csv` and `<prefix>status.csv`. [`S3Source`] lists and downloads
//! such an export behind a blocking API; it owns a small tokio runtime, so it must not be
//! created or dropped from inside another async runtime.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Region, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use super::FileNames;

/// Where an export lives: `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Empty, or a key prefix ending in `/` (e.g. `exports/acct1/`).
    pub prefix: String,
}

impl FromStr for S3Url {
    type Err = anyhow::Error;

    /// Accepts `s3://bucket`, `s3://bucket/` and `s3://bucket/a/b` (a trailing `/` is optional).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| {
            anyhow!("invalid S3 URL `{s}`: {why} (expected s3://bucket or s3://bucket/prefix)")
        };
        let rest = match s.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("s3://") => &s[5..],
            _ => return Err(bad("it must start with s3://")),
        };
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        let bucket_ok = bucket.len() <= 255
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !bucket_ok {
            return Err(bad(
                "the bucket name may only hold letters, digits, '-', '.' and '_'",
            ));
        }
        if path.contains(['?', '#']) || path.chars().any(char::is_control) {
            return Err(bad("the prefix holds '?', '#' or control characters"));
        }
        let path = path.trim_start_matches('/');
        let prefix = match path.trim_end_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl fmt::Display for S3Url {
    /// `s3://bucket` or `s3://bucket/a/b` (no trailing slash; parses back to the same value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        match self.prefix.trim_end_matches('/') {
            "" => Ok(()),
            p => write!(f, "/{p}"),
        }
    }
}

/// Connection and transfer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// S3-compatible endpoint (e.g. `http://127.0.0.1:9000`); `None` for AWS itself.
    /// When set, path-style addressing is used.
    pub endpoint_url: Option<String>,
    /// Concurrent transfers (default 8; 0 is treated as 1).
    pub downloads: usize,
    /// Retries per object after the first attempt (default 5).
    pub retries: u32,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint_url: None,
            downloads: 8,
            retries: 5,
        }
    }
}

/// One revision file object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub revision: u64,
    pub key: String,
    /// The object's name in its folder, and the local file's.
    pub name: String,
    pub size: u64,
    /// ETag without quotes.
    pub etag: Option<String>,
    pub gzip: bool,
}

/// What [`S3Source::list`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by revision number, one entry per revision.
    pub files: Vec<RemoteFile>,
    pub index_csv: Option<String>,
    pub status_csv: Option<String>,
    /// Names under `revisions/` that look like revisions but are not
    /// ([`crate::source::FileNames::near_miss`]), sorted: not imported.
    pub ignored: Vec<String>,
}

/// A revision file complete on local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub revision: u64,
    pub path: PathBuf,
    pub gzip: bool,
    pub bytes: u64,
}

/// A download failure, naming the object: `s3://bucket/key: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct ObjectError {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// Blocking client for one export location.
pub struct S3Source {
    runtime: tokio::runtime::Runtime,
    /// SDK-level retries; used for listing and small reads.
    client: Client,
    /// No SDK retries: [`S3Source::download`] retries and resumes by itself.
    get_client: Client,
    url: S3Url,
    config: S3Config,
}

impl fmt::Debug for S3Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Source")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish()
    }
}

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
const NEEDS: &str = "the credentials need s3:ListBucket and s3:GetObject on the bucket";

impl S3Source {
    /// Builds the client from the standard AWS chain (env, profile, instance role). With an
    /// endpoint URL, uses path-style addressing (S3-compatible stores). Region defaults to
    /// us-east-1 when none is configured.
    pub fn connect(url: S3Url, config: S3Config) -> anyhow::Result<S3Source> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kmdb-s3")
            .enable_all()
            .build()
            .context("starting the S3 I/O runtime")?;
        let region = RegionProviderChain::default_provider().or_else(Region::new("us-east-1"));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = runtime.block_on(loader.load());
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            // Our own MD5/size check covers downloads; SDK validation trips over ranged GETs.
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if config.endpoint_url.is_some() {
            builder = builder.force_path_style(true);
        }
        let list_conf = builder
            .clone()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.retries.saturating_add(1))
                    .with_initial_backoff(BACKOFF_BASE)
                    .with_max_backoff(BACKOFF_CAP),
            )
            .build();
        let get_conf = builder.retry_config(RetryConfig::disabled()).build();
        Ok(S3Source {
            runtime,
            client: Client::from_conf(list_conf),
            get_client: Client::from_conf(get_conf),
            url,
            config,
        })
    }

    /// The location this source reads.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Lists `<prefix>revisions/` (all pages), keeps `N.json` and `N.json.gz` sorted by N,
    /// and reads `index.csv` / `status.csv` when present (unreadable ones become `None`).
    ///
    /// If both `N.json` and `N.json.gz` exist, the plain `N.json` is kept.
    pub fn list(&self, names: &dyn FileNames) -> anyhow::Result<Listing> {
        self.runtime.block_on(self.list_async(names))
    }

    async fn list_async(&self, names: &dyn FileNames) -> anyhow::Result<Listing> {
        let folder = names.folder().map(|f| format!("{f}/")).unwrap_or_default();
        let dir = format!("{}{folder}", self.url.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.url.bucket)
            .prefix(&dir)
            .into_paginator()
            .send();
        let mut files = Vec::new();
        let mut ignored = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| anyhow!("listing {}: {}", self.url, self.explain(&e)))?;
            for obj in page.contents() {
                let Some(key) = obj.key() else { continue };
                let name = key.strip_prefix(dir.as_str()).unwrap_or(key);
                let Some((revision, gzip)) = names.revision_of(name) else {
                    if names.near_miss(name) {
                        ignored.push(name.to_string());
                    }
                    continue;
                };
                files.push(RemoteFile {
                    revision,
                    key: key.to_string(),
                    name: name.to_string(),
                    size: obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: obj.e_tag().map(|t| t.trim_matches('"').to_string()),
                    gzip,
                });
            }
        }
        if files.is_empty() {
            return Err(anyhow!(
                "no {folder}{} files under {}",
                names.names().split(" or ").next().unwrap_or_default(),
                self.url
            ));
        }
        files.sort_by(|a, b| (a.revision, a.gzip, &a.key).cmp(&(b.revision, b.gzip, &b.key)));
        files.dedup_by_key(|f| f.revision);
        let (index_csv, status_csv) = tokio::join!(
            self.read_optional(format!("{}index.csv", self.url.prefix)),
            self.read_optional(format!("{}status.csv", self.url.prefix)),
        );
        ignored.sort();
        Ok(Listing {
            files,
            index_csv,
            status_csv,
            ignored,
        })
    }

    async fn read_optional(&self, key: String) -> Option<String> {
        let out = self
            .client
            .get_object()
            .bucket(&self.url.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

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
                    if stop.load(Ordering::Relaxed) {
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
            if stop.load(Ordering::Relaxed) {
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
                if stop.load(Ordering::Relaxed) {
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
            if stop.load(Ordering::Relaxed) {
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

    fn classify_get<E>(&self, err: &SdkError<E, HttpResponse>) -> Outcome
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Outcome::Retry {
                reason: plain(err),
                progressed: false,
            },
            // A connection closed before any answer comes as an "other"
            // error the SDK marks transient: retry it like an I/O error.
            SdkError::DispatchFailure(d)
                if d.is_io()
                    || d.is_timeout()
                    || d.as_other() == Some(aws_config::retry::ErrorKind::TransientError) =>
            {
                Outcome::Retry {
                    reason: plain(err),
                    progressed: false,
                }
            }
            SdkError::ServiceError(se) => {
                let status = service_status(err);
                match (se.err().code(), status) {
                    (Some("InvalidRange"), _) | (_, Some(416)) => {
                        Outcome::Restart("range not satisfiable (object changed?)".into())
                    }
                    (
                        Some(
                            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable",
                        ),
                        _,
                    ) => Outcome::Retry {
                        reason: self.explain(err),
                        progressed: false,
                    },
                    (_, Some(s)) if s >= 500 || s == 429 => Outcome::Retry {
                        reason: self.explain(err),
                        progressed: false,
                    },
                    _ => Outcome::Fatal(self.explain(err)),
                }
            }
            _ => Outcome::Fatal(self.explain(err)),
        }
    }

    /// A readable one-line reason for an SDK error (never includes credentials).
    fn explain<E>(&self, err: &SdkError<E, HttpResponse>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = &self.url.bucket;
        if let SdkError::ServiceError(se) = err {
            let code = se.err().code().unwrap_or("");
            let status = service_status(err);
            return match code {
                "NoSuchBucket" => format!("bucket {bucket} does not exist"),
                "NoSuchKey" => "object not found (deleted since listing?)".to_string(),
                "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => {
                    format!("access denied; {NEEDS}")
                }
                "InvalidAccessKeyId" => format!(
                    "bad credentials: the access key ID is not known to S3 (InvalidAccessKeyId); \
                     check AWS_ACCESS_KEY_ID / AWS_PROFILE; {NEEDS}"
                ),
                "SignatureDoesNotMatch" => format!(
                    "bad credentials: the secret access key does not match the access key ID \
                     (SignatureDoesNotMatch); {NEEDS}"
                ),
                "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => {
                    format!("bad credentials: the session token is expired or invalid ({code}); {NEEDS}")
                }
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException" => {
                    format!("bucket {bucket} is in another region; set AWS_REGION to the bucket's region ({code})")
                }
                _ if status == Some(403) => format!("access denied (HTTP 403); {NEEDS}"),
                _ if status == Some(404) => format!("bucket {bucket} does not exist (HTTP 404)"),
                _ if status == Some(301) => {
                    format!("bucket {bucket} is in another region; set AWS_REGION to the bucket's region")
                }
                _ => {
                    let msg = se.err().message().unwrap_or("no message");
                    match status {
                        Some(s) => format!("S3 error {code} (HTTP {s}): {msg}"),
                        None => format!("S3 error {code}: {msg}"),
                    }
                }
            };
        }
        let text = plain(err);
        if text.contains("no credentials found") {
            format!(
                "no AWS credentials found (tried environment, profile, web identity, ECS and instance \
                 metadata); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; {NEEDS}"
            )
        } else if text.contains("credential") {
            format!("could not load AWS credentials: {text}; {NEEDS}")
        } else {
            text
        }
    }
}

/// What to do after one attempt.
enum Outcome {
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

/// An SDK error's cause chain on one line, without the SDK's generic wrapper words.
fn plain<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + 'static,
{
    let lead = match err {
        SdkError::DispatchFailure(_) => "cannot reach S3",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::ResponseError(_) => "bad response from S3",
        _ => "S3 request failed",
    };
    match std::error::Error::source(err) {
        Some(cause) => format!("{lead}: {}", chain(cause)),
        None => lead.to_string(),
    }
}

/// `e: cause: cause…` on one line, skipping empty, generic and repeated parts.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(e) = cur {
        let text = e
            .to_string()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let generic = matches!(
            text.as_str(),
            "" | "dispatch failure" | "io error" | "other" | "timeout" | "response error"
        );
        if !generic && parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = e.source();
    }
    if parts.is_empty() {
        "unknown error".to_string()
    } else {
        parts.join(": ")
    }
}

fn service_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    }
}

fn backoff(k: u32) -> Duration {
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
fn range_start(content_range: &str) -> Option<u64> {
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

fn open_part(part: &Path, offset: u64) -> io::Result<File> {
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

fn remove_part(part: &Path) -> io::Result<()> {
    match fs::remove_file(part) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn local_io(action: &str, path: &Path, e: &io::Error) -> String {
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
fn etag_md5(etag: &str) -> Option<[u8; 16]> {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_file(path: &Path) -> io::Result<[u8; 16]> {
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
struct Md5(md5::Md5);

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

/// Summary line of index.csv/status.csv for the user, e.g. `KM says: 275 revisions
/// exported; index lists 136 files (revisions 140..275) covering 2012-10-25 .. 2013-03-10
/// (KM receive times)`. Tolerant of unknown or missing columns; None if nothing readable.
pub fn describe_export(index_csv: Option<&str>, status_csv: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(s) = status_csv.and_then(describe_status) {
        parts.push(s);
    }
    if let Some(s) = index_csv.and_then(describe_index) {
        parts.push(s);
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!("KM says: {}", parts.join("; ")))
    }
}

fn describe_status(csv: &str) -> Option<String> {
    let (header, rows) = parse_csv(csv)?;
    let row = rows.last()?;
    let get = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| h == name)?;
        row.get(i)?.trim().parse().ok()
    };
    let exported = get("exported_revisions");
    let total = get("total_revisions");
    let mut s = match (exported, total) {
        (Some(e), Some(t)) if e == t => format!("{e} revisions exported"),
        (Some(e), Some(t)) => format!("{e} of {t} revisions exported"),
        (Some(e), None) => format!("{e} revisions exported"),
        (None, Some(t)) => format!("{t} revisions in total"),
        (None, None) => return None,
    };
    let latest = get("max_exported_revision_timestamp")
        .map(unix_date)
        .or_else(|| {
            let i = header
                .iter()
                .position(|h| h == "max_exported_revision_utc_date")?;
            row.get(i)
                .map(|d| d.trim().chars().take(10).collect::<String>())
                .filter(|d| !d.is_empty())
        });
    if let Some(d) = latest {
        s.push_str(&format!(" (latest {d})"));
    }
    Some(s)
}

fn describe_index(csv: &str) -> Option<String> {
    let (header, rows) = parse_csv(csv)?;
    let col = |name: &str| header.iter().position(|h| h == name);
    let (file_c, min_c, max_c) = (col("filename"), col("min_timestamp"), col("max_timestamp"));
    let (min_d, max_d) = (col("min_utc_date"), col("max_utc_date"));
    let field = |row: &Vec<String>, c: Option<usize>| {
        c.and_then(|i| row.get(i)).map(|s| s.trim().to_string())
    };
    let mut revs: Option<(u64, u64)> = None;
    let mut times: Option<(u64, u64)> = None;
    let mut dates: Option<(String, String)> = None;
    for row in &rows {
        let rev = field(row, file_c).and_then(|f| {
            let name = f.rsplit('/').next()?;
            let digits = name.split('.').next()?;
            digits.parse::<u64>().ok()
        });
        if let Some(n) = rev {
            revs = Some(revs.map_or((n, n), |(a, b)| (a.min(n), b.max(n))));
        }
        let lo = field(row, min_c).and_then(|s| s.parse::<u64>().ok());
        let hi = field(row, max_c).and_then(|s| s.parse::<u64>().ok());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            times = Some(times.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        let dlo = field(row, min_d).map(|s| s.chars().take(10).collect::<String>());
        let dhi = field(row, max_d).map(|s| s.chars().take(10).collect::<String>());
        if let (Some(dlo), Some(dhi)) = (dlo, dhi) {
            if !dlo.is_empty() && !dhi.is_empty() {
                dates = Some(match dates {
                    None => (dlo, dhi),
                    Some((a, b)) => (a.min(dlo), b.max(dhi)),
                });
            }
        }
    }
    let span = times.map(|(a, b)| (unix_date(a), unix_date(b))).or(dates);
    if rows.is_empty() || (revs.is_none() && span.is_none()) {
        return None;
    }
    let mut s = format!(
        "index lists {} file{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    if let Some((a, b)) = revs {
        s.push_str(&format!(" (revisions {a}..{b})"));
    }
    if let Some((a, b)) = span {
        s.push_str(&format!(" covering {a} .. {b} (KM receive times)"));
    }
    Some(s)
}

/// Header (trimmed, lower-cased) and non-empty data rows. Handles double-quoted fields.
fn parse_csv(text: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty());
    let header: Vec<String> = split_csv_line(lines.next()?)
        .into_iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let rows = lines.map(split_csv_line).collect();
    Some((header, rows))
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp in seconds.
fn unix_date(secs: u64) -> String {
    crate::dates::Day::of(secs.min(i64::MAX as u64) as i64).to_string()
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
    fn urls() {
        let u: S3Url = "s3://b".parse().unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("b", ""));
        assert_eq!(u.to_string(), "s3://b");
        let u: S3Url = "s3://b/".parse().unwrap();
        assert_eq!(u.prefix, "");
        let u: S3Url = "s3://my-bucket/a/b".parse().unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.prefix.as_str()),
            ("my-bucket", "a/b/")
        );
        assert_eq!(u.to_string(), "s3://my-bucket/a/b");
        assert_eq!("s3://my-bucket/a/b/".parse::<S3Url>().unwrap(), u);
        for bad in [
            "",
            "b/x",
            "http://b/x",
            "s3://",
            "s3:///x",
            "s3://b c/x",
            "s3://b/x?y",
        ] {
            let e = bad.parse::<S3Url>().unwrap_err().to_string();
            assert!(e.contains("invalid S3 URL"), "{bad}: {e}");
        }
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

    #[test]
    fn dates() {
        assert_eq!(unix_date(0), "1970-01-01");
        assert_eq!(unix_date(1351187402), "2012-10-25");
        assert_eq!(unix_date(1362921003), "2013-03-10");
        assert_eq!(unix_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn describes_km_csvs() {
        let index = "filename,min_timestamp,max_timestamp,min_utc_date,max_utc_date\n\
            revisions/140.json,1351187402,1351188301,2012-10-25 17:50 GMT,2012-10-25 18:05 GMT\n\
            revisions/275.json,1362921002,1362921003,2013-03-10 13:10 GMT,2013-03-10 13:10 GMT\n";
        let status = "total_revisions,exported_revisions,max_exported_revision_timestamp,max_exported_revision_utc_date\n\
            275,275,1362921003,2013-03-10 13:10 GMT\n";
        assert_eq!(
            describe_export(Some(index), Some(status)).unwrap(),
            "KM says: 275 revisions exported (latest 2013-03-10); index lists 2 files (revisions 140..275) \
             covering 2012-10-25 .. 2013-03-10 (KM receive times)"
        );
        assert_eq!(
            describe_export(
                None,
                Some("exported_revisions,total_revisions,extra\r\n3,5,x\r\n")
            )
            .unwrap(),
            "KM says: 3 of 5 revisions exported"
        );
        // Dates only, unknown columns, quoted fields.
        let odd = "\"filename\",other,min_utc_date,max_utc_date\n\"revisions/1.json.gz\",\"a,b\",2014-01-03 00:00 GMT,2014-01-04 GMT\n";
        assert_eq!(
            describe_export(Some(odd), None).unwrap(),
            "KM says: index lists 1 file (revisions 1..1) covering 2014-01-03 .. 2014-01-04 (KM receive times)"
        );
        assert_eq!(describe_export(None, None), None);
        assert_eq!(describe_export(Some(""), Some("garbage\n")), None);
        assert_eq!(describe_export(Some("a,b\n1,2\n"), Some("x\ny\n")), None);
    }
}
