//! One pass over one cluster, as a pipeline: read → validate → build (pure,
//! in pgo-core) → apply (the platform) → status. Each step has its own error.

use crate::Context;
use pgo_api::Pgcluster;
use pgo_api::cluster::{ClusterPhase, MemberRole, MemberStatus, PgclusterStatus, ServiceStatus};
use pgo_api::labels;
use pgo_core::desired::{self, DesiredCluster};
use pgo_core::status::{self, PrimaryObservation};
use pgo_core::{names, validate};
use pgo_platform::{InstanceObservation, PlatformError};
use pgo_store::{Api, StoreError};
use std::time::Duration;

/// How soon to look again.
#[derive(Debug, PartialEq)]
pub enum Action {
    Requeue(Duration),
    /// The cluster no longer exists.
    Gone,
}

/// While a cluster is not ready it is looked at often: a create is waited on.
const NOT_READY_PERIOD: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading the cluster: {0}")]
    Read(#[source] StoreError),
    #[error("applying the cluster: {0}")]
    Apply(#[source] PlatformError),
    #[error("observing the cluster: {0}")]
    Observe(#[source] PlatformError),
    #[error("writing the cluster's status: {0}")]
    Status(#[source] StoreError),
    #[error("tearing the cluster down: {0}")]
    Teardown(#[source] PlatformError),
    #[error("releasing the cluster's finalizer: {0}")]
    Finalizer(#[source] StoreError),
}

impl ReconcileError {
    /// A conflict means someone wrote in between: look again at once.
    pub fn retry_after(&self) -> Duration {
        match self {
            ReconcileError::Status(e) | ReconcileError::Finalizer(e) if e.is_conflict() => {
                Duration::from_millis(10)
            }
            _ => Duration::from_secs(2),
        }
    }
}

pub async fn reconcile(ctx: &Context, name: &str) -> Result<Action, ReconcileError> {
    let api: Api<Pgcluster> = Api::new(ctx.store.clone());
    // Read.
    let Some(cluster) = api.get_opt(name).await.map_err(ReconcileError::Read)? else {
        return Ok(Action::Gone);
    };
    if cluster.metadata.deletion_timestamp.is_some() {
        return teardown(ctx, &api, cluster).await;
    }
    if !has_finalizer(&cluster) {
        let mut held = cluster.clone();
        held.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(labels::CLUSTER_FINALIZER.to_string());
        api.replace(&held).await.map_err(ReconcileError::Finalizer)?;
        return Ok(Action::Requeue(Duration::ZERO));
    }
    let previous = cluster.status.clone().unwrap_or_default();

    // Validate: a spec written by hand may be one the apiserver would refuse.
    if let Err(e) = validate::stored_spec(name, &cluster.spec) {
        tracing::error!(cluster = name, error = %e, "invalid cluster spec");
        let status = PgclusterStatus {
            phase: ClusterPhase::Failed,
            message: Some(e.to_string()),
            ..previous.clone()
        };
        write_status(&api, &cluster, status).await?;
        return Ok(Action::Requeue(Duration::from_secs(30)));
    }

    // Build.
    let primary = previous
        .primary
        .clone()
        .unwrap_or_else(|| names::initial_primary(name));
    let want = desired::cluster(name, &cluster.spec, &primary);

    // Apply.
    let services = match apply(ctx, &want).await {
        Ok(s) => s,
        Err(e) => {
            let status = PgclusterStatus {
                phase: ClusterPhase::Failed,
                message: Some(e.to_string()),
                primary: Some(primary),
                ..previous.clone()
            };
            write_status(&api, &cluster, status).await?;
            return Err(e);
        }
    };

    // Status.
    let mut members = Vec::new();
    let mut fatal = None;
    for instance in &want.instances {
        let seen = ctx
            .platform
            .observe_instance(&instance.name)
            .await
            .map_err(ReconcileError::Observe)?;
        if let Some(f) = seen.as_ref().and_then(|s| s.fatal.clone()) {
            fatal = Some(format!("instance {}: {f}", instance.name));
        }
        members.push(member(&instance.name, instance.role, seen));
    }
    log_changes(name, &previous.members, &members);
    let primary_member = members.iter().find(|m| m.name == primary);
    let observation = match (&fatal, primary_member) {
        (Some(f), _) => PrimaryObservation::Fatal(f),
        (None, Some(m)) => PrimaryObservation::Seen(m),
        (None, None) => PrimaryObservation::Missing,
    };
    let (phase, message) = status::phase(previous.phase, observation);
    if phase != previous.phase {
        tracing::info!(cluster = name, from = %previous.phase, to = %phase, message = message.as_deref().unwrap_or(""), "cluster phase changed");
    }
    let next = PgclusterStatus {
        phase,
        message,
        primary: Some(primary),
        members,
        services,
        observed_generation: cluster.metadata.generation,
    };
    write_status(&api, &cluster, next).await?;
    let period = if phase == ClusterPhase::Ready {
        Duration::from_millis(ctx.config.pgo.probe_period_ms)
    } else {
        NOT_READY_PERIOD
    };
    Ok(Action::Requeue(period))
}

fn has_finalizer(cluster: &Pgcluster) -> bool {
    cluster
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == labels::CLUSTER_FINALIZER))
}

async fn apply(ctx: &Context, want: &DesiredCluster) -> Result<Vec<ServiceStatus>, ReconcileError> {
    let p = &ctx.platform;
    for secret in &want.secrets {
        p.ensure_secret(secret).await.map_err(ReconcileError::Apply)?;
    }
    for volume in &want.volumes {
        p.ensure_volume(volume).await.map_err(ReconcileError::Apply)?;
    }
    for instance in &want.instances {
        p.ensure_instance(instance).await.map_err(ReconcileError::Apply)?;
    }
    let mut services = Vec::new();
    for service in &want.services {
        let endpoint = p.ensure_service(service).await.map_err(ReconcileError::Apply)?;
        services.push(ServiceStatus {
            name: service.name.clone(),
            host: endpoint.host,
            port: endpoint.port,
            targets: service.targets.clone(),
        });
    }
    Ok(services)
}

fn member(name: &str, role: MemberRole, seen: Option<InstanceObservation>) -> MemberStatus {
    match seen {
        Some(s) => MemberStatus {
            name: name.to_string(),
            role: s.role.unwrap_or(role),
            ready: s.ready,
            node: s.node,
            host: s.host,
            port: s.port,
            timeline: s.timeline,
            wal_lsn: s.wal_lsn,
            message: if s.ready { None } else { s.fatal.or(s.message) },
        },
        None => MemberStatus {
            name: name.to_string(),
            role,
            message: Some("not created yet".into()),
            ..Default::default()
        },
    }
}

/// One log line per readiness change: the record the failover loop builds on.
fn log_changes(cluster: &str, before: &[MemberStatus], after: &[MemberStatus]) {
    for m in after {
        let was = before.iter().find(|b| b.name == m.name).map(|b| b.ready);
        if was != Some(m.ready) {
            if m.ready {
                tracing::info!(cluster, member = %m.name, role = %m.role, "member ready");
            } else if was.is_some() {
                tracing::warn!(cluster, member = %m.name, reason = m.message.as_deref().unwrap_or(""), "member not ready");
            }
        }
    }
}

async fn write_status(
    api: &Api<Pgcluster>,
    cluster: &Pgcluster,
    status: PgclusterStatus,
) -> Result<(), ReconcileError> {
    if cluster.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = cluster.clone();
    next.status = Some(status);
    api.replace_status(&next).await.map_err(ReconcileError::Status)?;
    Ok(())
}

/// Instances and services go; volumes and secrets stay (the spec keeps data
/// unless `--delete-data` asks otherwise). Then the finalizer is released.
async fn teardown(ctx: &Context, api: &Api<Pgcluster>, cluster: Pgcluster) -> Result<Action, ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let previous = cluster.status.clone().unwrap_or_default();
    if previous.phase != ClusterPhase::Deleting {
        let status = PgclusterStatus {
            phase: ClusterPhase::Deleting,
            message: Some("stopping instances and closing services; data is kept".into()),
            ..previous.clone()
        };
        write_status(api, &cluster, status).await?;
    }
    let primary = previous
        .primary
        .clone()
        .unwrap_or_else(|| names::initial_primary(&name));
    let want = desired::cluster(&name, &cluster.spec, &primary);
    let mut instances: Vec<String> = want.instances.iter().map(|i| i.name.clone()).collect();
    instances.extend(previous.members.iter().map(|m| m.name.clone()));
    instances.sort();
    instances.dedup();
    for instance in &instances {
        ctx.platform
            .remove_instance(instance)
            .await
            .map_err(ReconcileError::Teardown)?;
    }
    for service in &want.services {
        ctx.platform
            .remove_service(&service.name)
            .await
            .map_err(ReconcileError::Teardown)?;
    }
    let mut current = api.get(&name).await.map_err(ReconcileError::Read)?;
    if let Some(f) = current.metadata.finalizers.as_mut() {
        f.retain(|x| x != labels::CLUSTER_FINALIZER);
    }
    api.replace(&current).await.map_err(ReconcileError::Finalizer)?;
    tracing::info!(cluster = %name, "cluster deleted; its volumes and secrets are kept");
    Ok(Action::Gone)
}
