//! A cluster's Kubernetes objects, from the strategy templates. The desired
//! state is `pgo-core`'s, the same the local platform realises; only its
//! shape differs: a PVC per volume, a ConfigMap with each instance manager's
//! config, a Deployment per instance (never a StatefulSet), and two Services
//! that select by label.

use crate::Templates;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use pgo_api::cluster::{MemberRole, Resources};
use pgo_api::instance::{
    ExporterConfig, InstanceBackrest, InstanceConfig, InstanceRestore, IsolationCheck, ManagerTls,
    PostgresTls, Upstream,
};
use pgo_api::{Pgcluster, Pgreplica, labels};
use pgo_core::desired::{self, InstanceSpec, ReplicaInput, ServiceSpec, VolumeSpec};
use pgo_core::names;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("unknown strategy {strategy:?} (CLUSTER.STRATEGY): the templates hold strategies {known}")]
    UnknownStrategy { strategy: String, known: String },
    #[error("no template {0} (the operator-conf ConfigMap is missing that key)")]
    MissingTemplate(String),
    #[error("template {file}: {reason}")]
    Template { file: String, reason: String },
    #[error("template {file} renders a {got}, not a {expected}")]
    WrongKind {
        file: String,
        expected: &'static str,
        got: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// What the templates produce.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
    ConfigMap(Box<ConfigMap>),
    Job(Box<Job>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    NetworkPolicy(Box<NetworkPolicy>),
}

impl Rendered {
    pub fn kind(&self) -> &'static str {
        match self {
            Rendered::Deployment(_) => "Deployment",
            Rendered::Service(_) => "Service",
            Rendered::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Rendered::ConfigMap(_) => "ConfigMap",
            Rendered::Job(_) => "Job",
            Rendered::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Rendered::NetworkPolicy(_) => "NetworkPolicy",
        }
    }

    pub fn name(&self) -> String {
        let meta = match self {
            Rendered::Deployment(o) => &o.metadata,
            Rendered::Service(o) => &o.metadata,
            Rendered::PersistentVolumeClaim(o) => &o.metadata,
            Rendered::ConfigMap(o) => &o.metadata,
            Rendered::Job(o) => &o.metadata,
            Rendered::PodDisruptionBudget(o) => &o.metadata,
            Rendered::NetworkPolicy(o) => &o.metadata,
        };
        meta.name.clone().unwrap_or_default()
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        match self {
            Rendered::Deployment(o) => serde_yaml::to_string(o),
            Rendered::Service(o) => serde_yaml::to_string(o),
            Rendered::PersistentVolumeClaim(o) => serde_yaml::to_string(o),
            Rendered::ConfigMap(o) => serde_yaml::to_string(o),
            Rendered::Job(o) => serde_yaml::to_string(o),
            Rendered::PodDisruptionBudget(o) => serde_yaml::to_string(o),
            Rendered::NetworkPolicy(o) => serde_yaml::to_string(o),
        }
    }
}

/// Settings of a rendering that are not in the cluster's spec.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Where the cluster's objects go.
    pub namespace: String,
    /// Where the operator's own pods run (the NetworkPolicy admits them
    /// to the managers' port): the cluster's namespace unless it watches
    /// others too.
    pub operator_namespace: String,
    /// The image that runs `postgres-operator instance`.
    pub image: String,
    pub metrics_image: String,
    /// Overrides the cluster's `spec.strategy`.
    pub strategy: Option<String>,
    /// The PriorityClass of PostgreSQL pods (`Cluster.PriorityClassName`).
    pub priority_class: Option<String>,
    /// The group pods' volumes are given to (the instance image's own);
    /// `None` leaves it to the cluster's policy (`Cluster.DisableFSGroup`,
    /// for OpenShift's restricted one, which assigns it).
    pub fs_group: Option<u32>,
}

/// The instance image's user and group (deploy/docker/Dockerfile).
pub const IMAGE_GROUP: u32 = 999;

