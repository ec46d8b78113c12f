//! `kmdb prune --before DATE [--yes]`: removes every `events`, `properties`
//! and `aliases` row from before DATE (SPEC §8): partitions that end on or
//! before it are dropped whole, the earlier rows of the one holding it are
//! deleted. `users` and `keys` stay, and so do the revisions the state
//! store imported. Without `--yes` it only says what it would remove.

use anyhow::Result;

use crate::args::{DbArgs, StateArgs};
use crate::dates::Day;
use crate::db;
use crate::exit;
use crate::pipeline::guard;
use crate::progress::{Mode, Progress};
use crate::table::Table;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Remove the rows from before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub before: String,
    /// Remove them; without it, only print what would go.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let day = Day::parse(&args.before).map_err(|_| {
        exit::usage(format!(
            "--before {:?} is not a date: give the first day to keep as YYYY-MM-DD, \
             e.g. --before 2014-06-01",
            args.before
        ))
    })?;
    let url = args.db.url()?;
    let mut target = db::connect(&url)?;
    target.check_schema()?;
    // Not while an import runs on this database.
    let path = args.state.path_for(&url);
    let progress = Progress::new(Mode::auto(false));
    let _locks = guard::lock(&mut *target, &path, "prune", &progress)?;
    if args.yes {
        println!("pruning the rows from before {day} in {url}");
    } else {
        println!("kmdb prune --before {day} would remove from {url}:");
    }
    let mut total = 0;
    for table in Table::ALL {
        let map = target.partitions(table)?;
        let (whole, holder) = map.split_before(day);
        let mut in_whole = 0;
        for p in &whole {
            in_whole += target.partition_rows(table, p)?;
        }
        let partial = target.rows_before(table, &holder, day)?;
        let name = table.name();
        let shown = if holder.is_empty() { name } else { &holder };
        let dropped = if whole.is_empty() {
            String::new()
        } else {
            format!(
                "{} partition(s) {} (about {in_whole} rows), ",
                whole.len(),
                whole.join(", ")
            )
        };
        if args.yes {
            let deleted = target.prune(table, &whole, &holder, day)?;
            let dropped = dropped.replace("partition(s)", "dropped partition(s)");
            println!("  {name:<12}{dropped}{deleted} rows deleted from {shown}");
            total += in_whole + deleted;
        } else {
            let dropped = dropped.replace("partition(s)", "whole partition(s)");
            println!("  {name:<12}{dropped}{partial} rows of {shown}");
            total += in_whole + partial;
        }
    }
    if args.yes {
        println!("removed about {total} rows; users, keys and the imported revisions stay");
    } else {
        println!(
            "about {total} rows in all; nothing was changed: run it again with --yes to remove them"
        );
    }
    Ok(())
}
