//! One function per subcommand: what it prints, on top of the library.

use std::path::Path;

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;

use crate::db::{self, DatabaseUrl};
use crate::generate::{self, Amount, GenerateOptions};
use crate::pipeline::{self, ImportPlan, Source};
use crate::progress::{Mode, Progress};
use crate::source::s3;
use crate::state::StateStore;

pub fn setup(url: &DatabaseUrl) -> Result<()> {
    let mut conn = db::connect(url, None)?;
    let applied = db::schema::setup(&mut conn)?;
    if applied.is_empty() {
        println!("schema is up to date ({url})");
    } else {
        println!("applied migrations {applied:?} ({url})");
    }
    Ok(())
}

pub fn partition(url: &DatabaseUrl, min_date: &str, max_date: &str, days: u32) -> Result<()> {
    let bounds = crate::cli::partition_plan(min_date, max_date, days)?;
    let mut conn = db::connect(url, None)?;
    db::schema::check(&mut conn)?;
    let added = db::schema::extend_partitions(&mut conn, &bounds)?;
    println!(
        "{added} partition(s) added per table; plan: {min_date} .. {max_date}, \
         {days} day(s) each, plus pLast"
    );
    Ok(())
}

pub fn import(plan: &ImportPlan) -> Result<()> {
    let progress = Progress::new(plan.progress);
    // An interrupted import is finished first, then the rest is imported.
    loop {
        let result = import_once(plan, &progress)?;
        if !result {
            return Ok(());
        }
    }
}

