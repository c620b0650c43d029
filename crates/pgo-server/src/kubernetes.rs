//! `run --platform kubernetes`: the store is the Kubernetes API (the CRDs),
//! the platform makes Deployments, Services and PVCs from the templates in
//! the mounted operator-conf ConfigMap. Everything is checked at start, so
//! a broken ConfigMap stops the operator with its reason instead of
//! failing clusters one by one.

use crate::ServerError;
use crate::args::RunArgs;
use crate::home::Home;
use crate::run::{Backend, Scope, read_config};
use pgo_api::rest::CreateClusterRequest;
use pgo_api::{Pgcluster, PgclusterSpec, Pgreplica, PgreplicaSpec};
use pgo_kube::leader::{Candidate, Election};
use pgo_kube::platform::ca::InstanceCa;
use pgo_kube::store::KubeStore;
use pgo_kube::{HttpManagers, KubePlatform, RenderOptions, Templates, render_cluster, render_rmdata};
use std::sync::Arc;

const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn start_err(s: String) -> ServerError {
    ServerError::Start(s)
}

/// The pod's own namespace, when it runs in one.
fn own_namespace() -> Option<String> {
    std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

/// The namespaces watched, the first the default one: those asked for,
/// else the pod's own, else `pgo`. Each must be a namespace's name, once.
fn namespaces(args: &RunArgs) -> Result<Vec<String>, ServerError> {
    let asked: Vec<String> = args.namespace.iter().map(|n| n.trim().to_string()).collect();
    if asked.is_empty() {
        return Ok(vec![own_namespace().unwrap_or_else(|| "pgo".into())]);
    }
    let mut out: Vec<String> = Vec::new();
    for ns in asked {
        if !pgo_core::validate::dns1123_label(&ns) {
            return Err(start_err(format!(
                "--namespace: {ns:?} is not a namespace name (at most 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
            )));
        }
        if out.contains(&ns) {
            return Err(start_err(format!("--namespace: {ns} is named twice")));
        }
        out.push(ns);
    }
    Ok(out)
}

/// Renders a cluster with every option on through each strategy, so a
/// template that does not render is found now, named.
fn check_templates(templates: &Templates, opts: &RenderOptions) -> Result<(), ServerError> {
    for strategy in templates.strategies() {
        let request = CreateClusterRequest {
            name: "check".into(),
            replica_count: Some(1),
            node_name: Some("node".into()),
            custom_config: Some("custom".into()),
            metrics: true,
            ..Default::default()
        };
        let spec = pgo_core::validate::create_request(
            &request,
            &Default::default(),
            &templates.strategies(),
            pgo_core::validate::BackupSupport {
                backrest: true,
                ..pgo_core::validate::BackupSupport::NONE
            },
        )
        .map_err(|e| start_err(e.to_string()))?;
        let mut cluster = Pgcluster::new(
            "check",
            PgclusterSpec {
                strategy: strategy.clone(),
                ..spec
            },
        );
        cluster.metadata.uid = Some("check".into());
        let replica = Pgreplica::new(
            "check-r1",
            PgreplicaSpec {
                cluster_name: "check".into(),
                ..Default::default()
            },
        );
        render_cluster(&cluster, &[replica], templates, opts)
            .map_err(|e| start_err(format!("operator-conf: strategy {strategy}: {e}")))?;
    }
    render_rmdata("check", "check", "data", templates, opts)
        .map_err(|e| start_err(format!("operator-conf: {e}")))?;
    Ok(())
}

/// The Lease the operators of a namespace campaign for.
const LEASE: &str = "postgres-operator";

pub async fn backend(args: &RunArgs, home: &Home) -> Result<Backend, ServerError> {
    let conf = &args.operator_conf;
    let templates = if conf.exists() {
        Templates::from_operator_conf(conf).map_err(|e| start_err(format!("operator-conf: {e}")))?
    } else {
        return Err(start_err(format!(
            "the operator-conf directory {} does not exist: mount the operator-conf ConfigMap there (deploy/operator.yaml does) or name it with --operator-conf",
            conf.display()
        )));
    };
    let config = match read_config(&conf.join("pgo.yaml"))? {
        Some(c) => c,
        None => read_config(&home.config())?.unwrap_or_default(),
    };
    let watched = namespaces(args)?;
    // The lease, the apiserver's Secret: where the operator's pod runs.
    let own = own_namespace().unwrap_or_else(|| watched[0].clone());
    let mut opts = RenderOptions {
        namespace: watched[0].clone(),
        operator_namespace: own.clone(),
        priority_class: config.cluster.priority_class_name.clone(),
        fs_group: (!config.cluster.disable_fs_group).then_some(pgo_kube::render::IMAGE_GROUP),
        ..RenderOptions::default()
    };
    if let Some(image) = &args.instance_image {
        opts.image = image.clone();
    }
    check_templates(&templates, &opts)?;
    let client = pgo_kube::client().await.map_err(|e| {
        start_err(format!(
            "cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {e}"
        ))
    })?;
    // Each namespace apart: its own store, platform, caches and CA, as if
    // an operator ran in each.
    let mut scopes = Vec::new();
    for ns in &watched {
        let opts = RenderOptions {
            namespace: ns.clone(),
            ..opts.clone()
        };
        let ca = InstanceCa::new(client.clone(), ns);
        let managers = HttpManagers::new(pgo_kube::platform::MANAGER_PORT, ca.clone()).map_err(start_err)?;
        scopes.push(Scope {
            namespace: ns.clone(),
            store: Arc::new(KubeStore::new(client.clone(), ns)),
            platform: Arc::new(
                KubePlatform::new(client.clone(), templates.clone(), opts, Arc::new(managers), ca)
                    .with_caches(),
            ),
        });
    }
    let describe = format!(
        "kubernetes platform, namespace{} {}, templates from {}, instance image {}",
        if watched.len() > 1 { "s" } else { "" },
        watched.join(", "),
        conf.display(),
        opts.image
    );
    // The pod's name (deploy/operator.yaml passes it), else the host's.
    let pod = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
    let identity = pod.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| format!("postgres-operator-{}", std::process::id()))
    });
    let election = Candidate::new(client.clone(), &own, Election::new(LEASE, &identity), pod);
    Ok(Backend {
        election: Some(election),
        keeper: Some(crate::kept::Keeper::new(client, &own)),
        scopes,
        config,
        describe,
    })
}
