//! MySQL and MariaDB: sessions in UTC and utf8mb4, the schema and its
//! partitions ([`schema`]), `LOAD DATA LOCAL INFILE` ([`load`]), the
//! statements on rows of earlier imports ([`rows`]) and the analysis
//! commands' reads ([`read`]).

pub mod errors;
pub mod load;
pub mod read;
mod rows;
mod runs;
pub mod schema;

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

pub use load::InfileAllowlist;

use super::url::percent_encode;
use super::{
    DatabaseUrl, ImportRecord, LastImport, Loader, Loading, PartitionLocks, RunInfo, Target,
};
use crate::dates::Day;
use crate::filters::Filters;
use crate::partition::PartitionMap;
use crate::table::Table;

/// Opens a session: UTC, utf8mb4, and `LOAD DATA LOCAL` served only from
/// `allow` (a session without one sends nothing).
pub fn connect(url: &DatabaseUrl, allow: Option<Arc<InfileAllowlist>>) -> Result<Conn> {
    let mut builder = OptsBuilder::from_opts(opts(url)?)
        .init(vec!["SET time_zone = '+00:00'", "SET NAMES utf8mb4"])
        .tcp_connect_timeout(Some(std::time::Duration::from_secs(10)));
    if let Some(allow) = allow {
        builder = builder.local_infile_handler(Some(load::handler(allow)));
    }
    Conn::new(builder).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to MySQL at {} ({url}): {}; {}",
            url.server(),
            url.redact(&errors::describe(&e)),
            errors::connect_hint(&e, url)
        )
    })
}