/// One import; true when it finished an interrupted one (more may follow).
fn import_once(plan: &ImportPlan, progress: &Progress) -> Result<bool> {
    let started = std::time::Instant::now();
    let result = pipeline::import(plan, progress)?;
    if result.revisions.is_empty() {
        return Ok(false);
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
    Ok(result.resumed)
}

pub fn download(
    source: &Source,
    to: &Path,
    min: Option<u64>,
    max: Option<u64>,
    quiet: bool,
) -> Result<()> {
    let Source::S3 { url, config } = source else {
        bail!("kmdb download takes an s3://bucket[/prefix] source");
    };
    let progress = Progress::new(Mode::auto(quiet));
    let client = s3::S3Source::connect(url.clone(), config.clone())?;
    let listing = client.list()?;
    if let Some(summary) =
        s3::describe_export(listing.index_csv.as_deref(), listing.status_csv.as_deref())
    {
        progress.log(&summary);
    }
    let files: Vec<s3::RemoteFile> = listing
        .files
        .into_iter()
        .filter(|f| min.is_none_or(|m| f.revision >= m) && max.is_none_or(|m| f.revision <= m))
        .collect();
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for (name, text) in [
        ("index.csv", &listing.index_csv),
        ("status.csv", &listing.status_csv),
    ] {
        if let Some(text) = text {
            let path = to.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let bar = progress.bytes("download", files.iter().map(|f| f.size).sum());
    let (tx, rx) = crossbeam_channel::unbounded();
    let r = client.download(&files, &to.join("revisions"), &|n| bar.inc(n), &tx);
    drop(tx);
    let count = rx.iter().filter(|d| d.is_ok()).count();
    match r {
        Ok(()) => bar.finish(),
        Err(e) => {
            bar.abandon();
            return Err(e);
        }
    }
    println!(
        "downloaded {count} revision file(s) of {url} to {}",
        to.display()
    );
    Ok(())
}

pub fn generate(
    out: &Path,
    size: Option<&str>,
    lines: Option<u64>,
    seed: u64,
    gzip_every: Option<u32>,
    file_size: &str,
    quiet: bool,
) -> Result<()> {
    let amount = match (size, lines) {
        (_, Some(n)) => Amount::Lines(n),
        (Some(s), None) => Amount::Bytes(generate::parse_size(s)?),
        (None, None) => bail!("give --size or --lines"),
    };
    let opts = GenerateOptions {
        out: out.to_owned(),
        amount,
        seed,
        gzip_every,
        file_bytes: generate::parse_size(file_size)?,
    };
    let progress = Progress::new(Mode::auto(quiet));
    let total = match amount {
        Amount::Bytes(b) => b,
        Amount::Lines(n) => n * 110,
    };
    let bar = progress.bytes("generate", total);
    let summary = generate::generate(&opts, &mut |n| bar.inc(n));
    match &summary {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    let summary = summary?;
    println!(
        "wrote {} revision file(s), {} lines, {} bytes to {}",
        summary.files,
        summary.lines,
        summary.bytes,
        out.display()
    );
    Ok(())
}

pub fn parse(source: &Path, jobs: Option<usize>, quiet: bool) -> Result<()> {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let progress = Progress::new(Mode::auto(quiet));
    let s = pipeline::parse_only(source, jobs, crate::cli::CHUNK_SIZE, &progress)?;
    println!(
        "parsed {} file(s): {} bytes, {} lines ({} records) in {:.2} s on {jobs} thread(s): {:.0} MB/s",
        s.files,
        s.bytes,
        s.lines,
        s.records,
        s.seconds,
        s.bytes as f64 / 1e6 / s.seconds.max(1e-9)
    );
    Ok(())
}

pub fn flush(url: &DatabaseUrl, state: &Path, yes: bool) -> Result<()> {
    if !yes {
        bail!("kmdb flush deletes every imported row: run it again with --yes to confirm");
    }
    let mut conn = db::connect(url, None)?;
    db::schema::check(&mut conn)?;
    let token = db::schema::flush(&mut conn)?;
    let store = StateStore::open(state)?;
    store.clear()?;
    store.set_meta("database_token", &token)?;
    println!(
        "flushed the data tables of {url} and state store {}",
        state.display()
    );
    Ok(())
}

pub fn status(url: &db::DatabaseUrl, state_path: &std::path::Path) -> Result<()> {
    let mut conn = db::connect(url, None)?;
    db::schema::check(&mut conn)?;
    println!("database {url}");
    for (table, n) in db::schema::counts(&mut conn)? {
        println!("  {table:<12}{n:>14} rows");
    }
    if state_path.exists() {
        let store = StateStore::open(state_path)?;
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
    type LastImport = (u64, String, String, u64, u64, u64, u64, u64, Option<String>);
    let last: Option<LastImport> = conn.query_first(
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
    Ok(())
}

/// `kmdb funnel`: the file is checked before the database is read.
pub fn funnel(url: &DatabaseUrl, plan: &crate::analysis::run::FunnelPlan) -> Result<()> {
    use crate::analysis::{funnel, html, mysql::MySqlStore, output, run};
    let text = std::fs::read_to_string(&plan.file)
        .with_context(|| format!("reading the funnel file {}", plan.file.display()))?;
    let funnels = funnel::parse_funnels(&text).with_context(|| plan.file.display().to_string())?;
    let store = MySqlStore::open(url)?;
    let progress = Progress::new(plan.reading.progress);
    let results = run::funnels(&store, funnels, plan.range, &plan.reading, &progress)?;
    if let Some(path) = &plan.html {
        let info = html::PageInfo {
            from: plan.range.from.map(crate::analysis::time::format_datetime),
            to: plan.range.to.map(crate::analysis::time::format_datetime),
            database: url.database().unwrap_or_default(),
        };
        std::fs::write(path, html::page(&results, &info))
            .with_context(|| format!("writing the HTML page {}", path.display()))?;
        progress.log(&format!("wrote {}", path.display()));
    }
    print!("{}", output::funnels(&results, plan.format));
    Ok(())
}

/// `kmdb next`.
pub fn next(url: &DatabaseUrl, plan: &crate::analysis::run::NextPlan) -> Result<()> {
    use crate::analysis::{mysql::MySqlStore, output, run};
    let store = MySqlStore::open(url)?;
    let progress = Progress::new(plan.reading.progress);
    let report = run::next(&store, plan, &progress)?;
    print!("{}", output::next(&report, plan.format));
    Ok(())
}
