//! The tables kmdb loads, by name: one place for their names and columns.

/// The partitioned tables rows are loaded into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Events,
    Properties,
    Aliases,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::Events, Table::Properties, Table::Aliases];

    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Properties => "properties",
            Table::Aliases => "aliases",
        }
    }

    /// Column list of the TSV files, in order.
    pub fn columns(self) -> &'static str {
        match self {
            Table::Events => "id, t, n, user_id",
            Table::Properties => "id, t, `key`, value, user_id, event_id",
            Table::Aliases => "id, t, name1, name2, applied",
        }
    }
}

/// Tables without partitions that imports fill.
pub const USERS: &str = "users";
pub const KEYS: &str = "keys";
/// Column list of the `users` rows kmdb writes.
pub const USERS_COLUMNS: &str = "id, name, alias_of";

/// The data tables, in the order `kmdb status` lists them.
pub const DATA_TABLES: [&str; 5] = ["events", "properties", "aliases", USERS, KEYS];
