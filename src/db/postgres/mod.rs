//! PostgreSQL (SPEC §8): sessions in UTC with ISO dates, the schema and its
//! partitions ([`schema`], [`partition`]), `COPY … FROM STDIN` loads
//! ([`load`]), the import lock and marker ([`runs`]) and the statements on
//! rows of earlier imports ([`rows`]).
//!
//! Sessions run in UTC with ISO dates, whatever the server's `TimeZone` and
//! `DateStyle`: `t` is a `timestamp` written and read as UTC text, and the
//! partition bounds the catalog prints are parsed in ISO form.

mod binary;
pub mod load;
pub mod partition;
pub mod read;
pub mod rows;
mod runs;
pub mod schema;

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

use super::url::percent_encode;
use super::{
    DatabaseUrl, ImportRecord, LastImport, Loader, Loading, PartitionLocks, RunInfo, Target,
};
use crate::dates::Day;
use crate::filters::Filters;
use crate::partition::PartitionMap;
use crate::table::Table;

/// The client's configuration, from the URL's decoded parts (so that a
/// password holding `%`-encoded characters reaches the server as written).
fn config(url: &DatabaseUrl) -> Result<Config> {
    let mut text = format!("postgres://{}", percent_encode(&url.user()));
    if let Some(pass) = url.password() {
        text.push(':');
        text.push_str(&percent_encode(&pass));
    }
    text.push_str(&format!("@{}", url.host()));
    if let Some(port) = url.port() {
        text.push_str(&format!(":{port}"));
    }
    text.push_str(&format!("/{}", percent_encode(&url.database())));
    if let Some((_, query)) = url.raw().split_once('?') {
        text.push_str(&format!("?{query}"));
    }
    let config: Config = text.parse().map_err(|e: postgres::Error| {
        anyhow::anyhow!(
            "DATABASE_URL {url} is not a valid PostgreSQL URL: {}",
            url.redact(&message(&e))
        )
    })?;
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        bail!(
            "DATABASE_URL {url} asks for sslmode=require, and kmdb does not speak TLS to \
             PostgreSQL: connect through a local tunnel, or drop sslmode=require"
        );
    }
    Ok(config)
}

/// Statements every session runs first: UTC, ISO dates, no notices.
const SESSION_SETUP: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; \
                             SET client_min_messages = warning";

