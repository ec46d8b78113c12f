//! Ctrl-C (SIGINT) and SIGTERM: the first one asks the import to stop
//! cleanly (each stage checks [`requested`] between its steps); a second
//! SIGINT or SIGTERM ends the process at once, as with no handler.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::Interrupted;

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Catches the next SIGINT and SIGTERM (one each; later ones kill).
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an
        // atomic, and SA_RESETHAND restores the default action after it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(anyhow::Error::new(Interrupted));
    }
    Ok(())
}
