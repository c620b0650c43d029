//! `pgo`: lowercase verbs and kinds, as the spec says (`pgo create cluster
//! mycluster`, `pgo show cluster all`, `pgo delete cluster db1 db2 db3`).
//! A REST client only: everything it knows it asks the apiserver.

mod args;
mod client;
mod commands;
mod lowercase;
mod output;
mod progress;
mod wait;

use clap::Parser;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the apiserver at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Local(String),
    /// Standard output was closed by its reader.
    #[error("standard output closed")]
    Closed,
}

/// Runs `pgo` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Err(e) = lowercase::check(&argv) {
        eprintln!("pgo: {e}");
        return ExitCode::from(2);
    }
    let cli = args::Cli::parse_from(&argv);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pgo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(CliError::Closed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgo: {e}");
            ExitCode::FAILURE
        }
    }
}
