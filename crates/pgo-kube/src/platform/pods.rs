//! The pods of an instance: which one counts, what its conditions say, and
//! the role label the Services select on (set by the operator, not by the
//! pod template, so a failover never rolls the new primary's pod).

use super::KubePlatform;
use super::managers::ManagerAddr;
use crate::render::INSTANCE_LABEL;
use k8s_openapi::api::core::v1::Pod;
use pgo_api::cluster::MemberRole;
use pgo_api::labels;
use pgo_platform::PlatformError;
use serde_json::json;
use std::collections::BTreeMap;

/// Every pod of instance `name`, the live ones first, newest first.
pub async fn of(p: &KubePlatform, name: &str) -> Result<Vec<Pod>, PlatformError> {
    let mut pods = p.list_ours::<Pod>(Some((INSTANCE_LABEL, name))).await?;
    pods.sort_by_key(|p| {
        (
            terminating(p),
            std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)),
        )
    });
    Ok(pods)
}

pub fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

pub fn ip(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .filter(|ip| !ip.is_empty())
}

/// Whether `pod` runs a container of that name (the metrics sidecar).
pub fn has_container(pod: &Pod, name: &str) -> bool {
    pod.spec
        .as_ref()
        .is_some_and(|s| s.containers.iter().any(|c| c.name == name))
}

/// The manager of `pod`: its instance (label) and its IP.
pub fn manager(pod: &Pod) -> Option<ManagerAddr> {
    let instance = pod.metadata.labels.as_ref()?.get(INSTANCE_LABEL)?.clone();
    Some(ManagerAddr {
        instance,
        ip: ip(pod)?,
    })
}

pub fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The kubelet's Ready condition: the manager's `/readyz` said yes.
pub fn ready(pod: &Pod) -> bool {
    !terminating(pod)
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn role(pod: &Pod) -> Option<MemberRole> {
    match pod.metadata.labels.as_ref()?.get(labels::ROLE)?.as_str() {
        "primary" => Some(MemberRole::Primary),
        "replica" => Some(MemberRole::Replica),
        _ => None,
    }
}

/// PostgreSQL's port, from the container port named `postgres`.
pub fn port(pod: &Pod) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("postgres"))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// Why a pod is not ready, in the words of its status.
pub fn why_not_ready(pod: &Pod) -> String {
    if terminating(pod) {
        return format!("pod {} is terminating", name(pod));
    }
    let Some(status) = pod.status.as_ref() else {
        return format!("pod {} has no status yet", name(pod));
    };
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref())
        .map(|w| {
            let reason = w.reason.clone().unwrap_or_default();
            match &w.message {
                Some(m) => format!("{reason}: {m}"),
                None => reason,
            }
        });
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.status == "False")
        .map(|c| {
            format!(
                "{} is False{}",
                c.type_,
                c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            )
        });
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    match waiting.or(condition) {
        Some(why) => format!("pod {} {phase}: {why}", name(pod)),
        None => format!("pod {} is {phase}", name(pod)),
    }
}

/// The annotation on a pod naming the user's labels the operator put there,
/// so one dropped from the spec is taken off.
const CARRIED: &str = "pgo.dev/carried-labels";

/// Puts the user's labels (`wanted`) on a live pod, and takes off those it
/// put there before that are no longer wanted. Nothing when all is so.
pub async fn carry_labels(
    p: &KubePlatform,
    pod: &Pod,
    wanted: &BTreeMap<String, String>,
) -> Result<(), PlatformError> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let noted = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CARRIED))
        .cloned()
        .unwrap_or_default();
    let mut changes = serde_json::Map::new();
    for (k, v) in wanted {
        if labels.get(k) != Some(v) {
            changes.insert(k.clone(), json!(v));
        }
    }
    for k in noted.split(',').filter(|k| !k.is_empty()) {
        if !wanted.contains_key(k) && labels.contains_key(k) {
            changes.insert(k.to_string(), serde_json::Value::Null);
        }
    }
    let keys = wanted.keys().cloned().collect::<Vec<_>>().join(",");
    if changes.is_empty() && keys == noted {
        return Ok(());
    }
    let patch = json!({ "metadata": { "labels": changes, "annotations": { CARRIED: keys } } });
    let pod_name = name(pod);
    p.merge_patch::<Pod>(&pod_name, &patch, &format!("labelling pod {pod_name}"))
        .await
}

/// Sets (or with `None` removes) the role label the Services select on.
pub async fn set_role(p: &KubePlatform, pod: &Pod, role: Option<MemberRole>) -> Result<(), PlatformError> {
    if self::role(pod) == role {
        return Ok(());
    }
    let value = role.map(|r| r.to_string());
    let patch = json!({ "metadata": { "labels": { labels::ROLE: value } } });
    let pod_name = name(pod);
    p.merge_patch::<Pod>(&pod_name, &patch, &format!("relabelling pod {pod_name}"))
        .await?;
    tracing::info!(pod = %pod_name, role = value.as_deref().unwrap_or("none"), "pod relabelled");
    Ok(())
}
