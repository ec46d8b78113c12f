//! `kmdb download`: fetches an S3 export to a local directory, for a later
//! `kmdb import DIR`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::S3Args;

use crate::exit::usage;
use crate::format::KM;
use crate::plan::RevisionRange;
use crate::progress::{Mode, Progress};
use crate::source::{self, s3, summary, Source};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// s3://bucket[/prefix]
    pub source: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Directory to write the export to (laid out like the bucket).
    #[arg(long)]
    pub to: PathBuf,
    /// First revision to download.
    #[arg(long, env = "KMDB_MIN_REVISION")]
    pub min_revision: Option<u64>,
    /// Last revision to download.
    #[arg(long, env = "KMDB_MAX_REVISION")]
    pub max_revision: Option<u64>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let source = args.s3.source(args.source.as_deref())?;
    let Source::S3 { url, .. } = &source else {
        return Err(usage("kmdb download takes an s3://bucket[/prefix] source"));
    };
    let range = RevisionRange {
        min: args.min_revision,
        max: args.max_revision,
    };
    let to = &args.to;
    let progress = Progress::new(Mode::auto(args.quiet));
    let revisions = to.join("revisions");
    let export = source::list(&source, &KM, &revisions)?;
    if let Some(summary) =
        summary::describe_export(export.index_csv.as_deref(), export.status_csv.as_deref())
    {
        progress.log(&summary);
    }
    let remote = export
        .remote
        .context("an S3 export has objects to download")?;
    let files: Vec<s3::RemoteFile> = remote
        .files
        .into_iter()
        .filter(|f| range.contains(f.revision))
        .collect();
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for (name, text) in [
        ("index.csv", &export.index_csv),
        ("status.csv", &export.status_csv),
    ] {
        if let Some(text) = text {
            let path = to.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let bar = progress.bytes("download", files.iter().map(|f| f.size).sum());
    let (tx, rx) = crossbeam_channel::unbounded();
    let r = remote
        .client
        .download(&files, &revisions, &|n| bar.inc(n), &tx);
    drop(tx);
    let count = rx.iter().filter(|d| d.is_ok()).count();
    bar.end(&r);
    r?;
    println!(
        "downloaded {count} revision file(s) of {url} to {}",
        to.display()
    );
    Ok(())
}
