//! kmdb: bulk-load KissMetrics data exports into SQL databases.
//!
//! Stages, one module each, imports pointing one way: `source` (revision
//! files) → `decode` (SPEC §2) → `record` (§3) → `resolve` (filters,
//! identities, ids) → `rows` (batch files) → `db` (a `Target` per database),
//! wired by `pipeline`; `state` remembers identities and imported revisions;
//! `commands` holds one file per subcommand; `analysis` counts funnels and
//! next events over the rows `db` reads back.

pub mod analysis;
pub mod args;
pub mod cli;
pub mod commands;
pub mod dates;
pub mod db;
pub mod decode;
pub mod duplicates;
pub mod exit;
pub mod filters;
pub mod format;
pub mod generate;
pub mod identity;
pub mod intern;
pub mod interrupt;
pub mod partition;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod resolve;
pub mod rows;
pub mod runs;
pub mod source;
pub mod state;
pub mod table;

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

/// The message of a failed run: each cause in turn, `: `-separated, with
/// database drivers' errors in words.
pub fn error_message(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| db::describe_cause(cause).unwrap_or_else(|| cause.to_string()))
        .collect::<Vec<_>>()
        .join(": ")
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Setup(args) => commands::setup::run(&args),
        Command::Partition(args) => commands::partition::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Download(args) => commands::download::run(&args),
        Command::Generate(args) => commands::generate::run(&args),
        Command::Parse(args) => commands::parse::run(&args),
        Command::Status(args) => commands::status::run(&args),
        Command::Flush(args) => commands::flush::run(&args),
        Command::Prune(args) => commands::prune::run(&args),
        Command::Funnel(args) => commands::funnel::run(&args),
        Command::Next(args) => commands::next::run(&args),
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
