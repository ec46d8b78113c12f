//! `kmdb setup`: creates or upgrades the schema.

use anyhow::Result;

use crate::args::DbArgs;
use crate::db;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: &Args) -> Result<()> {
    let url = args.db.url()?;
    let mut target = db::connect(&url)?;
    let applied = target.setup()?;
    if applied.is_empty() {
        println!("schema is up to date ({url})");
    } else {
        println!("applied migrations {applied:?} ({url})");
    }
    Ok(())
}