/// Every pod's securityContext. No runAsUser: the image's user runs, or
/// the one a policy assigns (OpenShift), which the manager copes with.
pub(crate) fn pod_security(opts: &RenderOptions) -> serde_json::Value {
    // Not a recursive chgrp of PGDATA on every mount (PostgreSQL refuses
    // a group-writable data directory), whoever sets the fsGroup.
    let mut sc = json!({
        "runAsNonRoot": true,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    if let Some(gid) = opts.fs_group {
        sc["fsGroup"] = json!(gid);
    }
    sc
}

/// An instance's pod: the groups its storage configs name (an NFS
/// export's, say), unless the platform assigns the fsGroup itself.
fn instance_pod_security(opts: &RenderOptions, i: &InstanceSpec) -> serde_json::Value {
    let mut sc = pod_security(opts);
    if opts.fs_group.is_some()
        && let Some(gid) = i.fs_group
    {
        sc["fsGroup"] = json!(gid);
    }
    if !i.supplemental_groups.is_empty() {
        sc["supplementalGroups"] = json!(i.supplemental_groups);
    }
    sc
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            namespace: "pgo".into(),
            operator_namespace: "pgo".into(),
            image: format!("pgo/postgres-instance:{}", env!("CARGO_PKG_VERSION")),
            metrics_image: "quay.io/prometheuscommunity/postgres-exporter:v0.15.0".into(),
            strategy: None,
            priority_class: None,
            fs_group: Some(IMAGE_GROUP),
        }
    }
}

/// Where an instance's things are inside its pod.
const MOUNT: &str = "/pgdata";
const SECRETS: &str = "/etc/pgo/secrets";
/// The manager's own Secret: its token and its server certificate. Mounted
/// in the database container only, not beside the database passwords that
/// the metrics container also reads.
const MANAGER_SECRET: &str = "/etc/pgo/manager";
const MANAGER_PORT: u16 = 8008;

