//! `DATABASE_URL`: parsed once into its parts, shown everywhere with its
//! password replaced by `***` (and nothing else: a user or database named
//! like the password stays readable).

use std::fmt;

use anyhow::{bail, Result};

/// Which kind of server a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    MySql,
    Postgres,
}

/// What every message about a missing or wrong URL shows as the form.
pub const URL_FORMS: &str =
    "mysql://user:password@host:port/database or postgres://user:password@host:port/database";

/// A `DATABASE_URL` that never shows its password, not even in `Debug`.
#[derive(Clone)]
pub struct DatabaseUrl {
    backend: Backend,
    /// As given, for the drivers' own parsers: never shown.
    raw: String,
    scheme: String,
    /// The parts as written (percent-encoded), for display.
    user: String,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    database: String,
    query: Option<String>,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        let raw = url.trim();
        let shown = redact_unparsed(raw);
        let Some((scheme, rest)) = raw.split_once("://") else {
            bail!("DATABASE_URL must look like {URL_FORMS} (got {shown})");
        };
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Backend::MySql,
            "postgres" | "postgresql" => Backend::Postgres,
            _ => bail!("DATABASE_URL must look like {URL_FORMS} (got {shown})"),
        };
        // The last `@` ends the user part; special characters before it
        // must be percent-encoded, as in any URL.
        let (userinfo, location) = match rest.rsplit_once('@') {
            Some((u, l)) => (Some(u), l),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            },
            None => ("", None),
        };
        if let Some(c) = userinfo.and_then(|u| u.chars().find(|c| "@/?#".contains(*c))) {
            bail!(
                "DATABASE_URL {shown} holds a raw '{c}' in its user or password: \
                 percent-encode special characters there ('@' is %40, '/' is %2F, \
                 ':' is %3A, '?' is %3F, '#' is %23, '%' is %25)"
            );
        }
        for part in [user, password.unwrap_or("")] {
            if percent_decode(part).is_none() {
                bail!(
                    "DATABASE_URL {shown} holds a '%' that is not a percent-encoded byte: \
                     write '%' as %25"
                );
            }
        }
        let (hostport, path) = location.split_once('/').unwrap_or((location, ""));
        let (database, query) = match path.split_once('?') {
            Some((d, q)) => (d, Some(q.to_owned())),
            None => (path, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
                let port = p.parse::<u16>().ok().filter(|&p| p > 0);
                if port.is_none() {
                    bail!("DATABASE_URL {shown} has an invalid port {p:?}");
                }
                (h, port)
            }
            _ => (hostport, None),
        };
        if host.is_empty() {
            bail!("DATABASE_URL {shown} names no host");
        }
        let url = DatabaseUrl {
            backend,
            raw: raw.to_owned(),
            scheme: scheme.to_owned(),
            user: user.to_owned(),
            password: password.map(str::to_owned),
            host: host.to_owned(),
            port,
            database: database.to_owned(),
            query,
        };
        if url.database().is_empty() {
            bail!("DATABASE_URL {url} names no database: add /DATABASE at its end");
        }
        Ok(url)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL as given: only for a driver's parser, never for a message.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn user(&self) -> String {
        percent_decode(&self.user).unwrap_or_default()
    }

    /// The password, decoded; `None` when the URL has none (or an empty one).
    pub fn password(&self) -> Option<String> {
        self.password
            .as_deref()
            .and_then(percent_decode)
            .filter(|p| !p.is_empty())
    }

    pub fn host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    pub fn database(&self) -> String {
        percent_decode(&self.database).unwrap_or_else(|| self.database.clone())
    }

    /// `host:port` of the server, with the backend's default port.
    pub fn server(&self) -> String {
        let default = match self.backend {
            Backend::MySql => 3306,
            Backend::Postgres => 5432,
        };
        format!("{}:{}", self.host, self.port.unwrap_or(default))
    }

    /// Replaces this URL, and its password where it stands as one (after
    /// `:` and before `@`, or in a `password=` setting), in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.to_string());
        for pass in [self.password.clone(), self.password()]
            .into_iter()
            .flatten()
        {
            if pass.is_empty() {
                continue;
            }
            out = out
                .replace(&format!(":{pass}@"), ":***@")
                .replace(&format!("password={pass}"), "password=***")
                .replace(&format!("password='{pass}'"), "password='***'");
        }
        out
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if !self.user.is_empty() || self.password.is_some() {
            f.write_str(&self.user)?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "/{}", self.database)?;
        if let Some(q) = &self.query {
            write!(f, "?{}", redact_query(q))?;
        }
        Ok(())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A URL that could not be parsed, shown without what may be a password:
/// everything between the first `:` after the scheme and the last `@`.
fn redact_unparsed(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        };
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://{userinfo}@{host}"),
        },
        None => format!("{scheme}://{rest}"),
    }
}

/// A query string with the values of `password`-like settings hidden.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are
/// not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes every byte but unreserved URL characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
        assert_eq!(url.password().as_deref(), Some("s3cr@t"));
        assert_eq!(
            url.redact("at mysql://kmdb:s3cr%40t@db.example:3307/km, :s3cr@t@x"),
            "at mysql://kmdb:***@db.example:3307/km, :***@x"
        );
        assert_eq!(url.server(), "db.example:3307");
    }

    #[test]
    fn only_the_password_is_masked() {
        let url = DatabaseUrl::parse("mysql://kmdb:kmdb@host/kmdb").unwrap();
        assert_eq!(url.to_string(), "mysql://kmdb:***@host/kmdb");
        let url = DatabaseUrl::parse("postgres://u:p@db:5432/p").unwrap();
        assert_eq!(url.to_string(), "postgres://u:***@db:5432/p");
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(url.server(), "db:5432");
        let url = DatabaseUrl::parse("postgresql://u@db/x?sslmode=disable&password=zz").unwrap();
        assert_eq!(
            url.to_string(),
            "postgresql://u@db/x?sslmode=disable&password=***"
        );
        assert_eq!(url.server(), "db:5432");
    }

    #[test]
    fn url_must_name_a_database() {
        let err = DatabaseUrl::parse("mysql://u:pw@h:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no database"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        let err = DatabaseUrl::parse("redis://u:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://user:password@host"), "{err}");
        assert!(err.contains("postgres://user:password@host"), "{err}");
        assert!(!err.contains(":pw@"), "{err}");
    }

    #[test]
    fn raw_special_characters_ask_for_percent_encoding() {
        for (url, secret) in [
            ("mysql://u:p@ss@127.0.0.1:1/db", "p@ss"),
            ("mysql://u:se/cretpw@127.0.0.1:1/db", "cretpw"),
            ("postgres://u:a#b@h/db", "a#b"),
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains("percent-encode"), "{err}");
            assert!(err.contains("DATABASE_URL"), "{err}");
            assert!(!err.contains(secret), "{err}");
        }
        let err = DatabaseUrl::parse("mysql://u:pw@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid port"), "{err}");
    }

    #[test]
    fn encoding_round_trips() {
        let s = "p@ss:w/rd%#é";
        assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
    }
}
