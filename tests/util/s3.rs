//! S3 side of the harness: the local S3 server (moto) of `scripts/s3-server.sh`, and a
//! test-side client that creates buckets and objects on it.
//!
//! Credentials are `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION` from the
//! environment, `test` / `test` / `us-east-1` when unset (moto accepts anything).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;

/// The AWS variables of the tests' credentials, with their moto defaults.
pub const AWS_DEFAULTS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
];

/// An AWS variable from the environment, or the moto default.
pub fn aws_var(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The moto endpoint from `KMDB_TEST_S3_ENDPOINT`.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("KMDB_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        // A skipped test could not fail: without a server, say so and fail.
        _ => panic!(
            "{test}: KMDB_TEST_S3_ENDPOINT is not set: run the tests with scripts/test.sh, \
             which starts a local S3 server"
        ),
    }
}

/// A name (of a bucket, a directory) no other test or earlier run uses.
pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "kmdb-{tag}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Test-side S3 client for creating buckets and objects.
pub struct Admin {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
}

impl Admin {
    pub fn new(endpoint: &str) -> Admin {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(kmdb::source::s3::https_client())
            .region(Region::new(aws_var("AWS_REGION", "us-east-1")))
            .credentials_provider(Credentials::new(
                aws_var("AWS_ACCESS_KEY_ID", "test"),
                aws_var("AWS_SECRET_ACCESS_KEY", "test"),
                None,
                None,
                "kmdb-tests",
            ))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Admin {
            rt,
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    /// Creates a bucket of a [`unique`] name and returns the name.
    pub fn bucket(&self, tag: &str) -> String {
        let name = unique(tag);
        self.rt
            .block_on(self.client.create_bucket().bucket(&name).send())
            .expect("create bucket");
        name
    }

    /// Uploads objects, 32 at a time.
    pub fn put_all(&self, bucket: &str, objects: &[(String, Vec<u8>)]) {
        self.rt.block_on(async {
            for batch in objects.chunks(32) {
                let mut set = tokio::task::JoinSet::new();
                for (key, body) in batch {
                    let req = self
                        .client
                        .put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(ByteStream::from(body.clone()));
                    set.spawn(async move { req.send().await.map(|_| ()) });
                }
                while let Some(r) = set.join_next().await {
                    r.unwrap().expect("put object");
                }
            }
        });
    }
}
