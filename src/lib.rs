//! kmdb: bulk-load KissMetrics data exports into MySQL/MariaDB.
//!
//! Stages, one module each: `source` (revision files) → `decode` (SPEC §2) →
//! `record` (§3) → `resolve` (filters, identities, ids) → `tsv` → `db::load`,
//! wired by `pipeline`; `state` remembers identities and imported revisions.

pub mod analysis;
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

/// Turns off transparent huge pages for this process. mimalloc asks for
/// them, and the kernel then zeroes 2 MiB at each first touch: the batches
/// and chunks kmdb fills once and frees cost it a fifth of its system time
/// that way (5.2 -> 3.8 CPU-seconds on a 2 GB import, see the README).
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; a kernel without it returns an error, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

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
        Command::Funnel(args) => commands::funnel(&args.common.db.url()?, &args.plan()?),
        Command::Next(args) => commands::next(&args.common.db.url()?, &args.plan()?),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_after_no_huge_pages() {
        super::no_huge_pages();
        // SAFETY: as in no_huge_pages.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }
}
