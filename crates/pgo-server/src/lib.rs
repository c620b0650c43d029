//! `postgres-operator`: one server binary with subcommands, like the
//! spec's consolidated pod.

mod args;
mod home;
mod jobs;
mod kept;
mod kubernetes;
mod reach;
mod render;
mod run;
mod users;

pub use args::Cli;

use clap::Parser;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Start(String),
    #[error(transparent)]
    Instance(#[from] pgo_instance::InstanceError),
}

/// Runs `postgres-operator` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider for every TLS user in the process (rustls, reqwest).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postgres-operator: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(args::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postgres-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
