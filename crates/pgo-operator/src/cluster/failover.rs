//! A failover, driven one step at a time from a Pgtask so that an operator
//! that stops half-way finishes it when it starts again. Every step may run
//! twice. While a failover task exists the cluster's ordinary reconcile does
//! nothing else, so there is never more than one failover per cluster.
//!
//! 1. **switch**: the store names the target as primary. From here on the
//!    old primary is not in the desired state, so nothing restarts it.
//! 2. **fence**: the old primary's instance is stopped (a fast shutdown when
//!    it can: connected replicas then have all of its WAL; killed when hung).
//!    Its volume is kept.
//! 3. **promote**: the target is configured as primary and promoted, once it
//!    has replayed everything it received.
//! 4. **finish**: slots for the other replicas on the new primary; the
//!    promoted replica's Pgreplica is forgotten (not torn down); the replica
//!    count is kept (a replacement is made) or lowered; the history is
//!    written and the task removed. The next reconcile repoints the services
//!    and the other replicas.

use super::reconcile::{Action, ReconcileError, write_status};
use super::replicas;
use crate::Context;
use pgo_api::cluster::{FailoverRecord, PgclusterStatus};
use pgo_api::{Pgcluster, Pgreplica, Pgtask, PgtaskStatus};
use pgo_core::desired;
use pgo_core::failover::{FROM, REASON, REPLACE, Step, TARGET};
use pgo_core::names;
use pgo_store::Api;
use std::time::Duration;

/// How many failovers a cluster's status remembers.
const HISTORY: usize = 10;

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn elapsed_ms(since: Option<&str>) -> u64 {
    since
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| {
            let d = jiff::Timestamp::now().duration_since(t);
            u64::try_from(d.as_millis()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The ready replica an automatic failover would promote.
pub fn choose_target(primary: &str, members: &[pgo_api::cluster::MemberStatus]) -> Option<String> {
    pgo_core::failover::choose_target(primary, members).map(|m| m.name.clone())
}

/// Records a new failover task; the next pass starts driving it.
pub async fn start(
    ctx: &Context,
    cluster: &str,
    from: &str,
    target: &str,
    reason: &str,
    replace: bool,
) -> Result<(), ReconcileError> {
    tracing::warn!(cluster, from, to = target, reason, "starting a failover");
    let task = pgo_core::failover::task(cluster, from, target, reason, replace);
    match Api::<Pgtask>::new(ctx.store.clone()).create(&task).await {
        Ok(_) => Ok(()),
        // One is under way already: that one is driven.
        Err(pgo_store::StoreError::AlreadyExists { .. }) => Ok(()),
        Err(source) => Err(ReconcileError::Write {
            what: format!("a failover task for {cluster}"),
            source,
        }),
    }
}

/// The cluster's unfinished failover, if any.
pub async fn active(ctx: &Context, cluster: &str) -> Result<Option<Pgtask>, ReconcileError> {
    Api::<Pgtask>::new(ctx.store.clone())
        .get_opt(&names::failover_task(cluster))
        .await
        .map_err(ReconcileError::Read)
}

fn param<'a>(task: &'a Pgtask, key: &str) -> &'a str {
    task.spec
        .parameters
        .get(key)
        .map(String::as_str)
        .unwrap_or_default()
}

async fn set_step(
    ctx: &Context,
    task: &Pgtask,
    step: Step,
    message: Option<String>,
) -> Result<(), ReconcileError> {
    let mut next = task.clone();
    let status = next.status.get_or_insert_with(PgtaskStatus::default);
    status.phase = "Running".into();
    status.step = Some(step.as_str().to_string());
    status.message = message;
    if status.started.is_none() {
        status.started = Some(now());
    }
    Api::<Pgtask>::new(ctx.store.clone())
        .replace_status(&next)
        .await
        .map_err(|source| ReconcileError::Write {
            what: format!("failover task {}", names::failover_task(&task.spec.cluster_name)),
            source,
        })?;
    Ok(())
}

/// Moves the failover one step on.
pub async fn drive(
    ctx: &Context,
    clusters: &Api<Pgcluster>,
    cluster: &Pgcluster,
    task: &Pgtask,
    members: &[Pgreplica],
) -> Result<Action, ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let (from, target) = (param(task, FROM), param(task, TARGET));
    let recorded = task.status.as_ref().and_then(|s| s.step.as_deref());
    let step = Step::of_task(recorded).map_err(|why| ReconcileError::Invalid {
        what: format!("failover task {}", names::failover_task(&task.spec.cluster_name)),
        why,
    })?;
    let status = cluster.status.clone().unwrap_or_default();
    match step {
        Step::Switch => {
            let target_live = members.iter().any(|r| {
                r.metadata.name.as_deref() == Some(target) && r.metadata.deletion_timestamp.is_none()
            });
            if status.primary.as_deref() != Some(target) {
                if !target_live {
                    return finish(
                        ctx,
                        clusters,
                        cluster,
                        task,
                        Err(format!("{target} is no longer a replica")),
                    )
                    .await;
                }
                tracing::info!(cluster = %name, from, to = target, reason = param(task, REASON), "failover: the store names the new primary");
                let next = PgclusterStatus {
                    primary: Some(target.to_string()),
                    ..status.clone()
                };
                write_status(clusters, cluster, next).await?;
            }
            set_step(ctx, task, Step::Fence, None).await?;
        }
        Step::Fence => {
            // A switchover of a primary last seen ready shuts it down in order
            // (its replicas then have all of its WAL); otherwise it is killed
            // at once, since hung storage would never let a shutdown finish.
            // An automatic failover means it was not ready, whatever an older
            // status says: it may start in the pass that first saw that. Not
            // asked again: asking a hung one costs a timeout.
            let healthy = param(task, REASON) == pgo_core::failover::MANUAL
                && status.members.iter().any(|m| m.name == from && m.ready);
            let fenced = if healthy {
                ctx.platform.remove_instance(from).await
            } else {
                ctx.platform.fence_instance(from).await
            };
            fenced.map_err(ReconcileError::teardown(format!("the old primary {from}")))?;
            tracing::info!(cluster = %name, instance = from, "failover: old primary fenced");
            if let Some(ms) = std::env::var("PGO_TEST_PAUSE_AFTER_FENCE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                // A test hook: room to kill the operator between fence and promote.
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            set_step(ctx, task, Step::Promote, None).await?;
        }
        Step::Promote => {
            let others: Vec<_> = members
                .iter()
                .filter(|r| r.metadata.name.as_deref() != Some(target))
                .map(replicas::input)
                .collect();
            let want = desired::cluster(&name, &cluster.spec, target, &others)
                .owned_by(cluster.metadata.uid.as_deref());
            if let Some(primary) = want.instances.iter().find(|i| i.name == target) {
                ctx.platform
                    .ensure_instance(primary)
                    .await
                    .map_err(ReconcileError::Apply)?;
            }
            if let Err(e) = ctx.platform.promote_instance(target).await {
                tracing::warn!(cluster = %name, target, error = %e, "failover: promotion failed; retrying");
                set_step(ctx, task, Step::Promote, Some(e.to_string())).await?;
                return Ok(Action::Requeue(Duration::from_millis(500)));
            }
            tracing::info!(cluster = %name, target, "failover: promoted");
            set_step(ctx, task, Step::Finish, None).await?;
        }
        Step::Finish => {
            for other in members
                .iter()
                .filter_map(|r| r.metadata.name.as_deref())
                .filter(|n| *n != target)
            {
                ctx.platform
                    .create_replication_slot(target, &names::replication_slot(other))
                    .await
                    .map_err(ReconcileError::Apply)?;
            }
            if let Some(promoted) = members
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(target))
            {
                replicas::forget(ctx, promoted).await?;
            }
            if param(task, REPLACE) == "false" && cluster.spec.replicas > 0 {
                let mut fewer = clusters.get(&name).await.map_err(ReconcileError::Read)?;
                fewer.spec.replicas = cluster.spec.replicas - 1;
                clusters
                    .replace(&fewer)
                    .await
                    .map_err(|source| ReconcileError::Write {
                        what: format!("the replica count of {name}"),
                        source,
                    })?;
            }
            let current = clusters.get(&name).await.map_err(ReconcileError::Read)?;
            return finish(ctx, clusters, &current, task, Ok(())).await;
        }
    }
    Ok(Action::Requeue(Duration::ZERO))
}

