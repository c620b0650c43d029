//! A cluster with no failover, scaledown or deletion under way: its
//! desired state is made ([`apply`]), then its status is written from what
//! was observed, and an automatic failover started when its primary has
//! not been ready for long enough ([`status`]).

use super::action::{Action, Next, OnFailure, Plan};
use super::conditions::{self, Activity};
use super::{Stored, wants_data_deleted};
use crate::desired::{self, DesiredCluster, InstanceSpec, ReplicaInput};
use crate::event::Reason;
use crate::observed::{Endpoint, InstanceObservation};
use crate::status::{self, PrimaryObservation};
use crate::{failover, names, validate};
use pgo_api::PgreplicaStatus;
use pgo_api::cluster::{ClusterPhase, MemberRole, MemberStatus, PgclusterStatus, ServiceStatus};
use pgo_api::config::PgoConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// While anything is not ready it is looked at often: a create is waited on.
pub const NOT_READY_PERIOD: Duration = Duration::from_millis(50);
/// A cluster refused waits for the user to change something.
pub const REFUSED_PERIOD: Duration = Duration::from_secs(30);

/// What the platform says, asked before anything is changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// The cluster's instances that exist, by name.
    pub instances: BTreeMap<String, InstanceObservation>,
    /// The strategies the platform can build.
    pub strategies: Vec<String>,
    /// The cluster that owns the volume `spec.pvc_name` names, if it exists.
    pub pvc_owner: Option<String>,
    /// Why the platform cannot build [`desired`], if it cannot.
    pub refusal: Option<String>,
}

impl Seen {
    fn ready(&self, instance: &str) -> bool {
        self.instances.get(instance).is_some_and(|i| i.ready)
    }
}

/// What carrying out [`apply`] gave back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Where each service accepts connections.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Replicas that could not be applied, and why.
    pub replica_errors: BTreeMap<String, String>,
}

/// How a steady pass goes on after [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum Pass {
    /// The pass ends with this plan.
    Only(Plan),
    /// Carry this out, then plan the [`status`].
    ThenStatus(Plan),
}

/// Everything the cluster should have but its services. Made once per
/// pass and handed to [`apply`] and [`status`]: it is most of a steady
/// pass's allocations.
pub fn desired(stored: &Stored<'_>) -> DesiredCluster {
    let inputs: Vec<ReplicaInput> = stored.live().map(ReplicaInput::of).collect();
    desired::cluster(stored.name(), &stored.cluster.spec, &stored.primary(), &inputs).owned_by(stored.uid())
}

/// Why the cluster cannot be built as it stands, if it cannot.
fn refusal(stored: &Stored<'_>, seen: &Seen) -> Option<String> {
    let name = stored.name();
    // A spec written by hand may be one the apiserver would refuse.
    if let Err(e) = validate::stored_spec(name, &stored.cluster.spec, &seen.strategies) {
        return Some(e.to_string());
    }
    if let (Some(pvc), Some(owner)) = (&stored.cluster.spec.pvc_name, &seen.pvc_owner)
        && owner != name
    {
        return Some(format!("volume {pvc} belongs to cluster {owner}; it is not used"));
    }
    seen.refusal.clone()
}

/// `Failed`, saying why, and nothing made: a cluster is never half-created.
fn refuse(stored: &Stored<'_>, why: String, now: jiff::Timestamp) -> Plan {
    let previous = stored.status();
    let mut actions = Vec::new();
    if previous.phase != ClusterPhase::Failed || previous.message.as_ref() != Some(&why) {
        actions.push(stored.event(Reason::Refused, why.clone()));
    }
    let mut status = PgclusterStatus {
        phase: ClusterPhase::Failed,
        message: Some(why),
        ..previous
    };
    let spec = &stored.cluster.spec;
    conditions::set(&mut status, spec, Activity::Steady, stored.generation(), now);
    actions.push(Action::WriteStatus(Box::new(status)));
    Plan::new(actions, Next::After(REFUSED_PERIOD))
}

