//! `kmdb status`: rows per table, what the state store imported, the last
//! import's accounting.

use anyhow::Result;

use crate::args::{DbArgs, StateArgs};
use crate::db;
use crate::report::count;
use crate::state::StateStore;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

pub fn run(args: &Args) -> Result<()> {
    let url = args.db.url()?;
    let mut target = db::connect(&url)?;
    target.check_schema()?;
    println!("database {url}");
    for (table, n) in target.row_counts()? {
        println!("  {table:<12}{:>14} rows", count(n));
    }
    let path = &args.state.path;
    if path.exists() {
        let store = StateStore::open(path)?;
        let revs = store.imported_revisions()?;
        match (revs.first(), revs.last()) {
            (Some(a), Some(b)) => println!(
                "state store {}: {} revision(s) imported ({a} .. {b}), {} identities",
                path.display(),
                count(revs.len() as u64),
                count(store.identity_count()?)
            ),
            _ => println!("state store {}: nothing imported yet", path.display()),
        }
    } else {
        println!("state store {}: not created yet", path.display());
    }
    match target.last_import()? {
        Some(last) => {
            let a = &last.accounting;
            println!(
                "last import #{} at {} UTC: revisions {}, {} lines = {} events \
                 + {} property sets + {} aliases + {} rejected + {} blank",
                last.id,
                last.finished_at,
                last.revisions,
                count(a.lines),
                count(a.events),
                count(a.property_sets),
                count(a.aliases),
                count(a.rejected_total()),
                count(a.blank)
            );
            if let Some(file) = last.rejects_file {
                println!("  rejects file: {file}");
            }
        }
        None => println!("no import yet"),
    }
    Ok(())
}
