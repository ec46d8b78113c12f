//! An import's own directory in the work directory, `WORK_DIR/tsv/PID-TIME/`:
//! its batch files, its `users` and `keys` rows and the rejects file being
//! written. A run that is killed or interrupted leaves it behind; the next
//! import that ends well on this machine removes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::runs::RunInfo;

/// Names the run that owns a run directory.
const OWNER: &str = "owner";

/// The directory of this run's files.
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `WORK_DIR/tsv/PID-TIME/` for `run`.
    pub fn create(work_dir: &Path, run: &RunInfo) -> Result<RunDir> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = work_dir.join("tsv").join(format!("{}-{stamp}", run.pid));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating work directory {}", path.display()))?;
        let owner = path.join(OWNER);
        std::fs::write(&owner, run.to_lines())
            .with_context(|| format!("writing {}", owner.display()))?;
        Ok(RunDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory and what is left in it.
    pub fn remove(self) {
        std::fs::remove_dir_all(&self.path).ok();
    }
}

/// Removes what runs that are gone left in `WORK_DIR/tsv`: their run
/// directories (a run of this machine whose process no longer exists) and
/// the batch files earlier kmdb versions wrote straight into `tsv/`.
/// Returns how many it removed.
pub fn remove_leftovers(work_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(work_dir.join("tsv")) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let gone = if path.is_dir() {
            run_is_gone(&path, &name)
        } else {
            is_batch_file(&name)
        };
        if gone {
            let r = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed += r.is_ok() as usize;
        }
    }
    removed
}

/// Whether the run of the run directory `dir` (named `PID-TIME`) is gone.
fn run_is_gone(dir: &Path, name: &str) -> bool {
    let Some(pid) = name
        .split_once('-')
        .and_then(|(pid, time)| time.parse::<u128>().ok().and(pid.parse::<u32>().ok()))
    else {
        return false; // not a run directory
    };
    match std::fs::read_to_string(dir.join(OWNER))
        .ok()
        .and_then(|t| RunInfo::from_lines(&t))
    {
        Some(run) => run.is_gone(),
        // Killed before it named itself.
        None => !crate::runs::process_alive(pid),
    }
}

/// `TABLE.PARTITION.SEQ.tsv`, as earlier versions named batch files.
fn is_batch_file(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts[3] == "tsv"
        && parts[2].bytes().all(|b| b.is_ascii_digit())
        && ["events", "properties", "aliases"].contains(&parts[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_of_runs_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        let me = RunInfo::this("import", Path::new("st.sqlite"));
        let mine = RunDir::create(work, &me).unwrap();
        std::fs::write(mine.path().join("events.p1.000001.tsv"), "x").unwrap();
        // A run of this machine that is gone (no process has pid 0x7ffffffe).
        let gone = RunInfo {
            pid: 0x7fff_fffe,
            ..me.clone()
        };
        let left = RunDir::create(work, &gone).unwrap();
        std::fs::write(left.path().join("events.p1.000001.tsv"), "x").unwrap();
        // A run of another machine: its process cannot be asked.
        let other = RunInfo {
            host: "elsewhere".into(),
            ..gone.clone()
        };
        let elsewhere = work.join("tsv/77-1");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join(OWNER), other.to_lines()).unwrap();
        std::fs::write(work.join("tsv/events.p2.000003.tsv"), "old").unwrap();
        std::fs::write(work.join("tsv/notes.txt"), "mine").unwrap();

        assert_eq!(remove_leftovers(work), 2);
        assert!(mine.path().exists());
        assert!(!left.path().exists());
        assert!(elsewhere.exists());
        assert!(work.join("tsv/notes.txt").exists());
    }
}