pub(crate) fn render<T: DeserializeOwned>(
    templates: &Templates,
    file: &str,
    context: &Value,
    kind: &'static str,
) -> Result<T, RenderError> {
    let source = templates.get(file)?;
    let fail = |reason: String| RenderError::Template {
        file: file.to_string(),
        reason,
    };
    let env = minijinja::Environment::new();
    let text = env
        .render_str(source, minijinja::value::Serde(context))
        .map_err(|e| fail(format!("does not render: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| fail(format!("renders invalid JSON: {e}")))?;
    let got = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object without a kind");
    if got != kind {
        return Err(RenderError::WrongKind {
            file: file.to_string(),
            expected: kind,
            got: got.to_string(),
        });
    }
    serde_json::from_value(value).map_err(|e| fail(format!("is not a valid {kind}: {e}")))
}

/// The instance manager's config inside a pod: PostgreSQL on every address,
/// secrets where the Deployment mounts them, a replica following the
/// primary *service*, so a failover that relabels pods repoints it.
pub(crate) fn instance_config(name: &str, opts: &RenderOptions, i: &InstanceSpec) -> InstanceConfig {
    // The manager's certificate serves its endpoints, PostgreSQL and
    // pgBackRest: it names the instance and the cluster's Services, which a
    // client verifies.
    let manager = ManagerTls {
        cert_file: PathBuf::from(MANAGER_SECRET).join("tls.crt"),
        key_file: PathBuf::from(MANAGER_SECRET).join("tls.key"),
    };
    InstanceConfig {
        name: i.name.clone(),
        cluster: i.cluster.clone(),
        role: i.role,
        volume_dir: PathBuf::from(MOUNT).join("data"),
        listen_address: "0.0.0.0".into(),
        port: i.port,
        http_address: "0.0.0.0".into(),
        http_port: MANAGER_PORT,
        allowed_cidrs: vec!["0.0.0.0/0".into(), "::/0".into()],
        database: i.database.clone(),
        app_user: i.app_user.clone(),
        superuser_secret: PathBuf::from(SECRETS).join("superuser"),
        replication_secret: PathBuf::from(SECRETS).join("replication"),
        app_secret: PathBuf::from(SECRETS).join("app"),
        token_file: PathBuf::from(MANAGER_SECRET).join("token"),
        pg_bin_dir: None,
        primary: i.follows.as_ref().map(|f| Upstream {
            host: format!("{}.{}.svc", names::primary_service(name), opts.namespace),
            port: i.port,
            slot: f.slot.clone(),
        }),
        sync_standbys: i.sync_standbys.clone(),
        synchronous: i.synchronous,
        run_as: None,
        probe: Default::default(),
        isolation: Some(IsolationCheck {
            api_server: "https://kubernetes.default.svc".into(),
            namespace: opts.namespace.clone(),
            token_file: PathBuf::from(SERVICE_ACCOUNT).join("token"),
            ca_file: Some(PathBuf::from(SERVICE_ACCOUNT).join("ca.crt")),
            bound_seconds: ISOLATION_BOUND_SECONDS,
        }),
        postgres_log: None,
        postgres_tls: Some(PostgresTls {
            cert_file: manager.cert_file.clone(),
            key_file: manager.key_file.clone(),
            ca_file: PathBuf::from(MANAGER_SECRET).join("ca.crt"),
        }),
        // The repository is on the cluster's repository host, reached over
        // pgBackRest's TLS protocol.
        backrest: i.backrest.as_ref().map(|b| InstanceBackrest {
            repo_path: PathBuf::from(crate::repo_host::REPO_PATH),
            stanza: b.stanza.clone(),
            archive_timeout_seconds: b.settings.archive_timeout_seconds,
            retention_full: b.settings.retention_full,
            retention_diff: b.settings.retention_diff,
            remote: Some(crate::repo_host::instance_remote(
                &i.cluster,
                &opts.namespace,
                crate::repo_host::TLS_DIR,
                &manager,
            )),
        }),
        // Through the repository host of the cluster it is restored from.
        restore: i.restore.as_ref().map(|r| InstanceRestore {
            id: r.id.clone(),
            repo_path: PathBuf::from(crate::repo_host::REPO_PATH),
            stanza: r.stanza.clone(),
            target: r.target.clone(),
            options: r.options.clone(),
            remote: Some(crate::repo_host::instance_remote(
                &r.cluster,
                &opts.namespace,
                crate::repo_host::client_tls_dir(&i.cluster, &r.cluster),
                &manager,
            )),
        }),
        seed: None,
        custom: i.custom_files.clone(),
        reloads: i.reloads,
        restarts: i.restarts,
        // The sidecar runs the exporter; the manager keeps its role.
        exporter: i.exporter_secret.as_ref().map(|_| ExporterConfig {
            listen_address: "0.0.0.0".into(),
            port: METRICS_PORT as u16,
            secret: PathBuf::from(SECRETS).join("exporter"),
            supervise: false,
        }),
        tls: Some(manager),
    }
}

/// Where the kubelet mounts the pod's service-account token.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long a primary serves without the store confirming it is the
/// primary (README: "Self-fencing").
pub const ISOLATION_BOUND_SECONDS: u64 = 30;

/// Annotation on an instance's Deployment: the role it was made in. A
/// promoted replica keeps its replica Deployment: rendering it from the
/// primary template would change the pod template and restart the new
/// primary. Its role lives in a pod label the operator sets instead.
pub const CREATED_AS: &str = "pgo.dev/created-as";

fn strategy_of(templates: &Templates, opts: &RenderOptions, own: &str) -> Result<String, RenderError> {
    let strategy = opts.strategy.clone().unwrap_or_else(|| own.to_string());
    let known = templates.strategies();
    if !known.contains(&strategy) {
        return Err(RenderError::UnknownStrategy {
            strategy,
            known: known.join(", "),
        });
    }
    Ok(strategy)
}

/// The ownerReference to the Pgcluster: what goes with the cluster.
pub fn cluster_owner(cluster: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/{}", pgo_api::GROUP, pgo_api::VERSION),
        kind: "Pgcluster".into(),
        name: cluster.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The same, for a template.
pub(crate) fn owner(cluster: &str, uid: Option<&str>) -> Value {
    serde_json::to_value(cluster_owner(cluster, uid.unwrap_or_default())).unwrap_or(Value::Null)
}

fn base_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ])
}

/// A volume's PVC. It has no owner: it stays when the cluster goes (the
/// spec keeps data).
pub fn render_volume(
    templates: &Templates,
    opts: &RenderOptions,
    v: &VolumeSpec,
) -> Result<PersistentVolumeClaim, RenderError> {
    let storage = &v.storage;
    let ctx = json!({
        "cluster": { "name": v.cluster, "namespace": opts.namespace },
        "pvc": {
            "name": v.name,
            "labels": base_labels(&v.cluster),
            "size": storage.size,
            "storage_class": storage.storage_class,
            "access_mode": storage.access_mode.clone().unwrap_or_else(|| "ReadWriteOnce".into()),
        },
    });
    render(templates, "pvc.json", &ctx, "PersistentVolumeClaim")
}

/// An instance: the ConfigMap with its manager's config, and its
/// Deployment from the template of the role it was `created_as`.
pub fn render_instance(
    templates: &Templates,
    opts: &RenderOptions,
    i: &InstanceSpec,
    created_as: MemberRole,
) -> Result<(ConfigMap, Deployment), RenderError> {
    let strategy = strategy_of(templates, opts, &i.strategy)?;
    let name = &i.cluster;
    // A primary is drawn to its node; a replica keeps away from the primary's.
    let node_name = match created_as {
        MemberRole::Primary => i.node_name.clone(),
        MemberRole::Replica => i.avoid_node.clone(),
    };
    let mut labels = i.labels.clone();
    labels.insert(INSTANCE_LABEL.into(), i.name.clone());
    // Only pgo's own labels that an instance keeps whatever its role and
    // whatever the user changes: a changed pod template restarts the pod.
    // The user's labels are put on the live pods instead.
    let mut pod_labels: BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| POD_TEMPLATE_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Restored from another cluster: that cluster's NetworkPolicy lets
    // this pod reach its repository host.
    let source = i
        .restore
        .as_ref()
        .map(|r| &r.cluster)
        .filter(|c| **c != i.cluster);
    if let Some(source) = source {
        pod_labels.insert(crate::repo_host::RESTORES_FROM_LABEL.into(), source.clone());
    }
    let config = serde_json::to_string_pretty(&instance_config(name, opts, i))
        .map_err(|e| RenderError::Invalid(e.to_string()))?;
    let ctx = json!({
        "cluster": {
            "name": name,
            "namespace": opts.namespace,
            "port": i.port,
            "node_name": node_name,
            "metrics": i.metrics,
            "owner": owner(name, i.owner_uid.as_deref()),
        },
        "instance": {
            "name": i.name,
            "labels": labels,
            "pod_labels": pod_labels,
            "annotations": { CREATED_AS: created_as.to_string() },
            "pvc": i.volume,
            "config_map": config_map_name(&i.name),
            "manager_secret": manager_secret(&i.name),
            "config": config,
            "backrest": i.backrest.is_some(),
            "backrest_secret": crate::repo_host::name(&i.cluster),
            "backrest_port": crate::repo_host::BACKREST_PORT,
            "pods_service": crate::repo_host::pods_service(&i.cluster),
            // Another cluster's repository host, restored from: its CA and
            // client certificate, mounted apart.
            "restore_secret": source.map(|c| crate::repo_host::name(c)),
        },
        "secrets": {
            "superuser": i.superuser_secret,
            "replication": i.replication_secret,
            "app": i.app_secret,
            "exporter": i.exporter_secret,
        },
        "exporter_queries": pgo_api::exporter::QUERIES,
        "image": opts.image,
        "metrics_image": opts.metrics_image,
        "priority_class": opts.priority_class,
        "pod_security": instance_pod_security(opts, i),
        "resources": i.resources.clone().unwrap_or_else(Resources::guaranteed_default),
        // The exporter's own, requests equal to limits like the database's,
        // so the pod stays Guaranteed.
        "metrics_resources": {
            "requests": { "cpu": "100m", "memory": "64Mi" },
            "limits": { "cpu": "100m", "memory": "64Mi" },
        },
    });
    let config_file = format!("cluster-instance-config-{strategy}.json");
    let config_map = render(templates, &config_file, &ctx, "ConfigMap")?;
    let file = match created_as {
        MemberRole::Primary => format!("cluster-deployment-{strategy}.json"),
        MemberRole::Replica => format!("cluster-replica-deployment-{strategy}.json"),
    };
    let mut deployment: Deployment = render(templates, &file, &ctx, "Deployment")?;
    if i.restarts > 0
        && let Some(spec) = deployment.spec.as_mut()
    {
        // As `kubectl rollout restart` does: a new template, so each pod is
        // outdated and the rolling update restarts it.
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(RESTARTS.to_string(), i.restarts.to_string());
    }
    stamp_pod_template(&mut deployment)?;
    Ok((config_map, deployment))
}

/// pgo's labels in a pod template: none that changes with the role.
const POD_TEMPLATE_LABELS: [&str; 3] = [labels::CLUSTER, labels::MANAGED_BY, INSTANCE_LABEL];
/// pgo's labels that change with the role: the operator sets the role on
/// live pods itself, and the custom config is the primary Deployment's.
const ROLE_LABELS: [&str; 2] = [labels::ROLE, labels::CUSTOM_CONFIG];

/// The user's labels of an instance (every one that is not pgo's), which
/// the operator puts on its live pods rather than in their template, so
/// changing them restarts nothing.
pub fn carried_pod_labels(i: &InstanceSpec) -> BTreeMap<String, String> {
    i.labels
        .iter()
        .filter(|(k, _)| !POD_TEMPLATE_LABELS.contains(&k.as_str()) && !ROLE_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The annotation on a pod template (and so on its pods) that names it: a
/// pod whose stamp is not the one the operator renders now is outdated,
/// and a rolling update restarts it.
pub const POD_TEMPLATE: &str = "pgo.dev/pod-template";
/// On a pod template: the cluster's `pgo restart` count.
pub const RESTARTS: &str = "pgo.dev/restarts";

/// Stamps the pod template with a digest of itself. FNV-1a: the same bytes
/// give the same stamp in every build, so a new operator with the same
/// template restarts nothing.
fn stamp_pod_template(d: &mut Deployment) -> Result<(), RenderError> {
    let Some(template) = d.spec.as_mut().map(|s| &mut s.template) else {
        return Ok(());
    };
    let bytes = serde_json::to_vec(template).map_err(|e| RenderError::Invalid(e.to_string()))?;
    let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE.to_string(), format!("{digest:016x}"));
    Ok(())
}

/// The names an instance's certificate holds: its own, and the qualified
/// names of its cluster's Services, since any instance may come to serve
/// behind them. Never a Service's bare name: the primary Service is named
/// like the first primary, and the operator knows a manager by the bare
/// instance name its certificate holds, so no other instance may hold it.
pub fn certificate_names(instance: &str, cluster: &str, namespace: &str) -> Vec<String> {
    let mut names = vec![instance.to_string()];
    // Its pod's own name, by which a backup from this replica reaches it.
    let own = crate::repo_host::pod_host(instance, cluster, namespace);
    names.push(format!("{own}.cluster.local"));
    names.push(own);
    for service in [names::primary_service(cluster), names::replica_service(cluster)] {
        names.push(format!("{service}.{namespace}.svc.cluster.local"));
        names.push(format!("{service}.{namespace}.svc"));
        names.push(format!("{service}.{namespace}"));
    }
    names
}

/// The stamp a Deployment's pod template or a pod carries.
pub fn pod_template_stamp(meta: Option<&ObjectMeta>) -> Option<&str> {
    meta?.annotations.as_ref()?.get(POD_TEMPLATE).map(String::as_str)
}

/// A Service. The primary Service selects the primary instance by its own
/// label, which every pod of it carries from its template: a pod made
/// again (a drain, a restart) is routed to as soon as it is ready, with no
/// operator in the path; a failover points the Service at the new primary.
/// The replica Service selects pods by the `role` the operator labels.
pub fn render_service(
    templates: &Templates,
    opts: &RenderOptions,
    s: &ServiceSpec,
) -> Result<Service, RenderError> {
    let strategy = strategy_of(templates, opts, &s.strategy)?;
    let selector = match (s.role, s.targets.first()) {
        (MemberRole::Primary, Some(primary)) => primary_selector(&s.cluster, primary),
        (role, _) => BTreeMap::from([
            (labels::CLUSTER.to_string(), s.cluster.clone()),
            (labels::ROLE.to_string(), role.to_string()),
        ]),
    };
    let ctx = json!({
        "cluster": {
            "name": s.cluster,
            "namespace": opts.namespace,
            "port": s.port,
            "owner": owner(&s.cluster, s.owner_uid.as_deref()),
            "backrest": s.backrest,
            "backrest_port": crate::repo_host::BACKREST_PORT,
        },
        "service": { "name": s.name, "labels": base_labels(&s.cluster), "selector": selector },
    });
    render(
        templates,
        &format!("cluster-service-{strategy}.json"),
        &ctx,
        "Service",
    )
}

/// What the primary Service of `cluster` selects when `primary` is its
/// primary: that instance's own label, which every pod of it carries.
pub fn primary_selector(cluster: &str, primary: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (INSTANCE_LABEL.to_string(), primary.to_string()),
    ])
}

