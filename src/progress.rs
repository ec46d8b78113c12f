//! Progress display: indicatif bars on a terminal, plain log lines every few
//! seconds otherwise (CI logs, pipes), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{
    HumanBytes, HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
    ProgressStyle,
};

use crate::report::count;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Plain,
    Quiet,
}

impl Mode {
    /// Bars on a terminal, plain lines elsewhere.
    pub fn auto(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Plain
        }
    }
}

pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr_with_hz(8),
            _ => ProgressDrawTarget::hidden(),
        });
        Progress { mode, multi }
    }

    /// A message above the bars (or a plain line on stderr).
    pub fn log(&self, msg: &str) {
        match self.mode {
            Mode::Bars => self.multi.suspend(|| eprintln!("{msg}")),
            Mode::Plain => eprintln!("{msg}"),
            Mode::Quiet => {}
        }
    }

    /// A message shown even with `--quiet`, prefixed `warning: `.
    pub fn warn(&self, msg: &str) {
        match self.mode {
            Mode::Bars => self.multi.suspend(|| eprintln!("warning: {msg}")),
            Mode::Plain | Mode::Quiet => eprintln!("warning: {msg}"),
        }
    }

    /// A bar counting bytes towards `total`.
    pub fn bytes(&self, label: &str, total: u64) -> Bar {
        self.bar(
            label,
            total,
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            true,
        )
    }

    /// A bar counting rows towards `total`.
    pub fn rows(&self, label: &str, total: u64) -> Bar {
        self.bar(
            label,
            total,
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows {rate} {msg}",
            false,
        )
    }

    fn bar(&self, label: &str, total: u64, template: &str, bytes: bool) -> Bar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        // Whole rows per second, grouped like the counts.
                        let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
                    },
                )
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        Bar {
            bar,
            mode: self.mode,
            label: label.to_owned(),
            bytes,
            started: Instant::now(),
            last_log: Mutex::new(Instant::now()),
        }
    }
}

pub struct Bar {
    bar: ProgressBar,
    mode: Mode,
    label: String,
    bytes: bool,
    started: Instant,
    last_log: Mutex<Instant>,
}

impl Bar {
    pub fn set(&self, pos: u64) {
        self.bar.set_position(pos);
        self.maybe_log();
    }

    pub fn set_length(&self, n: u64) {
        self.bar.set_length(n);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.maybe_log();
    }

    pub fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    fn describe(&self) -> String {
        let pos = self.bar.position();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let total = self.bar.length().unwrap_or(0);
        if self.bytes {
            format!(
                "{}: {} of {} ({}/s) {}",
                self.label,
                HumanBytes(pos),
                HumanBytes(total),
                HumanBytes((pos as f64 / secs) as u64),
                self.bar.message()
            )
        } else {
            format!(
                "{}: {} of {} rows ({}/s) {}",
                self.label,
                count(pos),
                count(total),
                count((pos as f64 / secs) as u64),
                self.bar.message()
            )
        }
    }

    fn maybe_log(&self) {
        if self.mode != Mode::Plain {
            return;
        }
        let mut last = self.last_log.lock().expect("progress lock");
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            eprintln!("{}", self.describe().trim_end());
        }
    }

    pub fn finish(&self) {
        if self.mode == Mode::Plain {
            eprintln!("{} done", self.describe().trim_end());
        }
        self.bar.finish();
    }

    /// Leaves the bar where it stopped (on error).
    pub fn abandon(&self) {
        self.bar.abandon();
    }

    /// Finishes the bar when `result` is a success, abandons it otherwise.
    pub fn end<T, E>(&self, result: &std::result::Result<T, E>) {
        match result {
            Ok(_) => self.finish(),
            Err(_) => self.abandon(),
        }
    }
}
