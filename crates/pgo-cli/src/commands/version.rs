use crate::CliError;
use crate::args::Cli;
use crate::client::Client;
use crate::output::sayln;
use pgo_api::rest::VersionResponse;
use std::process::ExitCode;

/// The client's version always; the server's when it can be reached.
pub async fn run(cli: &Cli) -> Result<ExitCode, CliError> {
    sayln!("pgo client version {}", env!("CARGO_PKG_VERSION"));
    let client = Client::new(cli)?;
    let v: VersionResponse = client.get("/version").await?;
    sayln!(
        "pgo apiserver version {} (platform {}, API {}) at {}",
        v.version,
        v.platform,
        v.api_group,
        client.url()
    );
    Ok(ExitCode::SUCCESS)
}