/// Secrets, volumes and the primary first; then leaving replicas go (once
/// the primary no longer waits on them); then replicas are made, once the
/// primary can be copied, so they all bootstrap at once.
pub fn apply(stored: &Stored<'_>, want: &DesiredCluster, seen: &Seen, now: jiff::Timestamp) -> Pass {
    if let Some(why) = refusal(stored, seen) {
        return Pass::Only(refuse(stored, why, now));
    }
    let name = stored.name();
    let spec = &stored.cluster.spec;
    let primary = stored.primary();
    let mut actions: Vec<Action> = want.secrets.iter().cloned().map(Action::EnsureSecret).collect();
    actions.extend(want.volumes.iter().cloned().map(Action::EnsureVolume));
    actions.extend(
        want.instances
            .iter()
            .filter(|i| i.role == MemberRole::Primary)
            .map(|i| Action::EnsureInstance(Box::new(i.clone()))),
    );
    for r in stored.leaving() {
        let replica = r.metadata.name.clone().unwrap_or_default();
        actions.push(Action::RemoveInstance(replica.clone()));
        // Until the slot is dropped the finalizer stays, and the next pass
        // tries again (the primary's walsender may need a moment).
        actions.push(Action::DropSlot {
            primary: primary.clone(),
            slot: names::replication_slot(&replica),
        });
        if wants_data_deleted(&r.metadata.annotations) {
            // In a task of its own: on Kubernetes a Job that may take a
            // while, whose outcome should outlive the replica.
            actions.push(Action::RequestRmdata {
                volume: names::volume_of(name, None, &replica),
                owner_uid: r.metadata.uid.clone().unwrap_or_else(|| replica.clone()),
            });
        }
        actions.push(Action::ReleaseReplica(replica));
    }
    let primary_ready = seen.ready(&primary);
    let live = stored.live().count() as u32;
    if primary_ready && live < spec.replicas {
        actions.push(Action::CreateReplicas(spec.replicas - live));
        return Pass::Only(Plan::new(actions, Next::NOW).on_failure(OnFailure::ClusterMessage));
    }
    actions.extend(
        want.instances
            .iter()
            .filter(|i| i.role == MemberRole::Replica)
            .filter(|i| primary_ready || seen.instances.contains_key(&i.name))
            .map(|i| Action::EnsureReplica(Box::new(i.clone()))),
    );
    // The replica service only routes to replicas that are ready.
    let ready = ready_replicas(want, &primary, seen);
    actions.extend(
        desired::services(name, spec, &primary, &ready)
            .into_iter()
            .map(|mut s| {
                s.owner_uid = stored.uid().map(str::to_string);
                Action::EnsureService(s)
            }),
    );
    Pass::ThenStatus(Plan::new(actions, Next::NOW).on_failure(OnFailure::ClusterMessage))
}

fn ready_replicas(want: &DesiredCluster, primary: &str, seen: &Seen) -> Vec<String> {
    want.instances
        .iter()
        .filter(|i| i.name != primary && seen.ready(&i.name))
        .map(|i| i.name.clone())
        .collect()
}

/// The status after an ensure failed: a create that cannot be applied has
/// failed; a running cluster keeps its phase (and its failover timer).
pub fn apply_failed(stored: &Stored<'_>, why: String, now: jiff::Timestamp) -> PgclusterStatus {
    let previous = stored.status();
    let phase = match previous.phase {
        ClusterPhase::Creating | ClusterPhase::Failed => ClusterPhase::Failed,
        other => other,
    };
    let mut status = PgclusterStatus {
        phase,
        message: Some(why),
        primary: Some(stored.primary()),
        ..previous
    };
    conditions::set(
        &mut status,
        &stored.cluster.spec,
        Activity::Steady,
        stored.generation(),
        now,
    );
    status
}

