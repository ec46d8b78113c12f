//! PostgreSQL (SPEC §8): connecting from a `postgres://` URL (the password
//! never shown), the schema, partitions, `COPY … FROM STDIN` loads and the
//! statements of the catch-up. The only module that talks to PostgreSQL.
//!
//! Sessions run in UTC with ISO dates, whatever the server's `TimeZone` and
//! `DateStyle`: `t` is a `timestamp` written and read as UTC text, and the
//! partition bounds the catalog prints are parsed in ISO form.

pub mod catchup;
pub mod load;
pub mod partition;
pub mod schema;

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Result};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

/// The form a PostgreSQL `DATABASE_URL` takes, for messages.
pub const URL_FORM: &str = "postgres://user:password@host:5432/database";

/// Whether `url` names a PostgreSQL server (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A PostgreSQL `DATABASE_URL` that never shows its password, not even in
/// `Debug`.
#[derive(Clone)]
pub struct PgUrl {
    url: String,
    config: Config,
}

impl PgUrl {
    pub fn parse(url: &str) -> Result<PgUrl> {
        let url = url.trim().to_owned();
        if !is_postgres_url(&url) {
            bail!(
                "DATABASE_URL must look like {URL_FORM} (or postgresql://…) (got {})",
                redact_userinfo(&url, &url)
            );
        }
        let config: Config = encode_userinfo(&url)
            .parse()
            .map_err(|e: postgres::Error| {
                anyhow::anyhow!(
                    "DATABASE_URL {} is not a valid PostgreSQL URL: {}",
                    redact_userinfo(&url, &url),
                    redact_userinfo(&message(&e), &url)
                )
            })?;
        let db = PgUrl { url, config };
        if db.config.get_hosts().is_empty() {
            bail!("DATABASE_URL {db} names no host: write it as {URL_FORM}");
        }
        if db.database().is_empty() {
            bail!("DATABASE_URL {db} names no database: add /DATABASE at its end");
        }
        if db.config.get_ssl_mode() == postgres::config::SslMode::Require {
            bail!(
                "DATABASE_URL {db} asks for sslmode=require, and kmdb does not speak TLS to \
                 PostgreSQL: connect through a local tunnel, or drop sslmode=require"
            );
        }
        Ok(db)
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    /// `host:port` of the server (the first one of a list).
    pub fn server(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// Replaces this URL's password wherever it appears in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = redact_userinfo(text, &self.url);
        if let Some(pass) = self.config.get_password() {
            let pass = String::from_utf8_lossy(pass);
            if !pass.is_empty() {
                out = out.replace(&*pass, "***");
            }
        }
        out
    }
}

/// `url` with the `@`, `/`, `?` and `#` of its user and password
/// percent-encoded: the last `@` (before any `?`) ends them, as for
/// [`redact_userinfo`], where the client library would stop at the first.
fn encode_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let before_query = rest.split('?').next().unwrap_or("");
    let Some(at) = before_query.rfind('@') else {
        return url.to_owned();
    };
    let mut out = format!("{scheme}://");
    for c in rest[..at].chars() {
        match c {
            '@' => out.push_str("%40"),
            '/' => out.push_str("%2F"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str(&rest[at..]);
    out
}

/// Replaces the password of the URL `url` in `text` with `***`.
fn redact_userinfo(text: &str, url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return text.to_owned();
    };
    // The last `@` (before any `?`) ends the user part, even when a
    // password holds an unencoded `/` or `@`.
    let before_query = rest.split('?').next().unwrap_or("");
    let userinfo = before_query.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
    match userinfo.split_once(':') {
        Some((_, pass)) if !pass.is_empty() => text.replace(pass, "***"),
        _ => text.to_owned(),
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redact(&self.url))
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

/// Statements every session runs first: UTC, ISO dates, no notices.
const SESSION_SETUP: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; \
                             SET client_min_messages = warning";

/// Opens a session in UTC. Errors say what failed and what to check, and
/// never hold the password.
pub fn connect(url: &PgUrl) -> Result<Client> {
    let mut config = url.config.clone();
    config
        .connect_timeout(Duration::from_secs(10))
        .application_name("kmdb");
    let mut client = config
        .connect(NoTls)
        .map_err(|e| anyhow::anyhow!("{}", url.redact(&connect_error(url, &e))))?;
    client
        .batch_execute(SESSION_SETUP)
        .map_err(|e| anyhow::anyhow!("setting up the session on {}: {}", url, message(&e)))?;
    Ok(client)
}

/// What a failed connection means for the user.
fn connect_error(url: &PgUrl, e: &postgres::Error) -> String {
    let server = url.server();
    let (user, db) = (url.user(), url.database());
    let Some(db_error) = e.as_db_error() else {
        return format!(
            "cannot connect to PostgreSQL at {server} ({url}): {}: is the server running, and \
             are the host and port of DATABASE_URL right?",
            message(e)
        );
    };
    let code = db_error.code();
    if *code == SqlState::INVALID_PASSWORD {
        format!(
            "PostgreSQL at {server} refused the password of user {user:?}: check the password \
             in DATABASE_URL ({url})"
        )
    } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        format!(
            "PostgreSQL at {server} does not let user {user:?} in ({}): check the user of \
             DATABASE_URL ({url}) and the server's pg_hba.conf",
            db_error.message()
        )
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        format!(
            "database {db:?} does not exist on PostgreSQL at {server}: create it \
             (CREATE DATABASE \"{db}\" OWNER \"{user}\") or fix DATABASE_URL ({url})"
        )
    } else {
        format!(
            "cannot connect to PostgreSQL at {server} ({url}): {}",
            message(e)
        )
    }
}

/// The text of an error: the server's message, code and detail for a
/// server error, else the client's error and its cause.
pub fn message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            out.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!("; hint: {hint}"));
        }
        return out;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether `e` means the session is gone: the connection broke or the
