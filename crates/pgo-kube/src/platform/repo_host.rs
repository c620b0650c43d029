//! A cluster's pgBackRest repository host on Kubernetes, made beside its
//! instances: the Secret (a token, its server certificate and the
//! cluster's client certificate), then the ConfigMap, Deployment and
//! Service (`crate::repo_host`). All are owned by the Pgcluster, so they go
//! with it; the repository's PVC stays unless its backups are deleted.

use super::KubePlatform;
use super::secrets::{Certified, ensure_certified};
use crate::repo_host;
use k8s_openapi::api::apps::v1::Deployment;
use pgo_core::desired::InstanceSpec;
use pgo_platform::PlatformError;

/// Makes the repository host of `instance`'s cluster, or leaves it be as
/// it is. Nothing for a cluster that does not archive with pgBackRest.
pub async fn ensure(p: &KubePlatform, instance: &InstanceSpec) -> Result<(), PlatformError> {
    if instance.backrest.is_none() {
        return Ok(());
    }
    let cluster = &instance.cluster;
    ensure_certified(
        p,
        Certified {
            name: repo_host::name(cluster),
            cluster,
            owner_uid: instance.owner_uid.as_deref(),
            hosts: repo_host::certificate_names(cluster, &p.opts.namespace),
            common_name: repo_host::name(cluster),
            client: Some(repo_host::client_cn(cluster)),
        },
    )
    .await?;
    let objects = repo_host::render(&p.templates, &p.opts, instance)
        .map_err(|e| PlatformError::Invalid(e.to_string()))?;
    p.apply(&objects.config_map).await?;
    p.apply(&objects.deployment).await?;
    p.apply(&objects.service).await?;
    p.apply(&objects.pods_service).await?;
    Ok(())
}

/// Stops the repository host of `cluster` before its repository's data is
/// removed, so nothing writes into what is being deleted.
pub async fn remove(p: &KubePlatform, cluster: &str) -> Result<(), PlatformError> {
    let name = repo_host::name(cluster);
    p.delete_ours::<Deployment>(&name).await?;
    p.applied.forget("Deployment", &name);
    Ok(())
}
