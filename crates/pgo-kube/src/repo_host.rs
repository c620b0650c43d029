//! A cluster's pgBackRest repository host on Kubernetes, rendered: a
//! Deployment of one pod that owns the repository's PVC, a ConfigMap with
//! its config, and a Service the instances and backup Jobs reach it by.
//! Pods archive into it and it reaches their data directories for backups,
//! both over pgBackRest's TLS protocol, so no volume is shared between
//! pods (3.4 needed ReadWriteMany storage for that).

use crate::RenderError;
use crate::render::{self, RenderOptions};
use crate::templates::Templates;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use pgo_api::instance::{BackrestRemote, ManagerTls};
use pgo_api::labels;
use pgo_api::repo_host::RepoHostConfig;
use pgo_core::desired::InstanceSpec;
use pgo_core::names;
use serde_json::json;
use std::path::{Path, PathBuf};

/// pgBackRest's TLS servers: the repository host's and every instance's.
pub const BACKREST_PORT: u16 = 8432;
/// The repository host's control endpoint, which backup Jobs call.
pub const CONTROL_PORT: u16 = 8009;
/// The repository inside the repository host's pod: `data` of the PVC
/// mounted at `/backrestrepo`, as an instance's data is `data` of its own,
/// so the rmdata Job removes it the same way.
pub const REPO_PATH: &str = "/backrestrepo/data";
/// Where the cluster's pgBackRest Secret is mounted (the repository
/// host's whole; an instance's CA and client certificate only).
pub const TLS_DIR: &str = "/etc/pgo/backrest";
/// Where an instance restored from another cluster's repository mounts
/// that cluster's CA and client certificate.
pub const SOURCE_TLS_DIR: &str = "/etc/pgo/backrest-source";
const CONFIG_DIR: &str = "/etc/pgo/repo-host";
/// The repository host's pgBackRest config, locks and logs (its `/tmp`).
const WORK_DIR: &str = "/tmp/pgbackrest";
const CONFIG_FILE: &str = "repo-host.json";
/// The label of the pods of a cluster restored from another one's
/// repository: its value names that cluster, whose NetworkPolicy admits
/// them to its repository host.
pub const RESTORES_FROM_LABEL: &str = "pgo-restores-from";
/// The label that marks the repository host's pod.
pub const REPO_HOST_LABEL: &str = "pgo-backrest-repo";

/// The Deployment, Service, ConfigMap and Secret of cluster `cluster`'s
/// repository host.
pub fn name(cluster: &str) -> String {
    format!("{cluster}-backrest-repo")
}

/// The CN of the client certificate that both ends authorize.
pub fn client_cn(cluster: &str) -> String {
    format!("pgbackrest@{cluster}")
}

/// The headless Service that gives each instance's pod a name of its own,
/// through which a backup from a replica reaches that one replica.
pub fn pods_service(cluster: &str) -> String {
    format!("{cluster}-pods")
}

/// Instance `instance`'s own address (its pod's `hostname` under
/// [`pods_service`]), which its certificate names.
pub fn pod_host(instance: &str, cluster: &str, namespace: &str) -> String {
    format!("{instance}.{}.{namespace}.svc", pods_service(cluster))
}

/// The repository host's address inside the cluster.
pub fn host(cluster: &str, namespace: &str) -> String {
    format!("{}.{namespace}.svc", name(cluster))
}

/// The names the repository host's certificate holds.
pub fn certificate_names(cluster: &str, namespace: &str) -> Vec<String> {
    let service = name(cluster);
    vec![
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}"),
        service,
    ]
}

fn tls(file: &str) -> PathBuf {
    Path::new(TLS_DIR).join(file)
}

/// The certificates an instance of `instance_cluster` presents to the
/// repository host of `cluster`: its own cluster's, or the source's
/// (mounted apart) when it is restored from another cluster.
pub fn client_tls_dir(instance_cluster: &str, cluster: &str) -> &'static str {
    if instance_cluster == cluster {
        TLS_DIR
    } else {
        SOURCE_TLS_DIR
    }
}

/// What an instance needs to reach the repository host of `cluster` with
/// the client certificate in `tls_dir`, and to serve its own data
/// directory to its own cluster's host with its manager's certificate.
pub fn instance_remote(
    cluster: &str,
    namespace: &str,
    tls_dir: &str,
    manager: &ManagerTls,
) -> BackrestRemote {
    let client = |file: &str| Path::new(tls_dir).join(file);
    BackrestRemote {
        repo_host: host(cluster, namespace),
        repo_port: BACKREST_PORT,
        repo_config: Path::new(WORK_DIR).join("pgbackrest.conf"),
        ca_file: client("ca.crt"),
        client_cert_file: client("client.crt"),
        client_key_file: client("client.key"),
        client_cn: client_cn(cluster),
        server_port: BACKREST_PORT,
        server_cert_file: manager.cert_file.clone(),
        server_key_file: manager.key_file.clone(),
    }
}

