//! The `kmdb` binary: parse arguments, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kmdb::cli::Cli::parse();
    match kmdb::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kmdb: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
