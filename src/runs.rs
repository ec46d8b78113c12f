//! Who runs kmdb, as another run names it ([`RunInfo`]: command, host, pid,
//! state store, since when), and the lock on a state file that keeps two
//! runs from using it at once ([`StateFileLock`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::dates::datetime;

/// A run of kmdb: what, where, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `import` or `flush`.
    pub command: String,
    pub host: String,
    /// 0 when unknown.
    pub pid: u32,
    /// The state store it uses, a path on `host`.
    pub state_store: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub since: String,
}

impl RunInfo {
    /// This process, running `command` with the state store `state`.
    pub fn this(command: &str, state: &Path) -> RunInfo {
        let state = std::path::absolute(state).unwrap_or_else(|_| state.to_owned());
        RunInfo {
            command: command.to_owned(),
            host: hostname(),
            pid: std::process::id(),
            state_store: state.display().to_string(),
            since: now_utc(),
        }
    }

    /// Whether this run's process is gone (it runs on this host and no
    /// process has its pid).
    pub fn is_gone(&self) -> bool {
        self.host == hostname() && self.pid != 0 && !process_alive(self.pid)
    }

    /// `key=value` lines, as a lock file holds them.
    pub fn to_lines(&self) -> String {
        format!(
            "command={}\nhost={}\npid={}\nstate={}\nsince={}\n",
            self.command, self.host, self.pid, self.state_store, self.since
        )
    }

    pub fn from_lines(text: &str) -> Option<RunInfo> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(RunInfo {
            command: get("command")?,
            host: get("host")?,
            pid: get("pid")?.parse().ok()?,
            state_store: get("state")?,
            since: get("since")?,
        })
    }
}

impl fmt::Display for RunInfo {
    /// `kmdb import, pid 42 on host h, since 2024-01-01 10:00:00 UTC, state store /x.sqlite`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kmdb {}", self.command)?;
        if self.pid != 0 {
            write!(f, ", pid {}", self.pid)?;
        }
        write!(f, " on host {}", self.host)?;
        if !self.since.is_empty() {
            write!(f, ", since {} UTC", self.since)?;
        }
        if !self.state_store.is_empty() {
            write!(f, ", state store {}", self.state_store)?;
        }
        Ok(())
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Now, `YYYY-MM-DD HH:MM:SS` UTC.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    String::from_utf8_lossy(&datetime(secs)).into_owned()
}

/// Whether a process with `pid` exists on this host.
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `path` with `suffix` added to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// An exclusive lock (`flock`) on `STATE.lock`, next to a state store, held
/// until dropped. The file names its holder; it is removed when the lock is
/// let go, so it exists only while a run holds it.
pub struct StateFileLock {
    /// Holds the lock while open.
    _file: File,
    path: PathBuf,
}

impl StateFileLock {
    /// Takes the lock of the state store `state` for `run`; `Ok(Err(holder))`
    /// when another run holds it.
    pub fn acquire(state: &Path, run: &RunInfo) -> Result<Result<StateFileLock, RunInfo>> {
        let path = with_suffix(state, ".lock");
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("creating lock file {}", path.display()))?;
            // SAFETY: flock on a descriptor we own; it touches no memory.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
                return Ok(Err(holder(&mut file, state)));
            }
            // The last holder may have removed the file between our open
            // and our lock: then the lock is on a file nobody else sees.
            let ours = file.metadata().map(|m| (m.dev(), m.ino())).ok();
            let named = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
            if ours.is_none() || ours != named {
                continue;
            }
            // Only for the message of a run turned away: a full disk must
            // not stop this one (the state store says so, naming itself).
            let _ = file
                .set_len(0)
                .and_then(|()| file.write_all(run.to_lines().as_bytes()));
            return Ok(Ok(StateFileLock { _file: file, path }));
        }
    }
}

impl Drop for StateFileLock {
    fn drop(&mut self) {
        // Removed while still locked (`_file` closes after this), so that no
        // run can lock the name in between; a run that opened it before
        // sees that the name is gone once it gets the lock, and retries.
        std::fs::remove_file(&self.path).ok();
    }
}

/// The run named in a lock file another run holds (it writes its name just
/// after locking, so wait a little for it).
fn holder(file: &mut File, state: &Path) -> RunInfo {
    for _ in 0..20 {
        let mut text = String::new();
        use std::io::Seek;
        if file.rewind().is_ok() && file.read_to_string(&mut text).is_ok() {
            if let Some(run) = RunInfo::from_lines(&text) {
                return run;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    RunInfo {
        command: "import or flush".into(),
        host: "an unknown host".into(),
        pid: 0,
        state_store: state.display().to_string(),
        since: String::new(),
    }
}

/// Fails with the message of a run turned away because `holder` runs.
pub fn busy(holder: &RunInfo, what: &str) -> Result<()> {
    bail!(
        "another kmdb {} is running on {what} ({holder}): wait for it to finish \
         (or stop it), then run this again; nothing was changed",
        holder.command
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_back_from_its_lines() {
        let run = RunInfo::this("import", Path::new("/tmp/x.sqlite"));
        assert_eq!(RunInfo::from_lines(&run.to_lines()), Some(run.clone()));
        assert!(run
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
        assert!(!run.is_gone());
    }

    #[test]
    fn a_state_file_lock_is_held_once_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("st.sqlite");
        let run = RunInfo::this("import", &state);
        let lock = StateFileLock::acquire(&state, &run).unwrap().unwrap();
        // flock locks belong to the open file: a second open is refused.
        let other = StateFileLock::acquire(&state, &run).unwrap();
        assert_eq!(other.err(), Some(run.clone()));
        drop(lock);
        assert!(!with_suffix(&state, ".lock").exists());
        let again = StateFileLock::acquire(&state, &run).unwrap();
        assert!(again.is_ok());
    }
}
