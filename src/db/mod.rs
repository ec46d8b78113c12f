//! MySQL/MariaDB: connecting (with a redacted URL in every message), the
//! schema, partitions and `LOAD DATA`. The only module that talks SQL.

pub mod load;
pub mod postgres;
pub mod schema;

use std::fmt;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

pub use load::InfileAllowlist;

/// A `DATABASE_URL` that never shows its password, not even in `Debug`.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        let db = DatabaseUrl {
            url: url.trim().to_owned(),
        };
        if !db.url.starts_with("mysql://") {
            bail!(
                "DATABASE_URL must look like mysql://user:password@host:port/database (got {db})"
            );
        }
        Opts::from_url(&db.url)
            .map_err(|e| anyhow::anyhow!("{}", redact_in(&e.to_string(), &db.url)))
            .with_context(|| format!("DATABASE_URL {db} is not a valid MySQL URL"))?;
        if db.database().is_none() {
            bail!("DATABASE_URL {db} names no database: add /DATABASE at its end");
        }
        Ok(db)
    }

    fn opts(&self) -> Opts {
        Opts::from_url(&self.url).expect("checked in parse")
    }

    pub fn database(&self) -> Option<String> {
        self.opts()
            .get_db_name()
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    }

    fn password(&self) -> Option<String> {
        self.opts()
            .get_pass()
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    }

    /// `host:port` of the server.
    pub fn server(&self) -> String {
        let o = self.opts();
        format!("{}:{}", o.get_ip_or_hostname(), o.get_tcp_port())
    }

    /// Replaces this URL's password wherever it appears in `text`.
    pub fn redact(&self, text: &str) -> String {
        redact_in(text, &self.url)
    }
}

/// Replaces the password of `url` in `text` with `***`.
fn redact_in(text: &str, url: &str) -> String {
    let mut out = text.to_owned();
    if let Some((_, rest)) = url.split_once("://") {
        // The last `@` ends the user part, even when a password holds an
        // unencoded `/` or `@`.
        let userinfo = rest.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
        if !userinfo.is_empty() {
            if let Some((_, pass)) = userinfo.split_once(':') {
                if !pass.is_empty() {
                    out = out.replace(pass, "***");
                    if let Ok(decoded) = percent_decode(pass) {
                        if !decoded.is_empty() {
                            out = out.replace(&decoded, "***");
                        }
                    }
                }
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])?;
            out.push(u8::from_str_radix(hex, 16)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redact(&self.url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Opens a session: UTC, utf8mb4, and `LOAD DATA LOCAL` served only from
/// `allow`.
pub fn connect(url: &DatabaseUrl, allow: Option<Arc<InfileAllowlist>>) -> Result<Conn> {
    let mut builder = OptsBuilder::from_opts(url.opts())
        .init(vec!["SET time_zone = '+00:00'", "SET NAMES utf8mb4"])
        .tcp_connect_timeout(Some(std::time::Duration::from_secs(10)));
    if let Some(allow) = allow {
        builder = builder.local_infile_handler(Some(load::handler(allow)));
    }
    if url.password().is_none() {
        builder = builder.pass(None::<String>);
    }
    Conn::new(builder).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to MySQL at {} ({url}): {}",
            url.server(),
            url.redact(&e.to_string())
        )
    })
}

/// Server flavour, for the collation of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    pub fn detect(conn: &mut Conn) -> Result<Flavor> {
        let version: String = conn
            .query_first("SELECT VERSION()")?
            .context("server reported no version")?;
        Ok(if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        })
    }

    /// Binary, no-pad collation: `abc` and `abc ` stay two names.
    pub fn name_collation(self) -> &'static str {
        match self {
            Flavor::MariaDb => "utf8mb4_nopad_bin",
            Flavor::MySql => "utf8mb4_0900_bin",
        }
    }
}

/// Fails with the fix when the server refuses `LOAD DATA LOCAL INFILE`.
pub fn check_local_infile(conn: &mut Conn) -> Result<()> {
    let on: Option<i64> = conn.query_first("SELECT @@GLOBAL.local_infile")?;
    if on != Some(1) {
        bail!(
            "the MySQL server has local_infile disabled, which kmdb needs for LOAD DATA LOCAL INFILE: \
             run `SET GLOBAL local_infile = 1;` as an admin, or add `local_infile = 1` under [mysqld] \
             in the server's configuration and restart it"
        );
    }
    Ok(())
}

/// Runs a statement, with the statement's purpose as error context.
pub fn exec(conn: &mut Conn, sql: &str, what: &str) -> Result<()> {
    conn.query_drop(sql).with_context(|| what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = DatabaseUrl::parse("mysql://kmdb:s3cr%40t@db.example:3307/km").unwrap();
        assert_eq!(url.to_string(), "mysql://kmdb:***@db.example:3307/km");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(mysql://kmdb:***@db.example:3307/km)"
        );
        assert_eq!(url.redact("bad s3cr@t and s3cr%40t"), "bad *** and ***");
        assert_eq!(url.server(), "db.example:3307");
    }

    #[test]
    fn url_must_name_a_database() {
        let err = DatabaseUrl::parse("mysql://u:pw@h:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no database"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        let err = DatabaseUrl::parse("postgres://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://user:password@host"), "{err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
}
