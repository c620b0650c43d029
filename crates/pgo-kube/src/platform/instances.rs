//! An instance on Kubernetes: a ConfigMap with its manager's config and a
//! Deployment of one pod. Readiness comes from the pod's conditions (the
//! kubelet probes `/readyz`), details from the manager's `/status`.

use super::apply::{api_error, not_ours, ours};
use super::managers::ManagerAddr;
use super::stopping::{self, PodStop};
use super::{KubePlatform, pods, secrets, seeds};
use crate::render::{self, CREATED_AS, config_map_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, Service};
use kube::api::{Api, DeleteParams};
use pgo_api::cluster::MemberRole;
use pgo_api::instance::{InstanceConfig, ReloadRequest, SlotRequest};
use pgo_core::desired::InstanceSpec;
use pgo_platform::{InstanceObservation, PlatformError};
use std::time::Duration;

fn role_of(text: &str) -> Option<MemberRole> {
    match text {
        "primary" => Some(MemberRole::Primary),
        "replica" => Some(MemberRole::Replica),
        _ => None,
    }
}

/// Whether an ensure may change a running instance's pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Never: a changed template waits for the rolling update, so a new
    /// operator (or instance image) does not restart every database at
    /// once. A new Deployment is made as rendered.
    Held,
    /// Now: the rolling update's step for this instance.
    Now,
}

pub async fn ensure(p: &KubePlatform, spec: &InstanceSpec, rollout: Rollout) -> Result<(), PlatformError> {
    secrets::ensure_manager(p, spec).await?;
    // Before the pod: it mounts the repository host's client certificate.
    super::repo_host::ensure(p, spec).await?;
    let existing = p.get_opt::<Deployment>(&spec.name).await?;
    if let Some(d) = &existing
        && !ours(&d.metadata)
    {
        return Err(not_ours("Deployment", &spec.name));
    }
    // A first volume a Job fills (a copy, a deleted cluster's
    // repository): its first pod starts on that data.
    if existing.is_none() && seeds::ensure(p, spec).await? == seeds::Seeded::Filling {
        return Ok(());
    }
    if existing.is_none() {
        // Deleted behind pgo's back (or never made): made again now, not
        // when the applied-recently memory runs out.
        p.applied.forget("Deployment", &spec.name);
        p.applied.forget("ConfigMap", &config_map_name(&spec.name));
    }
    // A Deployment keeps the template of the role it was made in.
    let created_as = existing
        .as_ref()
        .and_then(|d| d.metadata.annotations.as_ref()?.get(CREATED_AS).cloned())
        .and_then(|r| role_of(&r))
        .unwrap_or(spec.role);
    let (config_map, deployment) = render::render_instance(&p.templates, &p.opts, spec, created_as)
        .map_err(|e| PlatformError::Invalid(e.to_string()))?;
    p.apply(&config_map).await?;
    let stamp = |d: &Deployment| {
        render::pod_template_stamp(d.spec.as_ref().and_then(|s| s.template.metadata.as_ref()))
            .map(str::to_string)
    };
    let want = stamp(&deployment);
    if let (Some(want), Ok(mut stamps)) = (&want, p.stamps.lock()) {
        stamps.insert(spec.name.clone(), want.clone());
    }
    let held = rollout == Rollout::Held && existing.as_ref().is_some_and(|d| stamp(d) != want);
    if held {
        tracing::debug!(instance = %spec.name, "pod template changed; the rolling update restarts it");
    } else {
        p.apply(&deployment).await?;
    }

    let live: Vec<Pod> = pods::of(p, &spec.name)
        .await?
        .into_iter()
        .filter(|pod| !pods::terminating(pod))
        .collect();
    let carried = render::carried_pod_labels(spec);
    for pod in &live {
        pods::set_role(p, pod, Some(spec.role)).await?;
        pods::carry_labels(p, pod, &carried).await?;
    }
    push_config(p, spec, &config_map, &live).await
}

