//! Argument groups several subcommands share: the database, the state
//! store and the S3 source.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::db::url::URL_FORMS;
use crate::db::{Backend, DatabaseUrl};
use crate::exit::usage;
use crate::source::{s3, Source};
use crate::state;

/// The database.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// mysql://user:password@host:port/database
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
    pub fn url(&self) -> Result<DatabaseUrl> {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => DatabaseUrl::parse(url),
            _ => anyhow::bail!(
                "no database given: set DATABASE_URL to {URL_FORMS} (or pass --database-url)"
            ),
        }
    }
}

/// The state store.
#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// State store file (identities, keys, imported revisions) [default:
    /// kmdb-state-HOST-PORT-DATABASE.sqlite in the current directory, one
    /// per database]
    #[arg(long = "state", env = "KMDB_STATE")]
    pub path: Option<PathBuf>,
}

impl StateArgs {
    /// The state file: `--state`, or the default one of the database `url`.
    pub fn path_for(&self, url: &DatabaseUrl) -> PathBuf {
        match &self.path {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => {
                let port = url.port().unwrap_or(match url.backend() {
                    Backend::MySql => 3306,
                    Backend::Postgres => 5432,
                });
                PathBuf::from(state::default_file_name(url.host(), port, &url.database()))
            }
        }
    }
}

/// Where an S3 export is and how to fetch it.
#[derive(Args, Debug, Clone)]
pub struct S3Args {
    /// S3-compatible endpoint (path-style addressing), e.g. http://127.0.0.1:9000.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Concurrent downloads.
    #[arg(long, env = "KMDB_DOWNLOADS", default_value_t = 8)]
    pub downloads: usize,
    /// Bucket used when no SOURCE is given (km-db's variable).
    #[arg(long, env = "AWS_BUCKET", hide = true)]
    pub aws_bucket: Option<String>,
}

impl S3Args {
    /// SOURCE (a directory or s3:// URL), or `s3://$AWS_BUCKET` when absent.
    pub fn source(&self, given: Option<&str>) -> Result<Source> {
        let text = match (given, &self.aws_bucket) {
            (Some(s), _) => s.to_owned(),
            (None, Some(bucket)) if !bucket.is_empty() => format!("s3://{bucket}"),
            _ => bail!("no SOURCE given: pass an export directory or s3://bucket[/prefix] (or set AWS_BUCKET)"),
        };
        if text.starts_with("s3://") || text.starts_with("S3://") {
            if self.downloads == 0 {
                return Err(usage("--downloads must be at least 1"));
            }
            Ok(Source::S3 {
                url: text.parse()?,
                config: s3::S3Config {
                    endpoint_url: self.endpoint_url.clone().filter(|e| !e.is_empty()),
                    downloads: self.downloads,
                    ..s3::S3Config::default()
                },
            })
        } else {
            Ok(Source::Local(PathBuf::from(text)))
        }
    }
}