/// Opens a session in UTC. Errors say what failed and what to check, and
/// never hold the password.
pub fn connect(url: &DatabaseUrl) -> Result<Client> {
    let mut config = config(url)?;
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
fn connect_error(url: &DatabaseUrl, e: &postgres::Error) -> String {
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

/// A PostgreSQL database.
pub struct Postgres {
    url: DatabaseUrl,
    client: Client,
}

impl Postgres {
    pub fn connect(url: &DatabaseUrl) -> Result<Postgres> {
        Ok(Postgres {
            url: url.clone(),
            client: connect(url)?,
        })
    }
}

impl Target for Postgres {
    fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    fn stores_nul(&self) -> bool {
        false
    }

    fn setup(&mut self) -> Result<Vec<u32>> {
        schema::setup(&mut self.client)
    }

    fn check_schema(&mut self) -> Result<()> {
        schema::check(&mut self.client)
    }

    fn check_bulk_load(&mut self) -> Result<()> {
        // COPY FROM STDIN needs no server setting, only INSERT on the tables.
        Ok(())
    }

    fn token(&mut self) -> Result<String> {
        schema::token(&mut self.client)
    }

    fn has_import(&mut self, id: u64) -> Result<bool> {
        Ok(self
            .client
            .query_opt("SELECT 1 FROM kmdb_imports WHERE id = $1", &[&bigint(id)])
            .doing("reading kmdb_imports")?
            .is_some())
    }

    fn filters(&mut self) -> Result<Filters> {
        schema::filters(&mut self.client)
    }

    fn lock(&mut self, run: &RunInfo, wait: Duration) -> Result<Option<RunInfo>> {
        runs::lock(&mut self.client, run, wait)
    }

    fn loading(&mut self) -> Result<Option<Loading>> {
        runs::loading(&mut self.client)
    }

    fn start_loading(&mut self, loading: &Loading) -> Result<()> {
        runs::start_loading(&mut self.client, loading)
    }

    fn commit_import(&mut self, id: u64, generation: &str) -> Result<()> {
        runs::commit_import(&mut self.client, id, generation)
    }

    fn abandon_loading(&mut self) -> Result<()> {
        runs::abandon_loading(&mut self.client)
    }

    fn partitions(&mut self, table: Table) -> Result<PartitionMap> {
        partition::partitions(&mut self.client, table)
    }

    fn empty_partitions(&mut self, table: Table) -> Result<Vec<String>> {
        partition::empty_partitions(&mut self.client, table)
    }

    fn add_partitions(&mut self, bounds: &[Day]) -> Result<usize> {
        partition::extend_partitions(&mut self.client, bounds)
    }

    fn replan_partitions(&mut self, bounds: &[Day]) -> Result<usize> {
        partition::replan_partitions(&mut self.client, bounds)
    }

    fn drop_stages(&mut self) -> Result<()> {
        // Staging tables are temporary: they end with their session.
        Ok(())
    }

    fn loader<'a>(
        &self,
        _session: usize,
        _locks: &'a PartitionLocks,
        _staging: bool,
    ) -> Result<Box<dyn Loader + 'a>> {
        // Sessions take a lock on each partition they load (see [`load`]).
        Ok(Box::new(load::PgLoader::new(connect(&self.url)?)?))
    }

    fn load_keys(&mut self, rows: &[u8], _scratch: &Path) -> Result<()> {
        load::replace_rows(&mut self.client, load::Replace::Keys, rows).map(|_| ())
    }

    fn record_import(&mut self, import: &ImportRecord<'_>) -> Result<u64> {
        rows::record_import(&mut self.client, import)
    }

    fn remove_revisions(&mut self, revisions: &[u64], users: u64, keys: u64) -> Result<()> {
        rows::remove_revisions(&mut self.client, revisions, users, keys)
    }

    fn aliases_naming(&mut self, names: &[String]) -> Result<Vec<(String, String)>> {
        rows::aliases_naming(&mut self.client, names)
    }

    fn user_has_rows(&mut self, user: u64) -> Result<bool> {
        rows::user_has_rows(&mut self.client, user)
    }

    fn delete_user(&mut self, user: u64) -> Result<()> {
        self.client
            .execute("DELETE FROM users WHERE id = $1", &[&bigint(user)])
            .doing("deleting a user")
            .map(|_| ())
    }

    fn delete_rows_of_users(&mut self, users: &[u64]) -> Result<()> {
        rows::delete_rows_of_users(&mut self.client, users)
    }

    fn delete_identities(&mut self, names: &[String]) -> Result<()> {
        rows::delete_identities(&mut self.client, names)
    }

    fn delete_unused_keys(&mut self) -> Result<()> {
        rows::delete_unused_keys(&mut self.client)
    }

    fn repoint_users(&mut self, remap: &[(u64, u64)]) -> Result<()> {
        if remap.is_empty() {
            return Ok(());
        }
        rows::repoint_users(&mut self.client, remap)
    }

    fn partition_rows(&mut self, table: Table, partition: &str) -> Result<u64> {
        partition::partition_rows(&mut self.client, table, partition)
    }

    fn rows_before(&mut self, table: Table, partition: &str, day: Day) -> Result<u64> {
        partition::rows_before(&mut self.client, table, partition, day)
    }

    fn prune(&mut self, table: Table, drop: &[String], partition: &str, day: Day) -> Result<u64> {
        partition::prune(&mut self.client, table, drop, partition, day)
    }

    fn row_counts(&mut self) -> Result<Vec<(&'static str, u64)>> {
        schema::counts(&mut self.client)
    }

    fn last_import(&mut self) -> Result<Option<LastImport>> {
        rows::last_import(&mut self.client)
    }

    fn flush(&mut self) -> Result<String> {
        schema::flush(&mut self.client)
    }
}