/// A running manager gets a changed config at once, in the reload request:
/// the kubelet takes up to a minute to update the ConfigMap's file.
async fn push_config(
    p: &KubePlatform,
    spec: &InstanceSpec,
    config_map: &ConfigMap,
    live: &[Pod],
) -> Result<(), PlatformError> {
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(render::INSTANCE_CONFIG_KEY))
        .cloned()
        .unwrap_or_default();
    let already = p
        .pushed
        .lock()
        .ok()
        .is_some_and(|m| m.get(&spec.name) == Some(&text));
    if already {
        return Ok(());
    }
    // A pod that is not ready yet reads the ConfigMap as it starts.
    let Some(at) = live.iter().filter(|pod| pods::ready(pod)).find_map(pods::manager) else {
        return Ok(());
    };
    let config: InstanceConfig = serde_json::from_str(&text)
        .map_err(|e| PlatformError::Invalid(format!("instance {}: {e}", spec.name)))?;
    let token = secrets::read_token(p, &spec.name).await?;
    let body = serde_json::to_value(ReloadRequest {
        changes: Some(config.changes()),
    })
    .map_err(|e| PlatformError::Invalid(e.to_string()))?;
    // Not a failure of the apply: the kubelet brings the same file within a
    // minute. Unrecorded, so the next pass pushes it again.
    match p
        .managers
        .control(&at, &token, "/control/reload", &body, Duration::from_secs(5))
        .await
    {
        Ok(()) => {
            if let Ok(mut m) = p.pushed.lock() {
                m.insert(spec.name.clone(), text);
            }
        }
        Err(e) => {
            tracing::warn!(instance = %spec.name, error = %e, "cannot push the new config to the manager; the ConfigMap will bring it")
        }
    }
    Ok(())
}

pub async fn observe(p: &KubePlatform, name: &str) -> Result<Option<InstanceObservation>, PlatformError> {
    let all = pods::of(p, name).await?;
    let Some(pod) = all.first() else {
        let message = if p.get_opt::<Deployment>(name).await?.is_some() {
            Some(format!("Deployment {name} has no pod yet"))
        } else {
            seeds::underway(p, name).await?
        };
        return Ok(message.map(|message| InstanceObservation {
            name: name.to_string(),
            message: Some(message),
            ..Default::default()
        }));
    };
    let condition_ready = pods::ready(pod);
    let mut seen = InstanceObservation {
        name: name.to_string(),
        running: pods::running(pod) && !pods::terminating(pod),
        ready: condition_ready,
        role: pods::role(pod),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        host: pods::ip(pod).unwrap_or_default(),
        metrics: pods::ip(pod)
            .filter(|_| pods::has_container(pod, "metrics"))
            .map(|ip| format!("http://{ip}:{}/metrics", render::METRICS_PORT)),
        port: pods::port(pod).unwrap_or(5432),
        message: (!condition_ready).then(|| pods::why_not_ready(pod)),
        restarts: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(render::RESTARTS))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        outdated: p.stamps.lock().ok().is_some_and(|stamps| {
            stamps
                .get(name)
                .is_some_and(|want| render::pod_template_stamp(Some(&pod.metadata)) != Some(want.as_str()))
        }),
        ..Default::default()
    };
    if let Some(at) = pods::manager(pod).filter(|_| seen.running) {
        // The manager knows more than the pod's conditions; when it cannot
        // be reached (an operator outside the pod network) they suffice.
        match p.managers.status(&at).await {
            Ok(r) => {
                seen.ready = condition_ready && r.ready;
                seen.role = r.role.or(seen.role);
                seen.timeline = r.timeline;
                seen.wal_lsn = r.wal_lsn;
                seen.received_lsn = r.received_lsn;
                seen.fatal = r.fatal;
                seen.failing_for_ms = r.failing_for_ms;
                seen.archive = r.archive;
                seen.pending_restart = r.pending_restart;
                seen.pending_lower = r.pending_lower;
                if !seen.ready {
                    seen.message = r.message.or(seen.message);
                }
            }
            Err(e) => tracing::debug!(instance = name, error = %e, "the manager's /status did not answer"),
        }
    }
    Ok(Some(seen))
}

