//! `kmdb status`: rows per table, what the state store imported, the last
//! import's accounting, and an import left interrupted.

use anyhow::Result;

use crate::args::{DbArgs, StateArgs};
use crate::db;
use crate::pipeline::guard::span;
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
    let path = args.state.path_for(&url);
    if path.exists() {
        let store = StateStore::open(&path)?;
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
    let loading = target.loading()?;
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
        None if loading.is_none() => println!("no import yet"),
        None => {}
    }
    if let Some(l) = loading {
        println!(
            "interrupted: the import of revisions {} ({}) did not finish; the rows it loaded \
             are in the tables above, and the next `kmdb import` finishes it first",
            span(&l.revisions),
            l.run
        );
    }
    Ok(())
}
