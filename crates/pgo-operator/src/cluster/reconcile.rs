//! One pass over one cluster and its replicas, as a pipeline: read →
//! validate → build (pure, in pgo-core) → apply (the platform) → status.
//! Each step has its own error.

use super::{failover, replicas};
use crate::Context;
use pgo_api::cluster::{ClusterPhase, MemberRole, MemberStatus, PgclusterStatus, ServiceStatus};
use pgo_api::{Pgcluster, Pgreplica, PgreplicaStatus, labels};
use pgo_core::desired::{self, InstanceSpec, ReplicaInput};
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

/// While anything is not ready it is looked at often: a create is waited on.
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
    #[error("tearing down {what}: {source}")]
    Teardown {
        what: String,
        #[source]
        source: PlatformError,
    },
    /// Something recorded that this operator cannot act on.
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("writing {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: StoreError,
    },
}

impl ReconcileError {
    /// For `map_err`: tearing down `what` failed.
    pub fn teardown(what: String) -> impl FnOnce(PlatformError) -> ReconcileError {
        move |source| ReconcileError::Teardown { what, source }
    }

    /// Not a failure, so no backoff: how soon to look again. Someone wrote
    /// in between (look again at once), or a teardown waits on something
    /// under way (a pod terminating).
    pub fn wait(&self) -> Option<Duration> {
        match self {
            ReconcileError::Status(e) | ReconcileError::Write { source: e, .. } if e.is_conflict() => {
                Some(Duration::from_millis(10))
            }
            ReconcileError::Teardown {
                source: PlatformError::InProgress(_),
                ..
            } => Some(Duration::from_millis(200)),
            _ => None,
        }
    }
}

