//! The databases kmdb loads into, behind one seam: [`Target`] is every
//! statement the pipeline and the commands need, and [`Loader`] one bulk-load
//! session. `mysql/` implements them for MySQL/MariaDB, `postgres/` for
//! PostgreSQL; a database is added
//! with a folder of its own here and a line in [`connect`]. No SQL lives
//! outside this module.

pub mod locks;
pub mod mysql;
pub mod postgres;
pub mod read;
pub mod url;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

pub use locks::PartitionLocks;
pub use read::EventReader;
pub use url::{Backend, DatabaseUrl};

pub use crate::runs::RunInfo;

use crate::dates::Day;
use crate::filters::Filters;
use crate::partition::PartitionMap;
use crate::record::Reject;
use crate::report::Accounting;
use crate::rows::TsvFile;
use crate::table::Table;

/// Opens a session on the database `url` names.
pub fn connect(url: &DatabaseUrl) -> Result<Box<dyn Target>> {
    match url.backend() {
        Backend::MySql => Ok(Box::new(mysql::MySql::connect(url)?)),
        Backend::Postgres => Ok(Box::new(postgres::Postgres::connect(url)?)),
    }
}

/// Opens a reader of the loaded tables of the database `url` names, its
/// schema checked (the analysis commands).
pub fn event_reader(url: &DatabaseUrl) -> Result<Box<dyn EventReader>> {
    match url.backend() {
        Backend::MySql => Ok(Box::new(mysql::read::MySqlReader::open(url)?)),
        Backend::Postgres => Ok(Box::new(postgres::read::PostgresReader::open(url)?)),
    }
}

/// A database driver's error among the causes of a failure, in words (the
/// drivers' own `Display` shows their structures); `None` for any other.
pub fn describe_cause(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    cause
        .downcast_ref::<::mysql::Error>()
        .map(mysql::errors::describe)
}

/// One import's line in the database's history (`kmdb_imports`).
#[derive(Debug, Clone)]
pub struct ImportRecord<'a> {
    pub source: String,
    /// `N` or `N-M`.
    pub revisions: String,
    pub accounting: &'a Accounting,
    pub rejects_file: Option<String>,
    /// How long the import took, in whole seconds.
    pub seconds: u64,
    /// The row an earlier try of this same import recorded (its state
    /// commit failed), to rewrite instead of adding a second one.
    pub replaces: Option<u64>,
    /// Where its state store is: a path on `host`.
    pub state_store: String,
    pub host: String,
}

/// The last import as `kmdb status` shows it.
#[derive(Debug, Clone)]
pub struct LastImport {
    pub id: u64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub finished_at: String,
    pub revisions: String,
    pub accounting: Accounting,
    pub rejects_file: Option<String>,
    /// The generation of the state store that committed it (`legacy` for
    /// imports older than that record), where that state store was, and
    /// on which host.
    pub state_generation: String,
    pub state_store: Option<String>,
    pub host: Option<String>,
}

/// An import that started loading and has not committed: the database's
/// in-flight marker, written before the import changes any row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loading {
    /// The generation of the state store it started from.
    pub base: String,
    /// The generation that state store takes when it commits this import.
    pub next: String,
    pub revisions: Vec<u64>,
    /// Identities and keys numbered before it: `users` and `keys` rows
    /// numbered above are its own.
    pub users: u64,
    pub keys: u64,
    /// The digest of the filters it loads with ([`Filters::digest`]).
    pub filters: String,
    /// Its `kmdb_imports` row, once recorded.
    pub import_id: Option<u64>,
    /// The run that loads it.
    pub run: RunInfo,
}

/// Everything kmdb asks of a database. Methods take values, not plans; each
/// error says what failed and what to do.
pub trait Target: Send {
    /// The URL, password hidden, for messages.
    fn url(&self) -> &DatabaseUrl;
    /// Whether its text can hold U+0000; where not, the import reads every
    /// U+0000 as U+FFFD (SPEC §8).
    fn stores_nul(&self) -> bool {
        true
    }

    // Schema.
    /// Creates or upgrades the schema; returns the migrations applied now.
    fn setup(&mut self) -> Result<Vec<u32>>;
    /// Fails with "run `kmdb setup`" unless the schema is there and current.
    fn check_schema(&mut self) -> Result<()>;
    /// Fails with the fix when the server cannot take kmdb's bulk loads.
    fn check_bulk_load(&mut self) -> Result<()>;
    /// The token naming this database's contents (new at setup and flush).
    fn token(&mut self) -> Result<String>;
    /// Whether `kmdb_imports` holds import `id`.
    fn has_import(&mut self, id: u64) -> Result<bool>;
    fn filters(&mut self) -> Result<Filters>;

    // One import at a time, and the state store the database matches.
    /// Takes the database's import lock for as long as this session lasts,
    /// naming `run` as its holder, waiting up to `wait` for it; returns the
    /// holder instead, changing nothing, when another session keeps it.
    fn lock(&mut self, run: &RunInfo, wait: Duration) -> Result<Option<RunInfo>>;
    /// The import in flight: one that started loading and did not commit.
    fn loading(&mut self) -> Result<Option<Loading>>;
    /// Records `loading` as the import in flight, replacing any.
    fn start_loading(&mut self, loading: &Loading) -> Result<()>;
    /// Records that the state store of generation `generation` committed
    /// import `id`, and ends the in-flight marker that names it.
    fn commit_import(&mut self, id: u64, generation: &str) -> Result<()>;
    /// Ends the in-flight marker with no commit, deleting the `kmdb_imports`
    /// rows no state store committed (remove its rows first, with
    /// [`Target::remove_revisions`]).
    fn abandon_loading(&mut self) -> Result<()>;

