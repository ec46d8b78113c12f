//! The exit codes of `kmdb`, and the errors that choose them.

use std::fmt;
use std::process::ExitCode;

/// Done (rejected lines included: they are counted and written out).
pub const SUCCESS: u8 = 0;
/// An error: the message says what to do.
pub const ERROR: u8 = 1;
/// A usage mistake: a bad argument or value.
pub const USAGE: u8 = 2;
/// Stopped by Ctrl-C (SIGINT) after a clean stop.
pub const INTERRUPTED: u8 = 130;

/// A mistake in how kmdb was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An interrupted run (exit code 130).
#[derive(Debug)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A usage error with `message`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The exit code for the outcome of a run.
pub fn code(result: &anyhow::Result<()>) -> ExitCode {
    ExitCode::from(match result {
        Ok(()) => SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<Interrupted>()) => INTERRUPTED,
        Err(e) if e.chain().any(|c| c.is::<UsageError>()) => USAGE,
        Err(_) => ERROR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn errors_choose_their_code() {
        assert_eq!(code(&Ok(())), ExitCode::from(SUCCESS));
        assert_eq!(code(&Err(anyhow::anyhow!("x"))), ExitCode::from(ERROR));
        let e: anyhow::Result<()> = Err(usage("bad date")).context("partition");
        assert_eq!(code(&e), ExitCode::from(USAGE));
        let e: anyhow::Result<()> = Err(anyhow::Error::new(Interrupted));
        assert_eq!(code(&e), ExitCode::from(INTERRUPTED));
    }
}
