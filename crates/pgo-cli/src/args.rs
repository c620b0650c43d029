//! The command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "pgo",
    version,
    about = "Create, show and delete PostgreSQL clusters run by the pgo operator"
)]
pub struct Cli {
    /// The apiserver's URL.
    #[arg(
        long,
        global = true,
        env = "PGO_APISERVER_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    pub apiserver_url: String,
    /// The CA certificate that signed the apiserver's certificate.
    #[arg(long, global = true, env = "PGO_CA_CERT")]
    pub pgo_ca_cert: Option<PathBuf>,
    /// File holding `username:password` (default ~/.pgouser).
    #[arg(long, global = true, env = "PGOUSER")]
    pub pgouser: Option<PathBuf>,
    /// Kubernetes: the namespace to act in, one the operator watches (its
    /// first when unset).
    #[arg(short = 'n', long, global = true, env = "PGO_NAMESPACE")]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a resource.
    Create {
        #[command(subcommand)]
        what: CreateWhat,
    },
    /// Show resources.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
    /// Delete resources.
    Delete {
        #[command(subcommand)]
        what: DeleteWhat,
    },
    /// Add replicas to a cluster (adds --replica-count more, as the original did).
    Scale {
        name: String,
        #[arg(long)]
        replica_count: u32,
        /// A storage config of pgo.yaml for the new replicas' volumes.
        #[arg(long)]
        storage_config: Option<String>,
        /// A ContainerResources entry of pgo.yaml for the cluster from now
        /// on: the new replicas, and every member one at a time.
        #[arg(long, short = 'r')]
        resources_config: Option<String>,
        /// Return without waiting for the new replicas.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the new replicas to be ready.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Remove one replica of a cluster (--query lists them).
    Scaledown {
        name: String,
        /// List the replicas with their readiness, node and lag.
        #[arg(long, conflicts_with = "target")]
        query: bool,
        /// The replica to remove.
        #[arg(long, required_unless_present = "query")]
        target: Option<String>,
        /// Remove its data directory too (kept otherwise).
        #[arg(long)]
        delete_data: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Promote a replica of a cluster (--query lists the candidates).
    Failover {
        name: String,
        /// List the replicas that could be promoted: readiness, node, WAL.
        #[arg(long, conflicts_with = "target")]
        query: bool,
        /// The replica to promote.
        #[arg(long, required_unless_present = "query")]
        target: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        /// Make a new replica for the promoted one (pgo.yaml's
        /// Cluster.AutofailReplaceReplica by default).
        #[arg(long)]
        autofail_replace_replica: Option<bool>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Back up a cluster into its pgBackRest repository (waits until done).
    Backup(Backup),
    /// Restore a cluster in place from its pgBackRest repository, to a
    /// moment when asked: it stops, its primary is restored, its replicas
    /// are made again.
    Restore {
        name: String,
        /// Replay WAL up to this moment ("2026-11-24 10:00:00+00"), LSN,
        /// xid or restore point; the last archived WAL when unset.
        #[arg(long)]
        pitr_target: Option<String>,
        /// time (the default), lsn, xid, name or immediate.
        #[arg(long)]
        pitr_type: Option<String>,
        /// pgBackRest restore options (--set=LABEL).
        #[arg(long, allow_hyphen_values = true)]
        backup_opts: Option<String>,
        /// Restore into this new volume instead, leaving the cluster as it
        /// is; then 'pgo create cluster VOL --secret-from=NAME' starts on it.
        #[arg(long)]
        to_pvc: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        /// Return once the restore is accepted.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the restored cluster to be ready.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Apply clusters' configuration again: each takes its custom
    /// configuration's files anew (checked first; a refused one changes
    /// nothing) and PostgreSQL reloads. Settings that need a restart show
    /// as pending restart in 'pgo show cluster'.
    Reload {
        names: Vec<String>,
        /// Every cluster whose labels hold these (key=value[,key=value]).
        #[arg(long, short = 'l')]
        selector: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
    },
    /// Restart a cluster's PostgreSQL (settings pending restart take
    /// effect): replicas one at a time, then a switchover to a restarted
    /// replica, and the old primary back as a replica.
    Restart {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        /// Return once the restart is accepted.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for every member to have restarted.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Connect to every service and instance of a cluster: UP or DOWN each.
    Test {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Data size of each volume of a cluster, and what is free where it is.
    Df {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Client and server versions.
    Version,
    /// Clusters, instances, volumes, and what is not ready.
    Status {
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Args, Debug)]
pub struct Backup {
    /// The cluster.
    pub name: String,
    /// pgbackrest (the default).
    #[arg(long)]
    pub backup_type: Option<String>,
    /// pgBackRest options, e.g. "--type=diff" (full, diff or incr).
    #[arg(long, allow_hyphen_values = true)]
    pub backup_opts: Option<String>,
    /// Read the files from a ready replica rather than the primary.
    #[arg(long)]
    pub backup_standby: bool,
    /// Return once the backup is recorded, without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the backup to finish.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum CreateWhat {
    /// Create a ConfigMap from files, as kubectl does: a custom
    /// configuration (postgresql.conf, pg_hba.conf, setup.sql,
    /// pgbackrest.conf) is one.
    Configmap {
        name: String,
        /// A file (its name is the key), KEY=FILE, or a directory (each
        /// file in it); repeat for more.
        #[arg(long, required = true)]
        from_file: Vec<String>,
        /// Replace the content of a ConfigMap that exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// Create a PostgreSQL cluster and wait until its primary is ready.
    Cluster(Box<CreateCluster>),
    /// Back a cluster up on a cron schedule (evaluated in UTC).
    Schedule {
        /// The cluster.
        name: String,
        /// A cron pattern: "0 1 * * *" is 01:00 every day.
        #[arg(long)]
        schedule: String,
        /// pgbackrest (the default).
        #[arg(long)]
        schedule_type: Option<String>,
        /// full (the default), diff or incr.
        #[arg(long)]
        pgbackrest_backup_type: Option<String>,
        /// Its name (<cluster>-pgbackrest-<type> by default).
        #[arg(long)]
        schedule_name: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct CreateCluster {
    /// Cluster name: a DNS-1035 label of at most 40 characters.
    pub name: String,
    /// Replicas to create with it (pgo.yaml's Cluster.ReplicaCount by default).
    #[arg(long)]
    pub replica_count: Option<u32>,
    /// Preferred node for the primary.
    #[arg(long)]
    pub node_name: Option<String>,
    /// A custom configuration to use.
    #[arg(long)]
    pub custom_config: Option<String>,
    /// Size of each volume (Kubernetes quantity, e.g. 1G).
    #[arg(long)]
    pub storage_size: Option<String>,
    /// A storage config of pgo.yaml for the primary's volume (its
    /// PrimaryStorage by default).
    #[arg(long)]
    pub storage_config: Option<String>,
    /// A storage config of pgo.yaml for the replicas' volumes (its
    /// ReplicaStorage by default, else the primary's).
    #[arg(long)]
    pub replica_storage_config: Option<String>,
    /// Use this existing (shared) volume for the primary.
    #[arg(long)]
    pub pvc_name: Option<String>,
    /// Run a metrics exporter beside each instance.
    #[arg(long)]
    pub metrics: bool,
    /// Fail over automatically when the primary stays not ready.
    #[arg(long)]
    pub autofail: bool,
    /// Acknowledge commits only once a replica has them.
    #[arg(long)]
    pub sync_replication: bool,
    /// CPU and memory from this ContainerResources entry of pgo.yaml
    /// (Kubernetes; by default requests equal limits: 500m and 512Mi).
    #[arg(long, short = 'r')]
    pub resources_config: Option<String>,
    /// Archive WAL into a pgBackRest repository and take backups there
    /// (pgo.yaml's Cluster.Backrest by default); --pgbackrest=false opts out.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub pgbackrest: Option<bool>,
    /// Make it from another cluster's pgBackRest backups (that cluster may
    /// be deleted); its users and passwords come along.
    #[arg(long)]
    pub restore_from: Option<String>,
    /// With --restore-from: replay WAL up to this moment
    /// ("2026-11-24 10:00:00+00"), LSN, xid or restore point.
    #[arg(long, requires = "restore_from")]
    pub pitr_target: Option<String>,
    /// time (the default), lsn, xid, name or immediate.
    #[arg(long, requires = "restore_from")]
    pub pitr_type: Option<String>,
    /// With --restore-from: pgBackRest restore options (--set=LABEL).
    #[arg(long, requires = "restore_from", allow_hyphen_values = true)]
    pub backup_opts: Option<String>,
    /// Start from a pg_basebackup copy in this volume (<cluster>-backup),
    /// at --backup-path; as 3.4 did.
    #[arg(long, requires_all = ["backup_path", "secret_from"])]
    pub backup_pvc: Option<String>,
    /// The copy's path in --backup-pvc (<cluster>-backups/<timestamp>, as
    /// 'pgo show backup' lists it).
    #[arg(long, requires = "backup_pvc")]
    pub backup_path: Option<String>,
    /// Take this cluster's users and passwords (those the copy holds).
    #[arg(long)]
    pub secret_from: Option<String>,
    /// Return once the cluster is accepted, without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the primary to be ready.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum ShowWhat {
    /// Show the configuration the server runs with: its pgo.yaml, every
    /// default filled in (YAML unless -o json).
    Config {
        #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
        output: Format,
    },
    /// Show ConfigMaps (all, or one with its files) and the clusters that
    /// use each.
    Configmap {
        name: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show clusters: names, or `all`.
    Cluster {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
        /// Include each database user's password.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Show a cluster's backup schedules.
    Schedule {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show volumes: a cluster's (data, repository, copies), one volume,
    /// or all; a volume of copies lists each copy's path.
    Pvc {
        name: String,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show clusters' backups and what a restore can reach.
    Backup {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeleteWhat {
    /// Delete a ConfigMap no cluster uses.
    Configmap {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
    },
    /// Expire a backup (and the backups that depend on it) from a
    /// cluster's pgBackRest repository.
    Backup {
        name: String,
        /// The backup's pgBackRest label, as 'pgo show backup' lists it.
        #[arg(long)]
        target: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        /// Return once the request is accepted.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the backup to be expired.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Delete a cluster's backup schedules (or one, with --schedule-name).
    Schedule {
        name: String,
        #[arg(long)]
        schedule_name: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
    },
    /// Delete clusters. Their data and volumes are kept unless --delete-data.
    Cluster {
        #[arg(required = true)]
        names: Vec<String>,
        /// Remove the clusters' volumes and data too (an rmdata task per volume).
        #[arg(long)]
        delete_data: bool,
        /// Remove the clusters' backups too (the pgBackRest repository);
        /// kept otherwise, even with --delete-data.
        #[arg(long)]
        delete_backups: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        no_prompt: bool,
        /// Return once the deletion is accepted.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for each cluster to be gone.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}
