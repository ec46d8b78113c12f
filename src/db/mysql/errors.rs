//! The driver's errors in words: what failed and what to check, instead of
//! its `MySqlError { ERROR 1045 (28000): ... }` structures.

use std::io::ErrorKind;

use mysql::{DriverError, Error, MySqlError};

use crate::db::DatabaseUrl;

/// A driver error as a sentence (no password: the driver never prints one).
pub fn describe(err: &Error) -> String {
    match err {
        Error::MySqlError(e) => server_error(e),
        Error::DriverError(DriverError::CouldNotConnect(Some((addr, desc, kind)))) => {
            format!(
                "could not connect to {addr}: {}",
                connect_failure(desc, *kind)
            )
        }
        Error::DriverError(DriverError::ConnectTimeout) => {
            "the server did not answer in time".to_owned()
        }
        Error::DriverError(e) => e.to_string(),
        Error::IoError(e) => match e.kind() {
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
                format!("the connection to the server was lost ({e})")
            }
            _ => e.to_string(),
        },
        Error::UrlError(e) => e.to_string(),
        Error::CodecError(e) => format!("the server's reply could not be read ({e})"),
        other => other.to_string(),
    }
}

/// `message (MySQL error N)`: the server's own words and its code, which
/// the MySQL manual indexes.
fn server_error(e: &MySqlError) -> String {
    format!("{} (MySQL error {})", e.message, e.code)
}

/// The reason a TCP connection failed, in words.
fn connect_failure(desc: &str, kind: ErrorKind) -> String {
    match kind {
        ErrorKind::ConnectionRefused => "connection refused (no server listens there)".to_owned(),
        ErrorKind::TimedOut => "no answer (a firewall, or a wrong host?)".to_owned(),
        _ if desc.contains("lookup") || desc.contains("resolve") => {
            format!("the host name does not resolve ({desc})")
        }
        _ => desc.to_owned(),
    }
}

/// Why a connection to `url` failed and what to check, for the message of
/// `kmdb` commands that cannot connect.
pub fn connect_hint(err: &Error, url: &DatabaseUrl) -> String {
    let server = url.server();
    match err {
        Error::MySqlError(e) => match e.code {
            1045 => "check the user and password of DATABASE_URL".to_owned(),
            1044 | 1049 => format!(
                "check the database name of DATABASE_URL, or create the database \
                 (CREATE DATABASE `{}` CHARACTER SET utf8mb4)",
                url.database()
            ),
            1130 => format!(
                "the server at {server} does not let this user connect from this host: \
                 grant it access (CREATE USER ... @'<this host>')"
            ),
            _ => "check the user, password and database of DATABASE_URL".to_owned(),
        },
        Error::DriverError(DriverError::CouldNotConnect(_) | DriverError::ConnectTimeout) => {
            format!(
                "check that MySQL or MariaDB runs at {server} and that the host and port of \
                 DATABASE_URL are right"
            )
        }
        _ => format!(
            "check that {server} is a MySQL or MariaDB server and that DATABASE_URL is right"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_structures_become_sentences() {
        let refused = Error::DriverError(DriverError::CouldNotConnect(Some((
            "127.0.0.1:1".into(),
            "Connection refused (os error 111)".into(),
            ErrorKind::ConnectionRefused,
        ))));
        assert_eq!(
            describe(&refused),
            "could not connect to 127.0.0.1:1: connection refused (no server listens there)"
        );
        let url = DatabaseUrl::parse("mysql://u:pw@127.0.0.1:1/db").unwrap();
        assert!(connect_hint(&refused, &url).contains("runs at 127.0.0.1:1"));
        let denied = Error::MySqlError(MySqlError {
            state: "28000".into(),
            message: "Access denied for user 'u'@'localhost' (using password: YES)".into(),
            code: 1045,
        });
        assert_eq!(
            describe(&denied),
            "Access denied for user 'u'@'localhost' (using password: YES) (MySQL error 1045)"
        );
        assert_eq!(
            connect_hint(&denied, &url),
            "check the user and password of DATABASE_URL"
        );
    }
}
