//! The command line: one variant per subcommand, each with the arguments of
//! its file in `commands/` (argument groups several share are in `args`).
//! The environment and clap types are read there and here, nowhere else.

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "kmdb",
    version,
    about = "Bulk-load KissMetrics data exports into MySQL/MariaDB or PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or upgrade the schema (idempotent).
    Setup(commands::setup::Args),
    /// Split events, properties and aliases into time partitions.
    Partition(commands::partition::Args),
    /// Import a KM export directory (revisions/N.json[.gz]).
    Import(commands::import::Args),
    /// Download an S3 export to a local directory.
    Download(commands::download::Args),
    /// Write a synthetic export for tests and benchmarks.
    Generate(commands::generate::Args),
    /// Decode and classify a local export without a database (the parse floor).
    #[command(hide = true)]
    Parse(commands::parse::Args),
    /// Show what is imported.
    Status(commands::status::Args),
    /// Empty the data tables and the state store, keeping the filter tables.
    Flush(commands::flush::Args),
    /// Remove the events, properties and aliases from before a day.
    Prune(commands::prune::Args),
    /// People through funnels, any number of them in one pass (per person,
    /// across aliases).
    Funnel(commands::funnel::Args),
    /// The most frequent sequences of events right after an event.
    Next(commands::next::Args),
}