pub async fn reconcile(ctx: &Context, name: &str) -> Result<Action, ReconcileError> {
    let clusters: Api<Pgcluster> = Api::new(ctx.store.clone());
    // Read.
    let Some(cluster) = clusters.get_opt(name).await.map_err(ReconcileError::Read)? else {
        return Ok(Action::Gone);
    };
    let members = replicas::of(ctx, name).await?;
    if cluster.metadata.deletion_timestamp.is_some() {
        return teardown(ctx, &clusters, cluster, members).await;
    }
    if !has_finalizer(&cluster.metadata.finalizers, labels::CLUSTER_FINALIZER) {
        let mut held = cluster.clone();
        held.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(labels::CLUSTER_FINALIZER.to_string());
        clusters
            .replace(&held)
            .await
            .map_err(|source| ReconcileError::Write {
                what: format!("the finalizer of cluster {name}"),
                source,
            })?;
        return Ok(Action::Requeue(Duration::ZERO));
    }
    // A failover in progress has the cluster to itself until it is done.
    if let Some(task) = failover::active(ctx, name).await? {
        return failover::drive(ctx, &clusters, &cluster, &task, &members).await;
    }
    if replicas::finish_scaledowns(ctx, &clusters, &cluster, &members).await? {
        return Ok(Action::Requeue(Duration::ZERO));
    }
    let previous = cluster.status.clone().unwrap_or_default();

    // Validate: a spec written by hand may be one the apiserver would refuse.
    if let Err(e) = validate::stored_spec(name, &cluster.spec, &ctx.platform.strategies()) {
        tracing::error!(cluster = name, error = %e, "invalid cluster spec");
        return refuse(&clusters, &cluster, &previous, e.to_string()).await;
    }

    if let Some(pvc) = &cluster.spec.pvc_name {
        let volumes = ctx.platform.volumes().await.map_err(ReconcileError::Observe)?;
        if let Some(v) = volumes.iter().find(|v| &v.name == pvc && v.cluster != name) {
            let why = format!("volume {pvc} belongs to cluster {}; it is not used", v.cluster);
            tracing::error!(cluster = name, "{why}");
            return refuse(&clusters, &cluster, &previous, why).await;
        }
    }

    // Build.
    let primary = previous
        .primary
        .clone()
        .unwrap_or_else(|| names::initial_primary(name));
    let (live, leaving): (Vec<Pgreplica>, Vec<Pgreplica>) = members
        .into_iter()
        .partition(|r| r.metadata.deletion_timestamp.is_none());
    let inputs: Vec<ReplicaInput> = live.iter().map(replicas::input).collect();
    let uid = cluster.metadata.uid.as_deref();
    let want = desired::cluster(name, &cluster.spec, &primary, &inputs).owned_by(uid);
    // Checked whole before anything is made: a cluster is never half-created.
    if let Err(e) = ctx.platform.check(&want).await {
        tracing::error!(cluster = name, error = %e, "the platform cannot build this cluster");
        return refuse(&clusters, &cluster, &previous, e.to_string()).await;
    }

    // Apply: the primary first, so a leaving replica is out of
    // synchronous_standby_names before it stops.
    if let Err(e) = apply_primary(ctx, &want).await {
        return Err(apply_failed(&clusters, &cluster, &previous, &primary, e).await);
    }
    for replica in &leaving {
        replicas::remove(ctx, &primary, replica).await?;
    }
    let primary_seen = ctx
        .platform
        .observe_instance(&primary)
        .await
        .map_err(ReconcileError::Observe)?;
    let primary_ready = primary_seen.as_ref().is_some_and(|s| s.ready);
    if primary_ready && (live.len() as u32) < cluster.spec.replicas {
        // Replicas are made once the primary can be copied, so they all
        // bootstrap at once instead of retrying against a primary not up yet.
        replicas::create_missing(ctx, &cluster, live.len() as u32).await?;
        return Ok(Action::Requeue(Duration::ZERO));
    }
    // One replica that cannot be applied (its manager hung, say) must not
    // stop the pass: the primary is still watched and the others kept.
    let mut apply_errors = std::collections::HashMap::new();
    for instance in want.instances.iter().filter(|i| i.role == MemberRole::Replica) {
        let exists = ctx
            .platform
            .observe_instance(&instance.name)
            .await
            .map_err(ReconcileError::Observe)?
            .is_some();
        if (primary_ready || exists)
            && let Err(e) = ctx.platform.ensure_instance(instance).await
        {
            tracing::warn!(cluster = name, replica = %instance.name, error = %e, "cannot apply replica; trying again next pass");
            apply_errors.insert(instance.name.clone(), e.to_string());
        }
    }

    // Observe, every instance at once: one that hangs costs one timeout.
    let observations = futures::future::join_all(want.instances.iter().map(|instance| async {
        if instance.name == primary {
            Ok(primary_seen.clone())
        } else {
            ctx.platform.observe_instance(&instance.name).await
        }
    }))
    .await;
    let mut members = Vec::new();
    let mut fatal = None;
    for (instance, seen) in want.instances.iter().zip(observations) {
        let seen = seen.map_err(ReconcileError::Observe)?;
        if instance.name == primary
            && let Some(f) = seen.as_ref().and_then(|s| s.fatal.clone())
        {
            fatal = Some(format!("instance {}: {f}", instance.name));
        }
        let mut m = member(instance, seen);
        if let Some(e) = apply_errors.remove(&instance.name) {
            m.message = Some(e);
        }
        members.push(m);
    }
    let primary_lsn = members
        .iter()
        .find(|m| m.name == primary)
        .and_then(|m| m.wal_lsn.clone());
    for m in members
        .iter_mut()
        .filter(|m| m.role == MemberRole::Replica && m.ready)
    {
        m.lag_bytes = status::lag(primary_lsn.as_deref(), m.wal_lsn.as_deref());
    }
    log_changes(name, &previous.members, &members);

    // Services: the replica service only routes to replicas that are ready.
    let ready: Vec<String> = members
        .iter()
        .filter(|m| m.name != primary && m.ready)
        .map(|m| m.name.clone())
        .collect();
    let mut services = Vec::new();
    for mut service in desired::services(name, &cluster.spec, &primary, &ready) {
        service.owner_uid = uid.map(str::to_string);
        let endpoint = match ctx.platform.ensure_service(&service).await {
            Ok(e) => e,
            Err(e) => {
                return Err(
                    apply_failed(&clusters, &cluster, &previous, &primary, ReconcileError::Apply(e)).await,
                );
            }
        };
        services.push(ServiceStatus {
            name: service.name.clone(),
            host: endpoint.host,
            port: endpoint.port,
            targets: service.targets.clone(),
        });
    }

    // Status.
    let primary_member = members.iter().find(|m| m.name == primary);
    let observation = match (&fatal, primary_member) {
        (Some(f), _) => PrimaryObservation::Fatal(f),
        (None, Some(m)) => PrimaryObservation::Seen(m),
        (None, None) => PrimaryObservation::Missing,
    };
    let (phase, mut message) = status::phase(previous.phase, observation);
    if phase == ClusterPhase::Ready && cluster.spec.sync_replication && ready.is_empty() {
        message = Some("synchronous replication: no replica is ready, so commits wait until one is".into());
    }
    if phase != previous.phase {
        tracing::info!(cluster = name, from = %previous.phase, to = %phase, message = message.as_deref().unwrap_or(""), "cluster phase changed");
    }

    // Auto failover, level-triggered: every pass looks at the primary
    // afresh; the timer is a timestamp in the status, not an event. It starts
    // when the primary's failing check began, as its manager measured it:
    // a write stuck on frozen storage stopped it then, not at the timeout.
    let failing_for = primary_seen
        .as_ref()
        .and_then(|s| s.failing_for_ms)
        .map(std::time::Duration::from_millis);
    let not_ready_since = (phase == ClusterPhase::NotReady).then(|| {
        previous.not_ready_since.clone().unwrap_or_else(|| {
            let now = jiff::Timestamp::now();
            failing_for
                .and_then(|d| jiff::SignedDuration::try_from(d).ok())
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(now)
                .to_string()
        })
    });
    if let Some(since) = &not_ready_since
        && cluster.spec.autofail
    {
        let waited = since
            .parse::<jiff::Timestamp>()
            .map(|t| jiff::Timestamp::now().duration_since(t).as_secs())
            .unwrap_or(0);
        let sleep = ctx.config.pgo.autofail_sleep_seconds;
        if waited >= i64::try_from(sleep).unwrap_or(i64::MAX) {
            match failover::choose_target(&primary, &members) {
                Some(target) => {
                    let reason = format!(
                        "auto: primary {primary} not ready for {waited}s ({})",
                        message.as_deref().unwrap_or("no reason given")
                    );
                    failover::start(
                        ctx,
                        name,
                        &primary,
                        &target,
                        &reason,
                        ctx.config.cluster.autofail_replace_replica,
                    )
                    .await?;
                    return Ok(Action::Requeue(Duration::ZERO));
                }
                None => {
                    message = Some(format!(
                        "auto failover: primary not ready for {waited}s and no ready replica to promote; still checking"
                    ));
                }
            }
        }
    }
    for replica in &live {
        let m = members
            .iter()
            .find(|m| Some(&m.name) == replica.metadata.name.as_ref());
        replicas::write_status(ctx, replica, m).await?;
    }
    let everything_ready =
        phase == ClusterPhase::Ready && members.iter().all(|m| m.ready && m.message.is_none());
    let next = PgclusterStatus {
        phase,
        message,
        primary: Some(primary),
        members,
        services,
        not_ready_since,
        failovers: previous.failovers.clone(),
        observed_generation: cluster.metadata.generation,
    };
    write_status(&clusters, &cluster, next).await?;
    let period = if everything_ready && leaving.is_empty() {
        Duration::from_millis(ctx.config.pgo.probe_period_ms)
    } else {
        NOT_READY_PERIOD
    };
    Ok(Action::Requeue(period))
}