/// Writes the failover into the cluster's history and removes the task.
async fn finish(
    ctx: &Context,
    clusters: &Api<Pgcluster>,
    cluster: &Pgcluster,
    task: &Pgtask,
    outcome: Result<(), String>,
) -> Result<Action, ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let started = task.status.as_ref().and_then(|s| s.started.clone());
    let record = FailoverRecord {
        at: started.clone().unwrap_or_else(now),
        from: param(task, FROM).to_string(),
        to: param(task, TARGET).to_string(),
        reason: param(task, REASON).to_string(),
        duration_ms: elapsed_ms(started.as_deref()),
        outcome: match &outcome {
            Ok(()) => "succeeded".into(),
            Err(why) => format!("failed: {why}"),
        },
    };
    match &outcome {
        Ok(()) => {
            tracing::info!(cluster = %name, from = %record.from, to = %record.to, ms = record.duration_ms, "failover done")
        }
        Err(why) => {
            tracing::error!(cluster = %name, to = %record.to, why, "failover abandoned before anything changed")
        }
    }
    let mut status = cluster.status.clone().unwrap_or_default();
    status.failovers.push(record);
    let excess = status.failovers.len().saturating_sub(HISTORY);
    status.failovers.drain(..excess);
    status.not_ready_since = None;
    write_status(clusters, cluster, status).await?;
    Api::<Pgtask>::new(ctx.store.clone())
        .delete(&names::failover_task(&name))
        .await
        .or_else(|e| if e.is_not_found() { Ok(None) } else { Err(e) })
        .map_err(|source| ReconcileError::Write {
            what: format!("failover task of {name}"),
            source,
        })?;
    Ok(Action::Requeue(Duration::ZERO))
}
