//! A local export: `DIR/revisions/N.json[.gz]` (or `DIR/N.json[.gz]`), with
//! KM's `index.csv` and `status.csv` beside them when present.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{revisions_dir, Export, FileNames, RevisionFile};

/// Lists the revision files of `dir` in numeric order.
pub fn list(dir: &Path, names: &dyn FileNames) -> Result<Export> {
    if !dir.is_dir() {
        bail!(
            "source {} does not exist or is not a directory",
            dir.display()
        );
    }
    let revs = revisions_dir(dir, names);
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    let entries =
        std::fs::read_dir(&revs).with_context(|| format!("listing {}", revs.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", revs.display()))?;
        let name = entry.file_name();
        let Some((revision, gzip)) = name.to_str().and_then(|n| names.revision_of(n)) else {
            let name = name.to_string_lossy();
            if names.near_miss(&name) {
                ignored.push(name.into_owned());
            }
            continue;
        };
        // Follows symlinks; a revision name that is not a readable file is
        // an error, not a revision to skip.
        let path = entry.path();
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("reading revision file {}", path.display()))?;
        if !meta.is_file() {
            bail!(
                "{} is not a file: a revision must be a readable file",
                path.display()
            );
        }
        files.push(RevisionFile {
            revision,
            path: entry.path(),
            gzip,
            size: meta.len(),
        });
    }
    files.sort_by_key(|f| (f.revision, f.gzip));
    if let Some(w) = files.windows(2).find(|w| w[0].revision == w[1].revision) {
        bail!(
            "revision {} is there twice ({} and {}): keep one",
            w[0].revision,
            w[0].path.display(),
            w[1].path.display()
        );
    }
    if files.is_empty() {
        bail!(
            "no revision files ({}) in {}",
            names.names(),
            revs.display()
        );
    }
    super::check_revisions(&files)?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    ignored.sort();
    Ok(Export {
        files,
        index_csv: read("index.csv"),
        status_csv: read("status.csv"),
        ignored,
        remote: None,
    })
}
