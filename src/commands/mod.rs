//! One file per subcommand: its arguments, turned once into a validated
//! plan, and what it prints on top of the library. A subcommand is a file
//! here and a variant of `cli::Command`.

pub mod download;
pub mod flush;
pub mod funnel;
pub mod generate;
pub mod import;
pub mod next;
pub mod parse;
pub mod partition;
pub mod prune;
pub mod setup;
pub mod status;
