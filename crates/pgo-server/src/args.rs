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
    /// Run a cluster's pgBackRest repository host (Kubernetes).
    RepoHost {
        /// The repository host's config file, written by the platform.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the CustomResourceDefinitions of all six kinds.
    Crd,
    /// Print every Kubernetes object the operator would create for the
    /// Pgclusters (and Pgreplicas) in a file, without a cluster.
    Render {
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Use this strategy instead of the cluster's `spec.strategy`.
        #[arg(long)]
        strategy: Option<String>,
        /// A directory of templates over the embedded ones (as /operator-conf).
        #[arg(long)]
        templates: Option<PathBuf>,
        #[arg(long, default_value = "pgo")]
        namespace: String,
        /// The image that runs the instance manager.
        #[arg(long)]
        image: Option<String>,
        /// The PriorityClass of PostgreSQL pods.
        #[arg(long)]
        priority_class: Option<String>,
        /// Leave pods' fsGroup unset (pgo.yaml `Cluster.DisableFSGroup`).
        #[arg(long)]
        disable_fs_group: bool,
        /// Also print the rmdata Job of every volume and a backup Job.
        #[arg(long)]
        with_jobs: bool,
    },
    /// Print the operator-conf ConfigMap: the strategy templates, flat.
    OperatorConf {
        #[arg(long, default_value = "pgo")]
        namespace: String,
    },
    /// Run a job's work (what a Job's pod runs).
    Job {
        #[command(subcommand)]
        job: JobCommand,
    },
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
    /// Kubernetes: the namespaces of the clusters, comma-separated; the
    /// first is where `pgo` goes without `--namespace`. The pod's own
    /// namespace when it runs in one, else `pgo`.
    #[arg(long, env = "WATCH_NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// Kubernetes: the mounted operator-conf ConfigMap (the templates and
    /// an optional pgo.yaml).
    #[arg(long, env = "PGO_OPERATOR_CONF", default_value = "/operator-conf")]
    pub operator_conf: PathBuf,
    /// Kubernetes: the image whose `postgres-operator instance` runs in
    /// every PostgreSQL pod.
    #[arg(long, env = "PGO_INSTANCE_IMAGE")]
    pub instance_image: Option<String>,
    /// For tests: a failover waits this long between fencing the old
    /// primary and promoting, so a test can kill the operator there.
    #[arg(long, hide = true)]
    pub test_pause_after_fence_ms: Option<u64>,
}

/// The instance manager's config a job works for: a file (the local
/// platform's instance directory), or the JSON itself (a Job's argument on
/// Kubernetes, which needs no ConfigMap of its own).
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct InstanceConfigArg {
    #[arg(long)]
    pub instance_config: Option<PathBuf>,
    #[arg(long)]
    pub instance_config_json: Option<String>,
}