/// The driver's options, from the URL's decoded parts (so that a password
/// holding `%`-encoded characters reaches the server as the user wrote it).
fn opts(url: &DatabaseUrl) -> Result<Opts> {
    let mut text = format!("mysql://{}", percent_encode(&url.user()));
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
    let opts = Opts::from_url(&text)
        .map_err(|e| anyhow::anyhow!("{}", url.redact(&e.to_string())))
        .with_context(|| format!("DATABASE_URL {url} is not a valid MySQL URL"))?;
    Ok(if url.password().is_none() {
        OptsBuilder::from_opts(opts).pass(None::<String>).into()
    } else {
        opts
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

/// Runs a statement, with the statement's purpose as error context.
fn exec(conn: &mut Conn, sql: &str, what: &str) -> Result<()> {
    conn.query_drop(sql).with_context(|| what.to_owned())
}

/// A MySQL or MariaDB database.
pub struct MySql {
    url: DatabaseUrl,
    conn: Conn,
    /// The files this session may send (the `keys` rows).
    allow: Arc<InfileAllowlist>,
}

impl MySql {
    pub fn connect(url: &DatabaseUrl) -> Result<MySql> {
        let allow = Arc::new(InfileAllowlist::default());
        let conn = connect(url, Some(allow.clone()))?;
        Ok(MySql {
            url: url.clone(),
            conn,
            allow,
        })
    }
}

impl Target for MySql {
    fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    fn setup(&mut self) -> Result<Vec<u32>> {
        schema::setup(&mut self.conn)
    }

    fn check_schema(&mut self) -> Result<()> {
        schema::check(&mut self.conn)
    }

    fn check_bulk_load(&mut self) -> Result<()> {
        let on: Option<i64> = self.conn.query_first("SELECT @@GLOBAL.local_infile")?;
        if on != Some(1) {
            bail!(
                "the MySQL server has local_infile disabled, which kmdb needs for LOAD DATA LOCAL INFILE: \
                 run `SET GLOBAL local_infile = 1;` as an admin, or add `local_infile = 1` under [mysqld] \
                 in the server's configuration and restart it"
            );
        }
        Ok(())
    }

    fn token(&mut self) -> Result<String> {
        schema::token(&mut self.conn)
    }

    fn has_import(&mut self, id: u64) -> Result<bool> {
        let found: Option<u64> = self
            .conn
            .exec_first("SELECT id FROM kmdb_imports WHERE id = ?", (id,))?;
        Ok(found.is_some())
    }

    fn filters(&mut self) -> Result<Filters> {
        schema::filters(&mut self.conn)
    }

    fn lock(&mut self, run: &RunInfo, wait: std::time::Duration) -> Result<Option<RunInfo>> {
        runs::lock(&mut self.conn, run, wait)
    }

    fn loading(&mut self) -> Result<Option<Loading>> {
        runs::loading(&mut self.conn)
    }

    fn start_loading(&mut self, loading: &Loading) -> Result<()> {
        runs::start_loading(&mut self.conn, loading)
    }

    fn commit_import(&mut self, id: u64, generation: &str) -> Result<()> {
        runs::commit_import(&mut self.conn, id, generation)
    }

    fn abandon_loading(&mut self) -> Result<()> {
        runs::abandon_loading(&mut self.conn)
    }

    fn partitions(&mut self, table: Table) -> Result<PartitionMap> {
        schema::partitions(&mut self.conn, table)
    }

    fn empty_partitions(&mut self, table: Table) -> Result<Vec<String>> {
        schema::empty_partitions(&mut self.conn, table)
    }

    fn add_partitions(&mut self, bounds: &[Day]) -> Result<usize> {
        schema::extend_partitions(&mut self.conn, bounds)
    }

    fn replan_partitions(&mut self, bounds: &[Day]) -> Result<usize> {
        schema::replan_partitions(&mut self.conn, bounds)
    }

    fn drop_stages(&mut self) -> Result<()> {
        load::drop_stages(&mut self.conn)
    }

    fn loader<'a>(
        &self,
        session: usize,
        locks: &'a PartitionLocks,
        staging: bool,
    ) -> Result<Box<dyn Loader + 'a>> {
        let allow = Arc::new(InfileAllowlist::default());
        let conn = connect(&self.url, Some(allow.clone()))?;
        Ok(Box::new(load::MySqlLoader::new(
            conn, allow, session, locks, staging,
        )?))
    }

    fn load_keys(&mut self, rows: &[u8], scratch: &Path) -> Result<()> {
        load::replace_rows(
            &mut self.conn,
            &self.allow,
            scratch,
            "keys",
            "id, string",
            rows,
        )
    }

    fn record_import(&mut self, import: &ImportRecord<'_>) -> Result<u64> {
        rows::record_import(&mut self.conn, import)
    }

    fn remove_revisions(&mut self, revisions: &[u64], users: u64, keys: u64) -> Result<()> {
        rows::remove_revisions(&mut self.conn, revisions, users, keys)
    }

    fn aliases_naming(&mut self, names: &[String]) -> Result<Vec<(String, String)>> {
        rows::aliases_naming(&mut self.conn, names)
    }

    fn user_has_rows(&mut self, user: u64) -> Result<bool> {
        rows::user_has_rows(&mut self.conn, user)
    }

    fn delete_user(&mut self, user: u64) -> Result<()> {
        self.conn
            .exec_drop("DELETE FROM users WHERE id = ?", (user,))
            .context("deleting a user")
    }

    fn delete_rows_of_users(&mut self, users: &[u64]) -> Result<()> {
        rows::delete_rows_of_users(&mut self.conn, users)
    }

    fn delete_identities(&mut self, names: &[String]) -> Result<()> {
        rows::delete_identities(&mut self.conn, names)
    }

    fn delete_unused_keys(&mut self) -> Result<()> {
        exec(
            &mut self.conn,
            "DELETE FROM `keys` WHERE id NOT IN (SELECT DISTINCT n FROM events)
             AND id NOT IN (SELECT DISTINCT `key` FROM properties)",
            "pruning unused keys",
        )
    }

    fn repoint_users(&mut self, remap: &[(u64, u64)]) -> Result<()> {
        rows::repoint_users(&mut self.conn, remap)
    }

    fn partition_rows(&mut self, table: Table, partition: &str) -> Result<u64> {
        schema::partition_rows(&mut self.conn, table, partition)
    }

    fn rows_before(&mut self, table: Table, partition: &str, day: Day) -> Result<u64> {
        schema::rows_before(&mut self.conn, table, partition, day)
    }

    fn prune(&mut self, table: Table, drop: &[String], partition: &str, day: Day) -> Result<u64> {
        schema::prune(&mut self.conn, table, drop, partition, day)
    }

    fn row_counts(&mut self) -> Result<Vec<(&'static str, u64)>> {
        schema::counts(&mut self.conn)
    }

    fn last_import(&mut self) -> Result<Option<LastImport>> {
        rows::last_import(&mut self.conn)
    }

    fn flush(&mut self) -> Result<String> {
        schema::flush(&mut self.conn)
    }
}