/// The label that names an instance on its pods and Deployment.
pub const INSTANCE_LABEL: &str = "pgo-instance";

/// The key of an instance's ConfigMap that holds its manager's config.
pub const INSTANCE_CONFIG_KEY: &str = "instance.json";

/// The manager config an instance's ConfigMap holds.
pub fn config_in(map: &ConfigMap) -> Result<InstanceConfig, String> {
    let name = map.metadata.name.as_deref().unwrap_or_default();
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get(INSTANCE_CONFIG_KEY))
        .ok_or_else(|| format!("ConfigMap {name} holds no {INSTANCE_CONFIG_KEY}"))?;
    serde_json::from_str(text).map_err(|e| format!("ConfigMap {name}: {e}"))
}

/// The ConfigMap that holds instance `name`'s config.
pub fn config_map_name(instance: &str) -> String {
    format!("{instance}-instance")
}

/// The Secret of instance `name`'s manager: the token its control
/// endpoints require and its server certificate.
pub fn manager_secret(instance: &str) -> String {
    format!("{instance}-manager")
}

/// Every object the operator creates for `cluster` with `replicas`.
pub fn render_cluster(
    cluster: &Pgcluster,
    replicas: &[Pgreplica],
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<Vec<Rendered>, RenderError> {
    let name = cluster
        .metadata
        .name
        .clone()
        .ok_or_else(|| RenderError::Invalid("the Pgcluster has no metadata.name".into()))?;
    let spec = &cluster.spec;
    strategy_of(templates, opts, &spec.strategy)?;
    let primary = cluster
        .status
        .as_ref()
        .and_then(|s| s.primary.clone())
        .unwrap_or_else(|| names::initial_primary(&name));
    let inputs: Vec<ReplicaInput> = replicas
        .iter()
        .filter(|r| r.spec.cluster_name == name)
        .map(|r| ReplicaInput {
            name: r.metadata.name.clone().unwrap_or_default(),
            storage: r.spec.storage.clone(),
            node_name: r.spec.node_name.clone(),
        })
        .collect();
    let want = desired::cluster(&name, spec, &primary, &inputs).owned_by(cluster.metadata.uid.as_deref());
    let mut out = Vec::new();
    for v in &want.volumes {
        out.push(Rendered::PersistentVolumeClaim(Box::new(render_volume(
            templates, opts, v,
        )?)));
    }
    for i in &want.instances {
        let (config_map, deployment) = render_instance(templates, opts, i, i.role)?;
        out.push(Rendered::ConfigMap(Box::new(config_map)));
        out.push(Rendered::Deployment(Box::new(deployment)));
    }
    for mut s in desired::services(&name, spec, &primary, &[]) {
        s.owner_uid = cluster.metadata.uid.clone();
        out.push(Rendered::Service(Box::new(render_service(templates, opts, &s)?)));
    }
    out.push(Rendered::PodDisruptionBudget(Box::new(render_disruption_budget(
        opts,
        &name,
        cluster.metadata.uid.as_deref(),
    ))));
    out.push(Rendered::NetworkPolicy(Box::new(render_network_policy(
        opts,
        &name,
        cluster.metadata.uid.as_deref(),
        spec.port,
        spec.metrics,
        spec.backrest.is_some(),
    ))));
    if let Some(primary) = want.instances.iter().find(|i| i.backrest.is_some()) {
        let o = crate::repo_host::render(templates, opts, primary)?;
        out.push(Rendered::ConfigMap(Box::new(o.config_map)));
        out.push(Rendered::Deployment(Box::new(o.deployment)));
        out.push(Rendered::Service(Box::new(o.service)));
        out.push(Rendered::Service(Box::new(o.pods_service)));
    }
    Ok(out)
}

/// A selector of the labels `pairs`.
fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// An object there is one of per cluster, named after it and owned by it.
fn cluster_meta(opts: &RenderOptions, cluster: &str, owner_uid: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(cluster.to_string()),
        namespace: Some(opts.namespace.clone()),
        labels: Some(base_labels(cluster)),
        owner_references: Some(vec![cluster_owner(cluster, owner_uid.unwrap_or_default())]),
        ..Default::default()
    }
}

