//! S3 source: list and download an export's bucket. Async stays inside this
//! module: [`S3Source`] lists ([`S3Source::list`]) and downloads
//! (`download.rs`) behind a blocking API, explaining the SDK's errors
//! (`explain.rs`); it owns a small tokio runtime, so it must not be created
//! or dropped from inside another async runtime.

mod download;
mod explain;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Region, ResponseChecksumValidation};
use aws_sdk_s3::Client;

use super::FileNames;

pub use download::etag_matches;
pub use url::S3Url;

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
    pub(super) runtime: tokio::runtime::Runtime,
    /// SDK-level retries; used for listing and small reads.
    pub(super) client: Client,
    /// No SDK retries: [`S3Source::download`] retries and resumes by itself.
    pub(super) get_client: Client,
    pub(super) url: S3Url,
    pub(super) config: S3Config,
}

impl fmt::Debug for S3Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Source")
            .field("url", &self.url)
            .field("config", &self.config)
            .finish()
    }
}

pub(super) const BACKOFF_BASE: Duration = Duration::from_millis(200);
pub(super) const BACKOFF_CAP: Duration = Duration::from_secs(10);
pub(super) const NEEDS: &str = "the credentials need s3:ListBucket and s3:GetObject on the bucket";

/// The HTTPS client of every S3 call: rustls with ring's cryptography and
/// the system's root certificates (the SDK's default, aws-lc, is a large C
/// library to build, and kmdb needs nothing it adds).
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

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
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            );
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        // The loader's own region chain (environment, profile, instance
        // metadata) uses its HTTPS client; us-east-1 when it finds none.
        let shared = runtime.block_on(loader.load());
        let region = shared
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new("us-east-1"));
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .region(region)
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
}
