//! Carries out a plan, one action at a time, in order. The first that fails
//! ends the pass (but for a replica that cannot be applied, which is noted
//! and passed over); what the plan says to leave behind on failure is
//! written, and the error returned for the retry.

use super::observe::Read;
use super::{ReconcileError, replicas};
use crate::Context;
use pgo_api::cluster::{FailoverRecord, MemberStatus, PgclusterStatus};
use pgo_api::{Pgcluster, Pgtask, PgtaskStatus, labels};
use pgo_core::failover::{Order, Step};
use pgo_core::names;
use pgo_core::plan::steady::{self, Applied};
use pgo_core::plan::{Action, OnFailure, Plan};
use pgo_store::{Api, StoreError};

/// A pass over one cluster, carrying out its plans.
pub struct Act<'a> {
    ctx: &'a Context,
    read: &'a Read,
    /// The cluster as last written by this pass.
    current: Pgcluster,
}

fn write(what: String) -> impl FnOnce(StoreError) -> ReconcileError {
    move |source| ReconcileError::Write { what, source }
}

impl<'a> Act<'a> {
    pub fn new(ctx: &'a Context, read: &'a Read) -> Act<'a> {
        Act {
            ctx,
            read,
            current: read.cluster.clone(),
        }
    }

    fn name(&self) -> &str {
        self.read.cluster.metadata.name.as_deref().unwrap_or_default()
    }

    fn clusters(&self) -> Api<Pgcluster> {
        Api::new(self.ctx.store.clone())
    }

    fn tasks(&self) -> Api<Pgtask> {
        Api::new(self.ctx.store.clone())
    }

    pub async fn run(&mut self, plan: Plan) -> Result<Applied, ReconcileError> {
        let mut applied = Applied::default();
        for action in plan.actions {
            if !self.ctx.hooks.may_act() {
                return Err(ReconcileError::Stopped);
            }
            let ensure = matches!(
                action,
                Action::EnsureSecret(_)
                    | Action::EnsureVolume(_)
                    | Action::EnsureInstance(_)
                    | Action::EnsureService(_)
            );
            if let Err(e) = self.one(action, &mut applied).await {
                return Err(self.failed(&plan.on_failure, ensure, e).await);
            }
        }
        Ok(applied)
    }

    /// What a failure leaves behind; the error to return.
    async fn failed(&mut self, on_failure: &OnFailure, ensure: bool, e: ReconcileError) -> ReconcileError {
        let written = match on_failure {
            OnFailure::ClusterMessage if ensure => {
                let status = steady::apply_failed(&self.read.stored(), e.to_string(), jiff::Timestamp::now());
                self.write_status(status).await
            }
            OnFailure::TaskMessage(step) => {
                tracing::warn!(cluster = self.name(), step = step.as_str(), error = %e, "failover: step failed; retrying");
                self.set_step(*step, Some(e.to_string())).await
            }
            _ => Ok(()),
        };
        match written {
            Ok(()) => e,
            Err(written) => written,
        }
    }

    async fn one(&mut self, action: Action, applied: &mut Applied) -> Result<(), ReconcileError> {
        let ctx = self.ctx;
        let p = &ctx.platform;
        let name = self.name().to_string();
        match action {
            Action::AddFinalizer => {
                let mut held = self.current.clone();
                held.metadata
                    .finalizers
                    .get_or_insert_with(Vec::new)
                    .push(labels::CLUSTER_FINALIZER.to_string());
                self.current = self
                    .clusters()
                    .replace(&held)
                    .await
                    .map_err(write(format!("the finalizer of cluster {name}")))?;
            }
            Action::RemoveFinalizer => {
                let mut current = self.current.clone();
                if let Some(f) = current.metadata.finalizers.as_mut() {
                    f.retain(|x| x != labels::CLUSTER_FINALIZER);
                }
                self.clusters()
                    .replace(&current)
                    .await
                    .map_err(write(format!("the finalizer of cluster {name}")))?;
                tracing::info!(cluster = %name, "cluster deleted");
            }
            Action::WriteStatus(status) => self.write_status(*status).await?,
            Action::LowerReplicaCount { from, to } => {
                let mut fewer = self.clusters().get(&name).await.map_err(ReconcileError::Read)?;
                if fewer.spec.replicas == from {
                    fewer.spec.replicas = to;
                    self.current = self
                        .clusters()
                        .replace(&fewer)
                        .await
                        .map_err(write(format!("the replica count of {name}")))?;
                }
            }
            Action::DropScaledownNotes(gone) => {
                let mut current = self.current.clone();
                if let Some(a) = current.metadata.annotations.as_mut() {
                    for replica in &gone {
                        a.remove(&labels::scaledown_key(replica));
                    }
                }
                self.current = self
                    .clusters()
                    .replace(&current)
                    .await
                    .map_err(write(format!("the scaledown notes of {name}")))?;
            }
            Action::CreateReplicas(n) => replicas::create(ctx, &self.current, n).await?,
            Action::MarkDeleteData(r) => replicas::mark_delete_data(ctx, &r).await?,
            Action::DeleteReplica(r) => replicas::delete(ctx, &r).await?,
            Action::ReleaseReplica(r) => replicas::release(ctx, &r).await?,
            Action::ForgetReplica(r) => replicas::forget(ctx, &r).await?,
            Action::RejoinReplica(r) => replicas::rejoin(ctx, &self.current, &r).await?,
            Action::WriteReplicaStatus(r, status) => {
                if let Some(replica) = self.read.stored().replica(&r) {
                    replicas::write_status(ctx, replica, status).await?;
                }
            }
            Action::StartFailover {
                from,
                target,
                reason,
                replace,
                replicas,
                rejoin,
            } => {
                tracing::warn!(cluster = %name, from, to = target, reason, "starting a failover");
                let order = Order {
                    from,
                    target,
                    reason,
                    replace,
                    replicas: Some(replicas),
                    rejoin,
                };
                match self
                    .tasks()
                    .create(&pgo_core::failover::task(&name, &order))
                    .await
                {
                    // One is under way already: that one is driven.
                    Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(source) => return Err(write(format!("a failover task for {name}"))(source)),
                }
            }
            Action::SetFailoverStep(step) => {
                if step == Step::Promote {
                    tracing::info!(cluster = %name, "failover: old primary fenced");
                    if let Some(pause) = ctx.hooks.pause_after_fence {
                        tokio::time::sleep(pause).await;
                    }
                }
                self.set_step(step, None).await?;
            }
            Action::SetRestoreStep(step) => self.set_restore_step(step).await?,
            Action::DeleteRestoreTask => {
                self.tasks()
                    .delete_opt(&names::restore_task(&name))
                    .await
                    .map_err(write(format!("restore task of {name}")))?;
            }
            Action::DeleteFailoverTask => {
                self.tasks()
                    .delete_opt(&names::failover_task(&name))
                    .await
                    .map_err(write(format!("failover task of {name}")))?;
            }
            Action::RequestRmdata { volume, owner_uid } => {
                crate::task::rmdata::request(ctx, &name, &volume, &owner_uid)
                    .await
                    .map_err(write(format!("the data removal of volume {volume}")))?;
            }
            Action::EnsureSecret(s) => p.ensure_secret(&s).await.map_err(ReconcileError::Apply)?,
            Action::EnsureVolume(v) => p.ensure_volume(&v).await.map_err(ReconcileError::Apply)?,
            Action::EnsureInstance(i) => p.ensure_instance(&i).await.map_err(ReconcileError::Apply)?,
            Action::EnsureReplica(i) => {
                if let Err(e) = p.ensure_instance(&i).await {
                    tracing::warn!(cluster = %name, replica = %i.name, error = %e, "cannot apply replica; trying again next pass");
                    applied.replica_errors.insert(i.name.clone(), e.to_string());
                }
            }
            Action::RestartInstance(i) => {
                p.restart_instance(&i).await.map_err(ReconcileError::Apply)?;
                tracing::info!(cluster = %name, instance = %i.name, "rolling update: instance restarted on the current pod template");
            }
            Action::RemoveInstance(i) => p
                .remove_instance(&i)
                .await
                .map_err(ReconcileError::teardown(format!("instance {i}")))?,
            Action::FenceInstance(i) => p
                .fence_instance(&i)
                .await
                .map_err(ReconcileError::teardown(format!("the old primary {i}")))?,
            Action::PromoteInstance(i) => {
                p.promote_instance(&i).await.map_err(ReconcileError::Apply)?;
                tracing::info!(cluster = %name, target = i, "failover: promoted");
            }
            Action::CreateSlot { primary, slot } => p
                .create_replication_slot(&primary, &slot)
                .await
                .map_err(ReconcileError::Apply)?,
            Action::DropSlot { primary, slot } => p
                .drop_replication_slot(&primary, &slot)
                .await
                .map_err(ReconcileError::teardown(format!("slot {slot}")))?,
            Action::EnsureService(s) => {
                let at = p.ensure_service(&s).await.map_err(ReconcileError::Apply)?;
                applied.endpoints.insert(s.name, at);
            }
            Action::RemoveService(s) => p
                .remove_service(&s)
                .await
                .map_err(ReconcileError::teardown(format!("service {s}")))?,
            Action::Record(event) => {
                let (reason, message) = (event.reason.as_str(), event.message.as_str());
                if event.reason.warning() {
                    tracing::warn!(cluster = %name, reason, message, "event");
                } else {
                    tracing::info!(cluster = %name, reason, message, "event");
                }
                if let Err(e) = p.record_event(&event).await {
                    tracing::warn!(cluster = %name, reason = event.reason.as_str(), error = %e, "cannot record an event");
                }
            }
            Action::RemoveSecret(s) => p
                .remove_secret(&s)
                .await
                .map_err(ReconcileError::teardown(format!("secret {s}")))?,
        }
        Ok(())
    }

    async fn write_status(&mut self, status: PgclusterStatus) -> Result<(), ReconcileError> {
        let previous = self.current.status.clone().unwrap_or_default();
        if self.current.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut next = self.current.clone();
        next.status = Some(status);
        self.current = self
            .clusters()
            .replace_status(&next)
            .await
            .map_err(ReconcileError::Status)?;
        if let Some(now) = &self.current.status {
            member_changes(self.name(), &previous.members, &now.members);
            if let Some(record) = ended_failover(&previous, now) {
                let took = std::time::Duration::from_millis(record.duration_ms);
                let succeeded = record.outcome == pgo_core::plan::failover::SUCCEEDED;
                self.ctx.metrics.failover(&record.reason, succeeded, took);
            }
        }
        Ok(())
    }

    async fn set_restore_step(&self, step: pgo_core::restore::Step) -> Result<(), ReconcileError> {
        let task = names::restore_task(self.name());
        self.set_task_step(&task, "restore", step.as_str(), None).await
    }

    async fn set_step(&self, step: Step, message: Option<String>) -> Result<(), ReconcileError> {
        let task = names::failover_task(self.name());
        self.set_task_step(&task, "failover", step.as_str(), Some(message))
            .await
    }

    /// Records where the cluster's task `task` (its failover or restore)
    /// is; `message`, when given, replaces the task's.
    async fn set_task_step(
        &self,
        task: &str,
        kind: &str,
        step: &str,
        message: Option<Option<String>>,
    ) -> Result<(), ReconcileError> {
        let what = || format!("{kind} task {task}");
        let Some(mut found) = self.tasks().get_opt(task).await.map_err(ReconcileError::Read)? else {
            return Err(ReconcileError::Invalid {
                what: what(),
                why: "it is gone".into(),
            });
        };
        let status = found.status.get_or_insert_with(PgtaskStatus::default);
        status.phase = "Running".into();
        status.step = Some(step.to_string());
        if let Some(m) = message {
            status.message = m;
        }
        if status.started.is_none() {
            status.started = Some(jiff::Timestamp::now().to_string());
        }
        self.tasks().replace_status(&found).await.map_err(write(what()))?;
        Ok(())
    }
}

/// The failover this write added to the history, if any.
fn ended_failover<'s>(before: &PgclusterStatus, after: &'s PgclusterStatus) -> Option<&'s FailoverRecord> {
    after
        .failovers
        .last()
        .filter(|record| before.failovers.last() != Some(*record))
}

/// A log line per member readiness change: the record the failover loop
/// builds on. Phase changes and failovers are events, logged as such.
fn member_changes(cluster: &str, before: &[MemberStatus], after: &[MemberStatus]) {
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