/// The cluster's PodDisruptionBudget: a voluntary disruption (a node
/// drained, a node pool upgraded) takes at most one of its instances at a
/// time, so a drain never takes a primary and the replica it would fail
/// over to together. `maxUnavailable`, not `minAvailable`: a cluster of
/// one instance can still be drained (its pod comes back on its volume),
/// rather than blocking the drain for good.
pub fn render_disruption_budget(
    opts: &RenderOptions,
    cluster: &str,
    owner_uid: Option<&str>,
) -> PodDisruptionBudget {
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    PodDisruptionBudget {
        metadata: cluster_meta(opts, cluster, owner_uid),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(match_labels(&[(labels::CLUSTER, cluster)])),
            ..Default::default()
        }),
        status: None,
    }
}

/// The metrics exporter's port.
pub const METRICS_PORT: i32 = 9187;

/// The cluster's NetworkPolicy: what reaches its pods, port by port.
/// PostgreSQL from anywhere (clients and replicas; TLS and SCRAM guard
/// it); the manager's endpoints only from the operator's pods; the
/// exporter's from anywhere, when there is one. Nothing else: the kubelet's
/// probes come from the node, which a NetworkPolicy always lets through.
pub fn render_network_policy(
    opts: &RenderOptions,
    cluster: &str,
    owner_uid: Option<&str>,
    port: u16,
    metrics: bool,
    backrest: bool,
) -> NetworkPolicy {
    use k8s_openapi::api::networking::v1::{
        NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let tcp = |port: i32| {
        Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".into()),
            ..Default::default()
        }])
    };
    let mut ingress = vec![
        NetworkPolicyIngressRule {
            ports: tcp(i32::from(port)),
            from: None,
        },
        NetworkPolicyIngressRule {
            ports: tcp(i32::from(crate::platform::MANAGER_PORT)),
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(match_labels(&[(
                    "kubernetes.io/metadata.name",
                    &opts.operator_namespace,
                )])),
                pod_selector: Some(match_labels(&[("name", OPERATOR_POD_LABEL)])),
                ..Default::default()
            }]),
        },
    ];
    if metrics {
        ingress.push(NetworkPolicyIngressRule {
            ports: tcp(METRICS_PORT),
            from: None,
        });
    }
    if backrest {
        // pgBackRest between the instances and the repository host, and
        // the Jobs' calls to it: all pods of the cluster (its Jobs'
        // included: a restore into a new volume is one).
        let ports = [crate::repo_host::BACKREST_PORT, crate::repo_host::CONTROL_PORT]
            .into_iter()
            .flat_map(|p| tcp(i32::from(p)).unwrap_or_default())
            .collect();
        // Also the pods of clusters restored from this one's repository.
        let peer = |key: &str| NetworkPolicyPeer {
            pod_selector: Some(match_labels(&[(key, cluster)])),
            ..Default::default()
        };
        ingress.push(NetworkPolicyIngressRule {
            ports: Some(ports),
            from: Some(vec![
                peer(labels::CLUSTER),
                peer(crate::repo_host::RESTORES_FROM_LABEL),
            ]),
        });
    }
    NetworkPolicy {
        metadata: cluster_meta(opts, cluster, owner_uid),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(&[(labels::CLUSTER, cluster)])),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            egress: None,
        }),
    }
}