    // Partitions.
    /// The partitions of `table`, in order.
    fn partitions(&mut self, table: Table) -> Result<PartitionMap>;
    /// The partitions of `table` that look empty (an estimate is enough:
    /// loads check again).
    fn empty_partitions(&mut self, table: Table) -> Result<Vec<String>>;
    /// Adds partitions for the planned `bounds` past each table's last one;
    /// returns how many were added per table.
    fn add_partitions(&mut self, bounds: &[Day]) -> Result<usize>;
    /// Gives `events`, `properties` and `aliases` exactly the partitions of
    /// `bounds` (each holding the rows before its bound, the first all rows
    /// before its bound) and the catch-all `pLast`, keeping every row;
    /// tables already so are left alone. Returns the tables changed. It may
    /// rewrite whole tables: `kmdb partition --replan` only.
    fn replan_partitions(&mut self, bounds: &[Day]) -> Result<usize>;

    // Loading.
    /// Drops what an interrupted import left behind (staging tables).
    fn drop_stages(&mut self) -> Result<()>;
    /// A bulk-load session, the `session`-th of this import.
    fn loader<'a>(
        &self,
        session: usize,
        locks: &'a PartitionLocks,
        staging: bool,
    ) -> Result<Box<dyn Loader + 'a>>;
    /// Loads `keys` rows (TSV, see [`crate::rows::key_line`]), replacing
    /// rows with the same id; `scratch` is a directory for a file.
    fn load_keys(&mut self, rows: &[u8], scratch: &Path) -> Result<()>;
    /// Adds the import to `kmdb_imports` (or rewrites row `replaces`) and
    /// names the row in the in-flight marker, at once; returns its id.
    fn record_import(&mut self, import: &ImportRecord<'_>) -> Result<u64>;

    // Rows of earlier imports (SPEC §4, §5) and of interrupted ones.
    /// Deletes the rows of `revisions` (ids `revision << 40 ..`), the users
    /// numbered above `users` and the keys numbered above `keys`.
    fn remove_revisions(&mut self, revisions: &[u64], users: u64, keys: u64) -> Result<()>;
    /// `(name1, name2)` of the aliases that name any of `names`.
    fn aliases_naming(&mut self, names: &[String]) -> Result<Vec<(String, String)>>;
    /// Whether any event or property row belongs to `user`.
    fn user_has_rows(&mut self, user: u64) -> Result<bool>;
    fn delete_user(&mut self, user: u64) -> Result<()>;
    /// Deletes the event and property rows of `users`.
    fn delete_rows_of_users(&mut self, users: &[u64]) -> Result<()>;
    /// Deletes the `users` rows and the aliases of the identities `names`.
    fn delete_identities(&mut self, names: &[String]) -> Result<()>;
    /// Deletes the keys no event or property uses.
    fn delete_unused_keys(&mut self) -> Result<()>;
    /// Moves the event and property rows of each `(old, new)` user to `new`.
    fn repoint_users(&mut self, remap: &[(u64, u64)]) -> Result<()>;

    // Pruning (`kmdb prune`).
    /// About how many rows `partition` of `table` holds (an estimate).
    fn partition_rows(&mut self, table: Table, partition: &str) -> Result<u64>;
    /// How many rows of `partition` of `table` (`""`: all of the table) are
    /// from before `day`.
    fn rows_before(&mut self, table: Table, partition: &str, day: Day) -> Result<u64>;
    /// Drops the partitions `drop` of `table` (each ends on or before
    /// `day`; the first one left then holds every earlier time) and deletes
    /// the rows before `day` from `partition`; returns the rows deleted.
    fn prune(&mut self, table: Table, drop: &[String], partition: &str, day: Day) -> Result<u64>;

    // Status and flush.
    /// Row counts of the data tables, in [`crate::table::DATA_TABLES`] order.
    fn row_counts(&mut self) -> Result<Vec<(&'static str, u64)>>;
    /// The newest import a state store committed.
    fn last_import(&mut self) -> Result<Option<LastImport>>;
    /// Empties the data tables, the import history and the in-flight
    /// marker, keeping the filters; returns the database's new token.
    fn flush(&mut self) -> Result<String>;
}

/// One bulk-load session.
pub trait Loader: Send {
    /// Loads one batch file into its table and partition; rows already
    /// there (same `(t, id)`, from a run that was interrupted) are skipped.
    /// Returns the rows inserted.
    fn load(&mut self, file: &TsvFile) -> Result<u64>;
    /// Loads the `users` rows of `path`, replacing rows with the same id.
    fn load_users(&mut self, path: &Path) -> Result<u64>;
    /// Ends the session, dropping what it created.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// The counted columns of `kmdb_imports` (unquoted), in the order of
/// [`accounting_counts`]: the totals, then one per reject reason.
pub(crate) fn accounting_columns() -> Vec<String> {
    ["lines", "blank", "events", "property_sets", "aliases"]
        .into_iter()
        .map(str::to_owned)
        .chain(Reject::ALL.iter().map(|r| format!("rejected_{r}")))
        .collect()
}

/// The counts of `a`, in the order of [`accounting_columns`].
pub(crate) fn accounting_counts(a: &Accounting) -> Vec<u64> {
    [a.lines, a.blank, a.events, a.property_sets, a.aliases]
        .into_iter()
        .chain(a.rejected)
        .collect()
}

/// The accounting of `counts`, read in the order of [`accounting_columns`].
pub(crate) fn accounting_from(counts: &[u64]) -> Accounting {
    let mut accounting = Accounting {
        lines: counts[0],
        blank: counts[1],
        events: counts[2],
        property_sets: counts[3],
        aliases: counts[4],
        ..Accounting::default()
    };
    accounting.rejected.copy_from_slice(&counts[5..]);
    accounting
}
