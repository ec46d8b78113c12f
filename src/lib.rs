//! kmdb: bulk-load KissMetrics data exports into MySQL/MariaDB.
//!
//! Stages, one module each: `source` (revision files) → `decode` (SPEC §2) →
//! `record` (§3) → `resolve` (filters, identities, ids) → `tsv` → `db::load`,
//! wired by `pipeline`; `state` remembers identities and imported revisions.

pub mod cli;
mod commands;
pub mod db;
pub mod decode;
pub mod generate;
pub mod identity;
pub mod intern;
pub mod partition;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod report;
pub mod resolve;
pub mod source;
pub mod state;
pub mod tsv;

use anyhow::Result;

use cli::{Cli, Command};

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Setup { db } => commands::setup(&db.url()?),
        Command::Partition {
            db,
            min_date,
            max_date,
            days_per_partition,
        } => commands::partition(&db.url()?, &min_date, &max_date, days_per_partition),
        Command::Import(args) => commands::import(&args.plan()?),
        Command::Download {
            source,
            s3,
            to,
            min_revision,
            max_revision,
            quiet,
        } => commands::download(
            &s3.source(source.as_deref())?,
            &to,
            min_revision,
            max_revision,
            quiet,
        ),
        Command::Generate {
            out,
            size,
            lines,
            seed,
            gzip_every,
            file_size,
            quiet,
        } => commands::generate(
            &out,
            size.as_deref(),
            lines,
            seed,
            gzip_every,
            &file_size,
            quiet,
        ),
        Command::Parse {
            source,
            jobs,
            quiet,
        } => commands::parse(&source, jobs, quiet),
        Command::Status { db, state } => commands::status(&db.url()?, &state),
        Command::Flush { db, state, yes } => commands::flush(&db.url()?, &state, yes),
    }
}