/// server is shutting down or restarting.
pub fn is_lost(e: &postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        None => true,
    }
}

/// The error of a statement doing `what`; a lost session says so, and
/// that a re-run of the import resumes.
pub fn failed(e: postgres::Error, what: &str) -> anyhow::Error {
    if is_lost(&e) {
        anyhow::anyhow!(
            "lost the connection to the PostgreSQL server while {what} ({}); when the server \
             is back, run the same `kmdb import` again: it resumes",
            message(&e)
        )
    } else {
        anyhow::anyhow!("{what}: {}", message(&e))
    }
}

/// `.doing("what")` on a PostgreSQL result: the error as [`failed`] words it.
pub trait Doing<T> {
    fn doing(self, what: &str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, postgres::Error> {
    fn doing(self, what: &str) -> Result<T> {
        self.map_err(|e| failed(e, what))
    }
}

/// A `u64` id or count as the `bigint` PostgreSQL stores (kmdb's ids stay
/// below 2^63: revisions are at most 2^23 - 1).
pub fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = PgUrl::parse("postgres://kmdb:s3cr%40t@db.example:5433/km").unwrap();
        assert_eq!(url.to_string(), "postgres://kmdb:***@db.example:5433/km");
        assert_eq!(
            format!("{url:?}"),
            "PgUrl(postgres://kmdb:***@db.example:5433/km)"
        );
        assert_eq!(url.redact("bad s3cr@t and s3cr%40t"), "bad *** and ***");
        assert_eq!(url.server(), "db.example:5433");
        assert_eq!(url.database(), "km");
        assert_eq!(url.user(), "kmdb");
        // Unencoded `@` and `/` in a password: the last `@` ends it.
        let url = PgUrl::parse("postgresql://u:p@s/s@h/db?application_name=a@b").unwrap();
        assert_eq!(
            url.to_string(),
            "postgresql://u:***@h/db?application_name=a@b"
        );
        assert_eq!((url.server().as_str(), url.database()), ("h:5432", "db"));
        assert_eq!(url.redact("p@s/s"), "***");
    }

    #[test]
    fn urls_of_other_forms_are_refused_without_their_password() {
        for (bad, says) in [
            ("mysql://u:pw1@h:3306/db", "must look like postgres://"),
            ("postgres://u:pw1@h:5432", "names no database"),
            ("postgres://u:pw1@/db", "names no host"),
            (
                "postgres://u:pw1@h/db?sslmode=require",
                "does not speak TLS",
            ),
            ("postgres://u:pw1@h:port/db", "not a valid PostgreSQL URL"),
        ] {
            let err = PgUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(!err.contains("pw1"), "{bad}: {err}");
        }
        assert!(is_postgres_url(" postgresql://h/db"));
        assert!(!is_postgres_url("mysql://h/db"));
    }
}