/// Stops an instance: its pods leave the Services at once (the role label
/// goes), then its Deployment and ConfigMap are deleted. Done only when no
/// pod of it is left, so a fence is a fence; the PVC stays.
pub async fn remove(p: &KubePlatform, name: &str) -> Result<(), PlatformError> {
    let before = pods::of(p, name).await?;
    for pod in before.iter().filter(|pod| !pods::terminating(pod)) {
        pods::set_role(p, pod, None).await?;
    }
    p.delete_ours::<Deployment>(name).await?;
    // A copy still going into its volume stops with it.
    super::jobs::remove(p, &crate::volume_jobs::seed_job_name(name)).await?;
    p.delete_ours::<ConfigMap>(&config_map_name(name)).await?;
    p.delete_ours::<Secret>(&render::manager_secret(name)).await?;
    p.applied.forget("Deployment", name);
    p.applied.forget("ConfigMap", &config_map_name(name));
    if let Ok(mut m) = p.pushed.lock() {
        m.remove(name);
    }
    if let Ok(mut m) = p.stamps.lock() {
        m.remove(name);
    }
    let left = pods::of(p, name).await?;
    let pod_api: Api<Pod> = p.api();
    let mut waiting = Vec::new();
    for pod in &left {
        let pod_name = pods::name(pod);
        let deleted_for = pod.metadata.deletion_timestamp.as_ref().map(|t| {
            let ms = jiff::Timestamp::now().duration_since(t.0).as_millis().max(0);
            Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
        });
        let out_of_service = match (
            &deleted_for,
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        ) {
            (Some(_), Some(node)) => out_of_service(p, node).await?,
            _ => false,
        };
        let params = match stopping::decide(deleted_for, out_of_service) {
            PodStop::Delete => DeleteParams::default(),
            PodStop::Force => {
                tracing::warn!(pod = %pod_name, "its node is out of service; removing the pod from the API server");
                DeleteParams::default().grace_period(0)
            }
            PodStop::Wait => {
                waiting.push(pod_name);
                continue;
            }
            PodStop::CountedStopped => {
                tracing::warn!(pod = %pod_name, "pod still terminating past the isolation bound: counted as stopped (its manager has fenced PostgreSQL); it stays until its node is back or tainted {}", stopping::OUT_OF_SERVICE);
                continue;
            }
        };
        waiting.push(pod_name.clone());
        match pod_api.delete(&pod_name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_error(&format!("deleting pod {pod_name}"), e)),
        }
    }
    if waiting.is_empty() {
        return Ok(());
    }
    Err(PlatformError::InProgress(format!(
        "waiting for the pods of instance {name} to stop: {}",
        waiting.join(", ")
    )))
}

/// Whether an administrator has said node `name` is down.
async fn out_of_service(p: &KubePlatform, name: &str) -> Result<bool, PlatformError> {
    let node = Api::<Node>::all(p.client.clone())
        .get_opt(name)
        .await
        .map_err(|e| api_error(&format!("reading node {name}"), e))?;
    Ok(node
        .and_then(|n| n.spec?.taints)
        .is_some_and(|t| t.iter().any(|t| t.key == stopping::OUT_OF_SERVICE)))
}

/// The running pod of an instance, its manager, and the manager's token.
async fn reachable(p: &KubePlatform, name: &str) -> Result<(Pod, ManagerAddr, String), PlatformError> {
    let pod = pods::of(p, name)
        .await?
        .into_iter()
        .find(|pod| !pods::terminating(pod) && pods::running(pod))
        .ok_or_else(|| PlatformError::Invalid(format!("instance {name} has no running pod")))?;
    let at = pods::manager(&pod)
        .ok_or_else(|| PlatformError::Invalid(format!("pod {} has no IP yet", pods::name(&pod))))?;
    let token = secrets::read_token(p, name).await?;
    Ok((pod, at, token))
}

pub async fn slot(p: &KubePlatform, primary: &str, slot: &str, path: &str) -> Result<(), PlatformError> {
    let (_, at, token) = reachable(p, primary).await?;
    let body = serde_json::to_value(SlotRequest {
        slot: slot.to_string(),
    })
    .map_err(|e| PlatformError::Invalid(e.to_string()))?;
    p.managers
        .control(&at, &token, path, &body, Duration::from_secs(10))
        .await
        .map_err(|e| PlatformError::Invalid(format!("instance {primary}: {e}")))
}

/// Points the cluster's primary Service at instance `name` now, not at
/// the next pass: writes follow the promotion at once. The next apply of
/// the Service says the same.
async fn point_primary_service(p: &KubePlatform, pod: &Pod, name: &str) -> Result<(), PlatformError> {
    use kube::ResourceExt;
    let Some(cluster) = pod.labels().get(pgo_api::labels::CLUSTER).cloned() else {
        return Ok(());
    };
    let service = pgo_core::names::primary_service(&cluster);
    if p.get_opt::<Service>(&service)
        .await?
        .is_none_or(|s| !ours(&s.metadata))
    {
        return Ok(());
    }
    let mut selector = serde_json::json!(render::primary_selector(&cluster, name));
    // A Service from before it selected by role: that key goes.
    selector[pgo_api::labels::ROLE] = serde_json::Value::Null;
    let patch = serde_json::json!({ "spec": { "selector": selector } });
    p.merge_patch::<Service>(&service, &patch, &format!("pointing Service {service} at {name}"))
        .await?;
    tracing::info!(service = %service, primary = name, "primary Service points at the new primary");
    Ok(())
}

/// Promotes, then labels the pod and points the primary Service at it.
pub async fn promote(p: &KubePlatform, name: &str) -> Result<(), PlatformError> {
    let (pod, at, token) = reachable(p, name).await?;
    p.managers
        .control(
            &at,
            &token,
            "/control/promote",
            &serde_json::json!({}),
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| PlatformError::Invalid(format!("instance {name}: {e}")))?;
    pods::set_role(p, &pod, Some(MemberRole::Primary)).await?;
    point_primary_service(p, &pod, name).await
}
