//! `postgres-operator render`: every Kubernetes object the operator would
//! create for the Pgclusters (and Pgreplicas) in a file, without a cluster.

use crate::ServerError;
use pgo_api::{Pgcluster, Pgreplica, PgreplicaSpec};
use pgo_core::names;
use pgo_kube::{CopyJob, RenderOptions, Rendered, Templates, render_backup, render_cluster, render_rmdata};
use serde::Deserialize;
use std::path::Path;

pub struct Args<'a> {
    pub file: &'a Path,
    pub strategy: Option<String>,
    pub templates: Option<&'a Path>,
    pub namespace: String,
    pub image: Option<String>,
    pub priority_class: Option<String>,
    pub disable_fs_group: bool,
    pub with_jobs: bool,
}

pub fn run(args: Args<'_>) -> Result<(), ServerError> {
    let err = |s: String| ServerError::Start(s);
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(args.file).map_err(|e| err(format!("cannot read {file}: {e}")))?;
    let mut clusters = Vec::new();
    let mut replicas = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| err(format!("{file}: document {}: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        let parse_err = |e: serde_yaml::Error| err(format!("{file}: document {} ({kind}): {e}", i + 1));
        match kind.as_str() {
            "Pgcluster" => clusters.push(serde_yaml::from_value::<Pgcluster>(value).map_err(parse_err)?),
            "Pgreplica" => replicas.push(serde_yaml::from_value::<Pgreplica>(value).map_err(parse_err)?),
            other => {
                return Err(err(format!(
                    "{file}: document {} is a {:?}; render takes Pgclusters and Pgreplicas",
                    i + 1,
                    if other.is_empty() {
                        "document without a kind"
                    } else {
                        other
                    }
                )));
            }
        }
    }
    if clusters.is_empty() {
        return Err(err(format!("{file} holds no Pgcluster")));
    }
    let templates = match args.templates {
        Some(dir) => Templates::with_overrides(dir).map_err(|e| err(e.to_string()))?,
        None => Templates::embedded(),
    };
    let mut opts = RenderOptions {
        operator_namespace: args.namespace.clone(),
        namespace: args.namespace,
        strategy: args.strategy,
        priority_class: args.priority_class,
        fs_group: (!args.disable_fs_group).then_some(pgo_kube::render::IMAGE_GROUP),
        ..RenderOptions::default()
    };
    if let Some(image) = args.image {
        opts.image = image;
    }
    let mut out = String::new();
    for cluster in &clusters {
        let name = cluster.metadata.name.clone().unwrap_or_default();
        let mut own: Vec<Pgreplica> = replicas
            .iter()
            .filter(|r| r.spec.cluster_name == name)
            .cloned()
            .collect();
        // Replicas the operator has not made yet get stand-in names.
        for i in own.len() as u32..cluster.spec.replicas {
            own.push(Pgreplica::new(
                &names::replica(&name, &format!("r{}", i + 1)),
                PgreplicaSpec {
                    cluster_name: name.clone(),
                    storage: cluster.spec.replica_storage.clone(),
                    node_name: None,
                },
            ));
        }
        let mut objects = render_cluster(cluster, &own, &templates, &opts)
            .map_err(|e| err(format!("cluster {name}: {e}")))?;
        if args.with_jobs {
            let pvcs: Vec<String> = objects
                .iter()
                .filter(|o| o.kind() == "PersistentVolumeClaim")
                .map(Rendered::name)
                .collect();
            for pvc in pvcs {
                objects.push(
                    render_rmdata(&name, &pvc, "data", &templates, &opts).map_err(|e| err(e.to_string()))?,
                );
            }
            let copy = CopyJob {
                name: &format!("{name}-backup-20261124-100000"),
                cluster: &name,
                host: format!("{}.{}.svc", names::primary_service(&name), opts.namespace),
                port: cluster.spec.port,
                pvc: &names::basebackup_volume(&name),
                path: &format!("{name}-backups/2026-11-24-10-00-00"),
                instance: &names::initial_primary(&name),
            };
            objects.push(render_backup(&copy, &templates, &opts).map_err(|e| err(e.to_string()))?);
            let config = primary_config(&objects, &name)?;
            let seed = pgo_kube::volume_jobs::render_seed(
                &pgo_kube::volume_jobs::SeedJob {
                    name: &pgo_kube::volume_jobs::seed_job_name(&name),
                    cluster: &name,
                    pvc: &name,
                    copy_pvc: copy.pvc,
                    path: copy.path,
                    config: &config,
                },
                &templates,
                &opts,
            )
            .map_err(|e| err(e.to_string()))?;
            objects.push(Rendered::Job(Box::new(seed)));
            if cluster.spec.backrest.is_some() {
                let restore = pgo_kube::volume_jobs::render_restore(
                    &pgo_kube::volume_jobs::RestoreJob {
                        name: &names::restore_to_pvc_task(&format!("{name}-restored")),
                        cluster: &name,
                        repository: pgo_kube::volume_jobs::Reach::Host { cluster: &name },
                        pvc: &format!("{name}-restored"),
                        config: &config,
                        target: None,
                        options: &[],
                    },
                    &templates,
                    &opts,
                )
                .map_err(|e| err(e.to_string()))?;
                objects.push(Rendered::Job(Box::new(restore)));
                let job = pgo_kube::repo_host::render_job(
                    &pgo_kube::repo_host::BackrestJob {
                        name: &format!("{name}-backup-20261124-100001"),
                        cluster: &name,
                        standby: None,
                        args: &["backup".to_string(), "--type=full".to_string()],
                    },
                    &templates,
                    &opts,
                )
                .map_err(|e| err(e.to_string()))?;
                objects.push(Rendered::Job(Box::new(job)));
            }
        }
        for object in objects {
            let yaml = object.to_yaml().map_err(|e| err(e.to_string()))?;
            out.push_str("---\n");
            out.push_str(&yaml);
        }
    }
    print!("{out}");
    Ok(())
}

/// The manager config of cluster `name`'s first primary, from its rendered
/// ConfigMap: what the Jobs that fill a volume work with.
fn primary_config(
    objects: &[Rendered],
    name: &str,
) -> Result<pgo_api::instance::InstanceConfig, ServerError> {
    let map = pgo_kube::render::config_map_name(&names::initial_primary(name));
    let found = objects.iter().find_map(|o| match o {
        Rendered::ConfigMap(m) if m.metadata.name.as_deref() == Some(map.as_str()) => Some(m),
        _ => None,
    });
    let found = found.ok_or_else(|| ServerError::Start(format!("cluster {name}: no ConfigMap {map}")))?;
    pgo_kube::render::config_in(found).map_err(|e| ServerError::Start(format!("cluster {name}: {e}")))
}

/// The operator-conf ConfigMap: every template file under its own name, as
/// the operator mounts it at /operator-conf.
pub fn operator_conf(namespace: &str) -> Result<(), ServerError> {
    let map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "operator-conf",
            "namespace": namespace,
            "labels": { "app.kubernetes.io/managed-by": "pgo", "name": "postgres-operator" },
        },
        "data": Templates::embedded().files(),
    });
    let yaml = serde_yaml::to_string(&map).map_err(|e| ServerError::Start(e.to_string()))?;
    print!("# Generated by `postgres-operator operator-conf`; a test fails when it is stale.\n---\n{yaml}");
    Ok(())
}