/// The repository host's own config: `primary`, an instance of the cluster
/// (any: they share the port, the paths and the settings), says where the
/// instances keep their data and pgBackRest's config.
pub fn config(opts: &RenderOptions, primary: &InstanceSpec) -> Result<RepoHostConfig, RenderError> {
    let b = primary.backrest.as_ref().ok_or_else(|| {
        RenderError::Invalid(format!(
            "cluster {} does not archive with pgBackRest",
            primary.cluster
        ))
    })?;
    let instance = render::instance_config(&primary.cluster, opts, primary);
    let cluster = &primary.cluster;
    let service = |s: String| format!("{s}.{}.svc", opts.namespace);
    Ok(RepoHostConfig {
        cluster: cluster.clone(),
        stanza: b.stanza.clone(),
        repo_path: PathBuf::from(REPO_PATH),
        work_dir: PathBuf::from(WORK_DIR),
        server_port: BACKREST_PORT,
        http_port: CONTROL_PORT,
        cert_file: tls("tls.crt"),
        key_file: tls("tls.key"),
        ca_file: tls("ca.crt"),
        client_cert_file: tls("client.crt"),
        client_key_file: tls("client.key"),
        client_cn: client_cn(cluster),
        token_file: tls("token"),
        primary_host: service(names::primary_service(cluster)),
        pg_host_port: BACKREST_PORT,
        pg_config: instance.backrest_conf(),
        pg_path: instance.pgdata(),
        pg_port: instance.port,
        pg_user: names::SUPERUSER.to_string(),
        retention_full: b.settings.retention_full,
        retention_diff: b.settings.retention_diff,
    })
}

/// What a cluster's repository host is made of.
pub struct RepoHostObjects {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub service: Service,
    /// The headless Service that names each instance's pod.
    pub pods_service: Service,
}

/// The repository host's ConfigMap, Deployment and Services, from the
/// `backrest-*.json` templates.
pub fn render(
    templates: &Templates,
    opts: &RenderOptions,
    primary: &InstanceSpec,
) -> Result<RepoHostObjects, RenderError> {
    let config = serde_json::to_string_pretty(&config(opts, primary)?)
        .map_err(|e| RenderError::Invalid(e.to_string()))?;
    let cluster = &primary.cluster;
    let repo = name(cluster);
    let labels = json!({
        labels::CLUSTER: cluster,
        labels::MANAGED_BY: labels::MANAGER,
        REPO_HOST_LABEL: repo,
    });
    let ctx = json!({
        "cluster": {
            "name": cluster,
            "namespace": opts.namespace,
            "owner": render::owner(cluster, primary.owner_uid.as_deref()),
        },
        "repo": {
            "name": repo,
            "labels": labels,
            "selector": { labels::CLUSTER: cluster, REPO_HOST_LABEL: repo },
            "pvc": names::backrest_repo_volume(cluster),
            "secret": repo,
            "config_map": repo,
            "config_file": CONFIG_FILE,
            "config": config,
            "config_path": config_path(),
            "backrest_port": BACKREST_PORT,
            "control_port": CONTROL_PORT,
            "pods_service": pods_service(cluster),
            "pods_labels": { labels::CLUSTER: cluster, labels::MANAGED_BY: labels::MANAGER },
        },
        "image": opts.image,
        "pod_security": render::pod_security(opts),
    });
    Ok(RepoHostObjects {
        config_map: render::render(templates, "backrest-repo-config.json", &ctx, "ConfigMap")?,
        deployment: render::render(templates, "backrest-repo-deployment.json", &ctx, "Deployment")?,
        service: render::render(templates, "backrest-repo-service.json", &ctx, "Service")?,
        pods_service: render::render(templates, "backrest-pods-service.json", &ctx, "Service")?,
    })
}

/// The config file's path inside the repository host's pod.
pub fn config_path() -> PathBuf {
    Path::new(CONFIG_DIR).join(CONFIG_FILE)
}

/// A backup Job's work: a pgBackRest command the repository host runs.
pub struct BackrestJob<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    /// A backup from this replica (its instance name).
    pub standby: Option<&'a str>,
    pub args: &'a [String],
}

/// The Job that asks cluster's repository host to run a pgBackRest
/// command (`backrest-job.json`).
pub fn render_job(
    job: &BackrestJob<'_>,
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<k8s_openapi::api::batch::v1::Job, RenderError> {
    let ctx = render::job_context(
        opts,
        job.cluster,
        job.name,
        json!({
            "url": format!("https://{}:{CONTROL_PORT}", host(job.cluster, &opts.namespace)),
            "secret": name(job.cluster),
            "standby": job.standby.map(|i| pod_host(i, job.cluster, &opts.namespace)),
            "args": job.args,
        }),
    );
    render::render(templates, "backrest-job.json", &ctx, "Job")
}
