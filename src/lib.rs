//! kmdb: bulk-load KissMetrics data exports into MySQL/MariaDB.
//!
//! Stages, one module each: `source` (revision files) → `decode` (SPEC §2) →
//! `record` (§3) → `resolve` (filters, identities, ids) → `tsv` → `db::load`,
//! wired by `pipeline`; `state` remembers identities and imported revisions.

pub mod cli;
pub mod db;
pub mod decode;
pub mod identity;
pub mod partition;
pub mod pipeline;
pub mod progress;
pub mod record;
pub mod report;
pub mod resolve;
pub mod source;
pub mod state;
pub mod tsv;

use anyhow::{bail, Result};
use mysql::prelude::Queryable;

use cli::{Cli, Command};
use progress::{Mode, Progress};

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Setup { db } => {
            let url = db.url()?;
            let mut conn = db::connect(&url, None)?;
            let applied = db::schema::setup(&mut conn)?;
            if applied.is_empty() {
                println!("schema is up to date ({url})");
            } else {
                println!("applied migrations {applied:?} ({url})");
            }
            Ok(())
        }
        Command::Partition {
            db,
            min_date,
            max_date,
            days_per_partition,
        } => {
            let bounds = cli::partition_plan(&min_date, &max_date, days_per_partition)?;
            let url = db.url()?;
            let mut conn = db::connect(&url, None)?;
            db::schema::check(&mut conn)?;
            let added = db::schema::extend_partitions(&mut conn, &bounds)?;
            println!(
                "{added} partition(s) added per table; plan: {min_date} .. {max_date}, \
                 {days_per_partition} day(s) each, plus pLast"
            );
            Ok(())
        }
        Command::Import(args) => {
            let plan = args.plan()?;
            let progress = Progress::new(plan.progress);
            let started = std::time::Instant::now();
            let result = pipeline::import(&plan, &progress)?;
            if result.revisions.is_empty() {
                return Ok(());
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "imported revisions {} .. {} in {secs:.1} s ({:.0} events/s)",
                result.revisions[0],
                result.revisions[result.revisions.len() - 1],
                result.accounting.events as f64 / secs.max(0.001)
            );
            print!("{}", result.accounting);
            if let Some(path) = &result.rejects_file {
                println!("rejected lines written to {}", path.display());
            }
            Ok(())
        }
        Command::Status { db, state } => status(&db.url()?, &state),
        Command::Flush { db, state, yes } => {
            if !yes {
                bail!("kmdb flush deletes every imported row: run it again with --yes to confirm");
            }
            let url = db.url()?;
            let mut conn = db::connect(&url, None)?;
            db::schema::check(&mut conn)?;
            let token = db::schema::flush(&mut conn)?;
            let store = state::StateStore::open(&state)?;
            store.clear()?;
            store.set_meta("database_token", &token)?;
            println!("flushed the data tables of {url} and state store {}", state.display());
            Ok(())
        }
    }
}

fn status(url: &db::DatabaseUrl, state_path: &std::path::Path) -> Result<()> {
    let mut conn = db::connect(url, None)?;
    db::schema::check(&mut conn)?;
    println!("database {url}");
    for (table, n) in db::schema::counts(&mut conn)? {
        println!("  {table:<12}{n:>14} rows");
    }
    if state_path.exists() {
        let store = state::StateStore::open(state_path)?;
        let revs = store.imported_revisions()?;
        match (revs.first(), revs.last()) {
            (Some(a), Some(b)) => println!(
                "state store {}: {} revision(s) imported ({a} .. {b}), {} identities",
                state_path.display(),
                revs.len(),
                store.identity_count()?
            ),
            _ => println!("state store {}: nothing imported yet", state_path.display()),
        }
    } else {
        println!("state store {}: not created yet", state_path.display());
    }
    let last: Option<(u64, String, String, u64, u64, u64, u64, u64, Option<String>)> = conn.query_first(
        "SELECT id, CAST(finished_at AS CHAR), revisions, `lines`, events, property_sets, aliases,
                rejected_bad_timestamp + rejected_empty + rejected_ignored_user + rejected_malformed
                + rejected_no_identity + rejected_not_whitelisted + rejected_numeric_alias
                + rejected_self_alias, rejects_file
         FROM kmdb_imports ORDER BY id DESC LIMIT 1",
    )?;
    match last {
        Some((id, at, revs, lines, events, sets, aliases, rejected, file)) => {
            println!(
                "last import #{id} at {at} UTC: revisions {revs}, {lines} lines = {events} events \
                 + {sets} property sets + {aliases} aliases + {rejected} rejected + blank"
            );
            if let Some(file) = file {
                println!("  rejects file: {file}");
            }
        }
        None => println!("no import yet"),
    }
    let _ = Mode::Quiet;
    Ok(())
}