/// The label of the operator's pods (deploy/operator.yaml).
pub const OPERATOR_POD_LABEL: &str = "postgres-operator";

/// The rmdata Job of PVC `pvc`.
pub fn rmdata_job_name(pvc: &str) -> String {
    format!("{pvc}-rmdata")
}

/// The Job that removes `path` from a volume (the rmdata workflow).
pub fn render_rmdata(
    cluster: &str,
    pvc: &str,
    path: &str,
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let ctx = json!({
        "cluster": { "name": cluster, "namespace": opts.namespace },
        "job": {
            "name": rmdata_job_name(pvc),
            "labels": { labels::CLUSTER: cluster, labels::MANAGED_BY: labels::MANAGER },
            "pvc": pvc,
            "path": path,
        },
        "image": opts.image,
        "pod_security": pod_security(opts),
    });
    Ok(Rendered::Job(Box::new(render(
        templates,
        "rmdata-job.json",
        &ctx,
        "Job",
    )?)))
}

/// A pg_basebackup copy Job: PostgreSQL at `host` (a Service of the
/// cluster, which its certificate names) copied into `path` of the PVC.
pub struct CopyJob<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    pub host: String,
    pub port: u16,
    pub pvc: &'a str,
    pub path: &'a str,
    /// The instance whose manager secret holds the CA the copy verifies
    /// PostgreSQL's certificate with (only `ca.crt` is mounted).
    pub instance: &'a str,
}