/// A cluster that cannot be built as it stands: `Failed`, saying why, and
/// looked at again only now and then (the user has to change something).
async fn refuse(
    clusters: &Api<Pgcluster>,
    cluster: &Pgcluster,
    previous: &PgclusterStatus,
    why: String,
) -> Result<Action, ReconcileError> {
    let status = PgclusterStatus {
        phase: ClusterPhase::Failed,
        message: Some(why),
        ..previous.clone()
    };
    write_status(clusters, cluster, status).await?;
    Ok(Action::Requeue(Duration::from_secs(30)))
}

/// A create that cannot be applied has failed; a running cluster keeps its
/// phase (and its failover timer). Either way the status says what went
/// wrong, and the error is returned for the retry.
async fn apply_failed(
    clusters: &Api<Pgcluster>,
    cluster: &Pgcluster,
    previous: &PgclusterStatus,
    primary: &str,
    e: ReconcileError,
) -> ReconcileError {
    let phase = match previous.phase {
        ClusterPhase::Creating | ClusterPhase::Failed => ClusterPhase::Failed,
        other => other,
    };
    let status = PgclusterStatus {
        phase,
        message: Some(e.to_string()),
        primary: Some(primary.to_string()),
        ..previous.clone()
    };
    match write_status(clusters, cluster, status).await {
        Ok(()) => e,
        Err(written) => written,
    }
}

pub(super) fn has_finalizer(finalizers: &Option<Vec<String>>, which: &str) -> bool {
    finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == which))
}

/// Secrets, volumes and the primary instance.
async fn apply_primary(ctx: &Context, want: &desired::DesiredCluster) -> Result<(), ReconcileError> {
    let p = &ctx.platform;
    for secret in &want.secrets {
        p.ensure_secret(secret).await.map_err(ReconcileError::Apply)?;
    }
    for volume in &want.volumes {
        p.ensure_volume(volume).await.map_err(ReconcileError::Apply)?;
    }
    for instance in want.instances.iter().filter(|i| i.role == MemberRole::Primary) {
        p.ensure_instance(instance).await.map_err(ReconcileError::Apply)?;
    }
    Ok(())
}