impl InstanceConfigArg {
    pub fn read(&self) -> Result<pgo_api::instance::InstanceConfig, String> {
        match (&self.instance_config, &self.instance_config_json) {
            (Some(path), _) => pgo_instance::read_config(path),
            (None, Some(text)) => {
                serde_json::from_str(text).map_err(|e| format!("--instance-config-json: {e}"))
            }
            (None, None) => Err("--instance-config or --instance-config-json is needed".into()),
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum PlatformKind {
    Local,
    Kubernetes,
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Remove a data directory for good (the rmdata Job).
    Rmdata {
        /// An absolute path inside the mounted volume.
        #[arg(long)]
        path: PathBuf,
    },
    /// A pg_basebackup copy of PostgreSQL into a backup volume; how it
    /// ended goes to --result (a Job's termination message on Kubernetes).
    Basebackup {
        /// PostgreSQL's address.
        #[arg(long)]
        host: String,
        #[arg(long)]
        port: u16,
        /// The replication user's secret: a directory of `username` and
        /// `password` files.
        #[arg(long)]
        secret_dir: PathBuf,
        /// The backup volume's directory.
        #[arg(long)]
        volume: PathBuf,
        /// Where in the volume the copy goes (relative, no ..).
        #[arg(long)]
        path: String,
        /// Where to write how it ended (JSON).
        #[arg(long)]
        result: PathBuf,
        /// PostgreSQL's binaries; found on the machine when unset.
        #[arg(long)]
        pg_bin_dir: Option<PathBuf>,
    },
    /// A pgBackRest restore of an instance's repository into a new volume
    /// (`pgo restore --to-pvc`); how it ended goes to --result.
    Restore {
        #[command(flatten)]
        instance: InstanceConfigArg,
        /// The new volume's directory.
        #[arg(long)]
        volume: PathBuf,
        /// Where to write how it ended (JSON).
        #[arg(long)]
        result: PathBuf,
        /// time, lsn, xid, name or immediate.
        #[arg(long, requires = "pitr_target")]
        pitr_type: Option<String>,
        #[arg(long)]
        pitr_target: Option<String>,
        /// pgBackRest restore options.
        #[arg(last = true)]
        options: Vec<String>,
    },
    /// A new cluster's first volume filled from a pg_basebackup copy
    /// before its pod first starts (`--backup-pvc` on Kubernetes); how it
    /// ended goes to --result.
    Seed {
        #[command(flatten)]
        instance: InstanceConfigArg,
        /// The copy: a data directory, in the mounted backup volume.
        #[arg(long)]
        copy: PathBuf,
        /// Where to write how it ended (JSON).
        #[arg(long)]
        result: PathBuf,
    },
    /// A pgBackRest command for an instance's stanza (a backup, an
    /// expire), then the repository's info; how it ended goes to --result.
    Backrest {
        /// The instance manager's config of the instance it is for.
        #[arg(long)]
        instance_config: PathBuf,
        /// A backup from a replica: that replica's config.
        #[arg(long)]
        standby_config: Option<PathBuf>,
        /// Where to write how it ended (JSON).
        #[arg(long)]
        result: PathBuf,
        /// The pgBackRest command and its options.
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
    /// A pgBackRest command run by a cluster's repository host (the backup
    /// Job on Kubernetes), then the repository's info; how it ended goes
    /// to --result.
    BackrestRemote {
        /// The repository host's control endpoint (https://host:port).
        #[arg(long)]
        url: String,
        /// The bearer token it requires.
        #[arg(long)]
        token_file: PathBuf,
        /// The CA that signs its certificate.
        #[arg(long)]
        ca_file: PathBuf,
        /// A backup from this replica (its pgBackRest server's address).
        #[arg(long)]
        standby: Option<String>,
        /// Where to write how it ended (JSON).
        #[arg(long)]
        result: PathBuf,
        /// The pgBackRest command and its options.
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
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
    /// Hash in place the plaintext passwords of a pgouser file from 3.4.
    Hash {
        #[arg(long, env = "PGO_HOME")]
        home: PathBuf,
    },
}

pub async fn dispatch(cli: Cli) -> Result<(), ServerError> {
    match cli.command {
        Command::Run(args) => crate::run::run(args).await,
        Command::Instance { config } => Ok(pgo_instance::run(&config).await?),
        Command::RepoHost { config } => Ok(pgo_instance::repo_host::run(&config).await?),
        Command::Crd => {
            let yaml = pgo_api::crd::yaml()
                .map_err(|e| ServerError::Start(format!("cannot render the CRDs: {e}")))?;
            print!("{yaml}");
            Ok(())
        }
        Command::Render {
            file,
            strategy,
            templates,
            namespace,
            image,
            priority_class,
            disable_fs_group,
            with_jobs,
        } => crate::render::run(crate::render::Args {
            file: &file,
            strategy,
            templates: templates.as_deref(),
            namespace,
            image,
            priority_class,
            disable_fs_group,
            with_jobs,
        }),
        Command::Job {
            job: JobCommand::Rmdata { path },
        } => crate::jobs::rmdata(&path),
        Command::Job {
            job:
                JobCommand::Backrest {
                    instance_config,
                    standby_config,
                    result,
                    args,
                },
        } => crate::jobs::backrest(&instance_config, standby_config.as_deref(), &result, &args).await,
        Command::Job {
            job:
                JobCommand::BackrestRemote {
                    url,
                    token_file,
                    ca_file,
                    standby,
                    result,
                    args,
                },
        } => {
            let host = crate::jobs::RepoHost {
                url: &url,
                token_file: &token_file,
                ca_file: &ca_file,
            };
            crate::jobs::backrest_remote(&host, standby, &result, args).await
        }
        Command::Job {
            job:
                JobCommand::Basebackup {
                    host,
                    port,
                    secret_dir,
                    volume,
                    path,
                    result,
                    pg_bin_dir,
                },
        } => {
            let from = pgo_instance::copies::Source {
                host: &host,
                port,
                secret_dir: &secret_dir,
                bin_dir: pg_bin_dir.as_deref(),
            };
            crate::jobs::basebackup(&from, &volume, &path, &result).await
        }
        Command::Job {
            job:
                JobCommand::Restore {
                    instance,
                    volume,
                    result,
                    pitr_type,
                    pitr_target,
                    options,
                },
        } => {
            let target = pgo_core::validate::pitr_target(pitr_type.as_deref(), pitr_target.as_deref())
                .map_err(ServerError::Start)?;
            crate::jobs::restore(&instance, &volume, target, options, &result).await
        }
        Command::Job {
            job:
                JobCommand::Seed {
                    instance,
                    copy,
                    result,
                },
        } => crate::jobs::seed(&instance, &copy, &result).await,
        Command::OperatorConf { namespace } => crate::render::operator_conf(&namespace),
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    home,
                    password_stdin,
                },
        } => crate::users::add(&home, &name, &role, password_stdin),
        Command::User {
            command: UserCommand::Hash { home },
        } => crate::users::hash(&home),
    }
}