/// The label that names the Job a pod runs, so its termination message
/// can be found.
pub const JOB_LABEL: &str = "pgo.dev/job";

/// What a Job template of a backup or restore is rendered with: the
/// cluster, the Job's name and labels (its pods are found by
/// [`JOB_LABEL`]), the image and the pods' security context; `job` holds
/// what the template's own work needs.
pub(crate) fn job_context(opts: &RenderOptions, cluster: &str, name: &str, mut job: Value) -> Value {
    job["name"] = json!(name);
    job["labels"] = json!({ labels::CLUSTER: cluster, labels::MANAGED_BY: labels::MANAGER, JOB_LABEL: name });
    json!({
        "cluster": { "name": cluster, "namespace": opts.namespace },
        "job": job,
        "image": opts.image,
        "pod_security": pod_security(opts),
    })
}

/// The Job that copies a cluster into its backup volume (`backup-job.json`).
pub fn render_backup(
    job: &CopyJob<'_>,
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let mut ctx = job_context(
        opts,
        job.cluster,
        job.name,
        json!({ "pvc": job.pvc, "path": job.path, "host": job.host, "port": job.port }),
    );
    ctx["secrets"] = json!({
        "replication": names::secret(job.cluster, names::REPLICATION_USER),
        "ca": manager_secret(job.instance),
    });
    Ok(Rendered::Job(Box::new(render(
        templates,
        "backup-job.json",
        &ctx,
        "Job",
    )?)))
}
