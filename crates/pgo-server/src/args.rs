use crate::ServerError;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "postgres-operator",
    version,
    about = "The pgo server: apiserver, operator and instance manager"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the apiserver and the operator in one process.
    Run(RunArgs),
    /// Run one PostgreSQL instance (what every "pod" runs).
    Instance {
        /// The instance's config file, written by the platform.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the CustomResourceDefinitions of all six kinds.
    Crd,
    /// Manage apiserver users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[arg(long, value_enum, default_value_t = PlatformKind::Local)]
    pub platform: PlatformKind,
    /// Where the server keeps its store, certificates, users and records.
    #[arg(long, env = "PGO_HOME")]
    pub home: PathBuf,
    /// Address of the HTTPS apiserver.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Where volumes (data directories) go; `<home>/volumes` by default.
    /// PostgreSQL's OS user must be able to reach it.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL's binaries, when not found on their own.
    #[arg(long, env = "PGO_PG_BIN_DIR")]
    pub pg_bin_dir: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum PlatformKind {
    Local,
    Kubernetes,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user to `<home>/pgouser`; prints its password.
    Add {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long, env = "PGO_HOME")]
        home: PathBuf,
        /// Read the password from standard input instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn dispatch(cli: Cli) -> Result<(), ServerError> {
    match cli.command {
        Command::Run(args) => crate::run::run(args).await,
        Command::Instance { config } => Ok(pgo_instance::run(&config).await?),
        Command::Crd => {
            let yaml = pgo_api::crd::yaml()
                .map_err(|e| ServerError::Start(format!("cannot render the CRDs: {e}")))?;
            print!("{yaml}");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    home,
                    password_stdin,
                },
        } => crate::users::add(&home, &name, &role, password_stdin),
    }
}
