//! `kmdb flush`: empties the data tables and the state store.

use anyhow::{bail, Result};

use crate::args::{DbArgs, StateArgs};
use crate::db;
use crate::pipeline::guard;
use crate::progress::{Mode, Progress};
use crate::state::StateStore;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Confirm: this deletes every imported row.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: &Args) -> Result<()> {
    if !args.yes {
        bail!("kmdb flush deletes every imported row: run it again with --yes to confirm");
    }
    let url = args.db.url()?;
    let path = args.state.path_for(&url);
    let mut target = db::connect(&url)?;
    target.check_schema()?;
    // Not while an import runs on this database or with this state file.
    let progress = Progress::new(Mode::auto(false));
    let _locks = guard::lock(&mut *target, &path, "flush", &progress)?;
    let token = target.flush()?;
    if path.exists() {
        let store = StateStore::open(&path)?;
        store.clear()?;
        store.set_meta("database_token", &token)?;
        println!(
            "flushed the data tables of {url} and state store {}",
            path.display()
        );
    } else {
        println!(
            "flushed the data tables of {url} (state store {} did not exist)",
            path.display()
        );
    }
    let kept = target.partitions(crate::table::Table::Events)?.day_bounds();
    println!(
        "partitions kept: {}; `kmdb partition ... --replan` changes them",
        crate::partition::describe(&kept)
    );
    Ok(())
}