/// The status from what was seen, the replicas' statuses, and, when the
/// primary has not been ready for `AutofailSleepSeconds`, a failover.
pub fn status(
    stored: &Stored<'_>,
    want: &DesiredCluster,
    seen: &Seen,
    applied: &Applied,
    now: jiff::Timestamp,
    config: &PgoConfig,
) -> Plan {
    let name = stored.name();
    let spec = &stored.cluster.spec;
    let primary = stored.primary();
    let previous = stored.status();
    let primary_seen = seen.instances.get(&primary);

    let mut members: Vec<MemberStatus> = want
        .instances
        .iter()
        .map(|i| {
            let mut m = member(i, seen.instances.get(&i.name), seen.ready(&primary));
            if let Some(e) = applied.replica_errors.get(&i.name) {
                m.message = Some(e.clone());
            }
            m
        })
        .collect();
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
    let ready = ready_replicas(want, &primary, seen);
    let services = desired::services(name, spec, &primary, &ready)
        .into_iter()
        .map(|s| {
            let at = applied.endpoints.get(&s.name);
            ServiceStatus {
                host: at.map(|e| e.host.clone()).unwrap_or_default(),
                port: at.map_or(0, |e| e.port),
                targets: s.targets,
                name: s.name,
            }
        })
        .collect();

    let fatal = primary_seen
        .and_then(|s| s.fatal.as_ref())
        .map(|f| format!("instance {primary}: {f}"));
    let primary_member = members.iter().find(|m| m.name == primary);
    let observation = match (&fatal, primary_member) {
        (Some(f), _) => PrimaryObservation::Fatal(f),
        (None, Some(m)) => PrimaryObservation::Seen(m),
        (None, None) => PrimaryObservation::Missing,
    };
    let (phase, mut message) = status::phase(previous.phase, observation);
    if phase == ClusterPhase::Ready && spec.sync_replication && ready.is_empty() {
        message = Some("synchronous replication: no replica is ready, so commits wait until one is".into());
    }

    // Level-triggered: every pass looks at the primary afresh, and the
    // timer is a timestamp in the status, not an event. It starts when the
    // primary's failing check began, as its manager measured it: a write
    // stuck on frozen storage stopped it then, not at the timeout.
    let not_ready_since = (phase == ClusterPhase::NotReady).then(|| {
        let kept = previous
            .not_ready_since
            .as_deref()
            .and_then(|s| Some((s.parse::<jiff::Timestamp>().ok()?, s.to_string())));
        kept.unwrap_or_else(|| {
            let since = primary_seen
                .and_then(|s| s.failing_for_ms)
                .and_then(|ms| i64::try_from(ms).ok())
                .and_then(|ms| now.checked_sub(jiff::SignedDuration::from_millis(ms)).ok())
                .unwrap_or(now);
            (since, since.to_string())
        })
    });
    if let Some((since, _)) = &not_ready_since
        && spec.autofail
    {
        let waited = now.duration_since(*since).as_secs();
        let sleep = i64::try_from(config.pgo.autofail_sleep_seconds).unwrap_or(i64::MAX);
        if waited >= sleep {
            match failover::choose_target(&primary, &members) {
                Some(target) => {
                    let reason = format!(
                        "auto: primary {primary} not ready for {waited}s ({})",
                        message.as_deref().unwrap_or("no reason given")
                    );
                    let start = Action::StartFailover {
                        from: primary.clone(),
                        target: target.name.clone(),
                        reason,
                        replace: config.cluster.autofail_replace_replica,
                        replicas: spec.replicas,
                        rejoin: false,
                    };
                    return Plan::new(vec![start], Next::NOW);
                }
                None => {
                    message = Some(format!(
                        "auto failover: primary not ready for {waited}s and no ready replica to promote; still checking"
                    ));
                }
            }
        }
    }

    let mut actions: Vec<Action> = phase_event(stored, previous.phase, phase, message.as_deref())
        .into_iter()
        .collect();
    actions.extend(stored.live().filter_map(|r| {
        let replica = r.metadata.name.as_deref()?;
        let next = replica_status(members.iter().find(|m| m.name == replica));
        (r.status.as_ref() != Some(&next)).then(|| Action::WriteReplicaStatus(replica.to_string(), next))
    }));
    let everything_ready =
        phase == ClusterPhase::Ready && members.iter().all(|m| m.ready && m.message.is_none());
    if everything_ready && stored.leaving().next().is_none() && stored.live().count() as u32 == spec.replicas
    {
        actions.extend(rolling_update(stored, want, &primary, &members));
    }
    let mut next = PgclusterStatus {
        phase,
        message,
        primary: Some(primary),
        members,
        services,
        not_ready_since: not_ready_since.map(|(_, text)| text),
        failovers: previous.failovers,
        restores: previous.restores,
        observed_generation: stored.generation(),
        conditions: previous.conditions,
    };
    let activity = if stored.leaving().next().is_some() {
        Activity::ScalingDown
    } else {
        Activity::Steady
    };
    conditions::set(&mut next, spec, activity, stored.generation(), now);
    if stored.cluster.status.as_ref() != Some(&next) {
        actions.push(Action::WriteStatus(Box::new(next)));
    }
    let period = if everything_ready && stored.leaving().next().is_none() {
        Duration::from_millis(config.pgo.probe_period_ms)
    } else {
        NOT_READY_PERIOD
    };
    Plan::new(actions, Next::After(period))
}