fn member(instance: &InstanceSpec, seen: Option<InstanceObservation>) -> MemberStatus {
    match seen {
        Some(s) => MemberStatus {
            name: instance.name.clone(),
            role: s.role.unwrap_or(instance.role),
            ready: s.ready,
            node: s.node,
            host: s.host,
            port: s.port,
            timeline: s.timeline,
            wal_lsn: s.wal_lsn,
            received_lsn: s.received_lsn,
            lag_bytes: None,
            message: if s.ready { None } else { s.fatal.or(s.message) },
        },
        None => MemberStatus {
            name: instance.name.clone(),
            role: instance.role,
            message: Some(match instance.role {
                MemberRole::Primary => "not created yet".into(),
                MemberRole::Replica => "waiting for the primary to be ready".into(),
            }),
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

pub(super) async fn write_status(
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
/// unless `--delete-data` asks otherwise). Then the finalizers are released.
async fn teardown(
    ctx: &Context,
    api: &Api<Pgcluster>,
    cluster: Pgcluster,
    members: Vec<Pgreplica>,
) -> Result<Action, ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let previous = cluster.status.clone().unwrap_or_default();
    if previous.phase != ClusterPhase::Deleting {
        let status = PgclusterStatus {
            phase: ClusterPhase::Deleting,
            message: Some(if wants_data_deleted(&cluster.metadata.annotations) {
                "stopping instances and closing services; then the data is removed".into()
            } else {
                "stopping instances and closing services; data is kept".into()
            }),
            ..previous.clone()
        };
        write_status(api, &cluster, status).await?;
    }
    let primary = previous
        .primary
        .clone()
        .unwrap_or_else(|| names::initial_primary(&name));
    let mut instances: Vec<String> = vec![primary.clone()];
    instances.extend(members.iter().filter_map(|r| r.metadata.name.clone()));
    instances.extend(previous.members.iter().map(|m| m.name.clone()));
    instances.sort();
    instances.dedup();
    for instance in &instances {
        ctx.platform
            .remove_instance(instance)
            .await
            .map_err(ReconcileError::teardown(format!("instance {instance}")))?;
    }
    for service in desired::services(&name, &cluster.spec, &primary, &[]) {
        ctx.platform
            .remove_service(&service.name)
            .await
            .map_err(ReconcileError::teardown(format!("service {}", service.name)))?;
    }
    // The whole cluster goes, primary included: no slot is left to drop.
    for replica in &members {
        replicas::release(ctx, replica).await?;
    }
    if wants_data_deleted(&cluster.metadata.annotations) {
        request_rmdata(ctx, &cluster).await?;
        // The passwords go with the data: a cluster made again under this
        // name must not get the old ones.
        for secret in desired::cluster(&name, &cluster.spec, &primary, &[]).secrets {
            ctx.platform
                .remove_secret(&secret.name)
                .await
                .map_err(ReconcileError::teardown(format!("secret {}", secret.name)))?;
        }
    }
    let mut current = api.get(&name).await.map_err(ReconcileError::Read)?;
    if let Some(f) = current.metadata.finalizers.as_mut() {
        f.retain(|x| x != labels::CLUSTER_FINALIZER);
    }
    api.replace(&current)
        .await
        .map_err(|source| ReconcileError::Write {
            what: format!("the finalizer of cluster {name}"),
            source,
        })?;
    tracing::info!(cluster = %name, delete_data = wants_data_deleted(&cluster.metadata.annotations), "cluster deleted");
    Ok(Action::Gone)
}

fn wants_data_deleted(annotations: &Option<std::collections::BTreeMap<String, String>>) -> bool {
    annotations
        .as_ref()
        .is_some_and(|a| a.get(labels::DELETE_DATA).is_some_and(|v| v == "true"))
}

/// `--delete-data`: every volume of the cluster goes, in rmdata tasks (all
/// its instances are stopped by now). A shared volume (`CLUSTER.PVC_NAME`)
/// is not the cluster's to remove.
async fn request_rmdata(ctx: &Context, cluster: &Pgcluster) -> Result<(), ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let volumes = ctx
        .platform
        .volumes()
        .await
        .map_err(ReconcileError::teardown(format!("the volumes of {name}")))?;
    for v in volumes
        .iter()
        .filter(|v| v.cluster == name && cluster.spec.pvc_name.as_deref() != Some(v.name.as_str()))
    {
        let uid = cluster.metadata.uid.as_deref().unwrap_or(&name);
        crate::task::rmdata::request(ctx, &name, &v.name, uid)
            .await
            .map_err(|source| ReconcileError::Write {
                what: format!("the data removal of volume {}", v.name),
                source,
            })?;
    }
    Ok(())
}

/// The status a Pgreplica should carry.
pub(super) fn replica_status(member: Option<&MemberStatus>) -> PgreplicaStatus {
    PgreplicaStatus {
        ready: member.is_some_and(|m| m.ready),
        message: member.and_then(|m| m.message.clone()),
    }
}
