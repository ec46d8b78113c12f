//! The `kmdb` binary: parse arguments, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the parser allocates a little per line on every core, where
/// glibc's malloc spent about a tenth of the parse time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`kmdb status | head`) instead of panicking.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    kmdb::no_huge_pages();
    let result = kmdb::run(kmdb::cli::Cli::parse());
    match &result {
        // The message says what stopped and how to resume.
        Err(err) if err.chain().any(|c| c.is::<kmdb::exit::Interrupted>()) => {
            eprintln!("kmdb: {err}");
        }
        Err(err) => eprintln!("kmdb: error: {}", kmdb::error_message(err)),
        Ok(()) => {}
    }
    kmdb::exit::code(&result)
}