/// The next step of a rolling update, taken only while every member is
/// ready, so one instance at a time is down: an outdated replica is
/// restarted; once none is, the primary hands over to an updated replica
/// and comes back as a replica itself (restarted on the new template as it
/// does). A primary with no replica is restarted in place: that costs the
/// downtime of a restart, and there is nothing to fail over to meanwhile.
fn rolling_update(
    stored: &Stored<'_>,
    want: &DesiredCluster,
    primary: &str,
    members: &[MemberStatus],
) -> Vec<Action> {
    let outdated: Vec<&MemberStatus> = members.iter().filter(|m| m.outdated).collect();
    // A replica started with max_connections (and the like) above its
    // primary's stops: a restart that lowers one goes primary first, in
    // place, at the cost of that restart's downtime.
    let lowers = outdated
        .iter()
        .find(|m| m.name == primary && !m.pending_lower.is_empty());
    let Some(first) = lowers
        .or_else(|| outdated.iter().find(|m| m.name != primary))
        .or_else(|| outdated.first())
    else {
        return Vec::new();
    };
    let restart = |name: &str, why: String| {
        let spec = want.instances.iter().find(|i| i.name == name)?;
        Some(vec![
            stored.event(Reason::RollingUpdate, why),
            Action::RestartInstance(Box::new(spec.clone())),
        ])
    };
    if first.name == primary && !first.pending_lower.is_empty() {
        return restart(
            primary,
            format!(
                "restarting primary {primary} first, in place: it lowers {}, which no replica may have above its primary's",
                first.pending_lower.join(", ")
            ),
        )
        .unwrap_or_default();
    }
    if first.name != primary {
        let left = outdated.len();
        return restart(
            &first.name,
            format!(
                "restarting replica {} on the current pod template ({left} to go)",
                first.name
            ),
        )
        .unwrap_or_default();
    }
    let updated: Vec<MemberStatus> = members.iter().filter(|m| !m.outdated).cloned().collect();
    match failover::choose_target(primary, &updated) {
        Some(target) => vec![
            stored.event(
                Reason::RollingUpdate,
                format!(
                    "switching over from {primary} to {}, then {primary} restarts as a replica",
                    target.name
                ),
            ),
            Action::StartFailover {
                from: primary.to_string(),
                target: target.name.clone(),
                reason: format!(
                    "{}: the primary runs an older pod template",
                    failover::ROLLING_UPDATE
                ),
                replace: true,
                replicas: stored.cluster.spec.replicas,
                rejoin: true,
            },
        ],
        None if members.iter().all(|m| m.name == primary) => restart(
            primary,
            format!("restarting {primary} on the current pod template; with no replica it is down meanwhile"),
        )
        .unwrap_or_default(),
        // No updated replica is ready to take over: nothing yet.
        None => Vec::new(),
    }
}

/// An event when the phase changes to one a user should hear of.
fn phase_event(
    stored: &Stored<'_>,
    from: ClusterPhase,
    to: ClusterPhase,
    message: Option<&str>,
) -> Option<Action> {
    if from == to {
        return None;
    }
    let why = message.map(|m| format!(": {m}")).unwrap_or_default();
    let (reason, text) = match to {
        ClusterPhase::Ready => (
            Reason::Ready,
            format!("the primary accepts connections (was {from}){why}"),
        ),
        ClusterPhase::NotReady => (Reason::NotReady, format!("the primary is not ready{why}")),
        ClusterPhase::Failed => (Reason::Failed, format!("the cluster failed{why}")),
        ClusterPhase::Creating | ClusterPhase::Deleting => return None,
    };
    Some(stored.event(reason, text))
}

fn member(instance: &InstanceSpec, seen: Option<&InstanceObservation>, primary_ready: bool) -> MemberStatus {
    match seen {
        Some(s) => MemberStatus {
            name: instance.name.clone(),
            role: s.role.unwrap_or(instance.role),
            ready: s.ready,
            node: s.node.clone(),
            host: s.host.clone(),
            port: s.port,
            timeline: s.timeline,
            wal_lsn: s.wal_lsn.clone(),
            received_lsn: s.received_lsn.clone(),
            lag_bytes: None,
            outdated: s.outdated,
            archive: s.archive.clone(),
            pending_restart: s.pending_restart.clone(),
            pending_lower: s.pending_lower.clone(),
            restarts: s.restarts,
            metrics: s.metrics.clone(),
            message: if s.ready {
                None
            } else {
                s.fatal.clone().or_else(|| s.message.clone())
            },
        },
        None => MemberStatus {
            name: instance.name.clone(),
            role: instance.role,
            message: Some(match instance.role {
                MemberRole::Primary => "not created yet".into(),
                MemberRole::Replica if primary_ready => "being made: not running yet".into(),
                MemberRole::Replica => "waiting for the primary to be ready".into(),
            }),
            ..Default::default()
        },
    }
}

/// The status a Pgreplica should carry.
pub fn replica_status(member: Option<&MemberStatus>) -> PgreplicaStatus {
    PgreplicaStatus {
        ready: member.is_some_and(|m| m.ready),
        message: member.and_then(|m| m.message.clone()),
    }
}

#[cfg(test)]
#[path = "steady_tests.rs"]
mod tests;
