//! One pass over one cluster: observe (what is stored, then what the
//! platform says), plan (pure, in `pgo_core::plan`), act, and the status
//! (planned from what was observed and what acting gave back).

use super::act::Act;
use super::observe;
use crate::Context;
use pgo_core::plan::steady::{self, Pass};
use pgo_core::plan::{self, Next, Plan, PlanError, Stage};
use pgo_platform::PlatformError;
use pgo_store::StoreError;
use std::time::Duration;

/// How soon to look again.
#[derive(Debug, PartialEq)]
pub enum Action {
    Requeue(Duration),
    /// The cluster no longer exists.
    Gone,
}

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
    /// A test's hook stopped the pass, as if the operator had been killed.
    #[error("stopped by a test hook")]
    Stopped,
}

impl From<PlanError> for ReconcileError {
    fn from(e: PlanError) -> Self {
        ReconcileError::Invalid {
            what: e.what,
            why: e.why,
        }
    }
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
    let Some(read) = observe::stored(ctx, name).await? else {
        return Ok(Action::Gone);
    };
    let stored = read.stored();
    let mut act = Act::new(ctx, &read);
    let plan = match plan::stage(&stored)? {
        Stage::Teardown => {
            let volumes = if plan::wants_data_deleted(&read.cluster.metadata.annotations)
                || plan::wants_backups_deleted(&read.cluster.metadata.annotations)
            {
                observe::volumes(ctx, name).await?
            } else {
                Vec::new()
            };
            plan::teardown::plan(&stored, &volumes, jiff::Timestamp::now())
        }
        Stage::Finalize => Plan::new(vec![plan::Action::AddFinalizer], Next::NOW),
        Stage::Failover(task) => plan::failover::plan(&stored, &task, jiff::Timestamp::now()),
        Stage::Restore(task) => {
            let seen = match task.step {
                pgo_core::restore::Step::Restore => ctx
                    .platform
                    .observe_instance(&stored.primary())
                    .await
                    .map_err(ReconcileError::Observe)?,
                pgo_core::restore::Step::Stop | pgo_core::restore::Step::Finish => None,
            };
            plan::restore::plan(&stored, &task, seen.as_ref(), jiff::Timestamp::now())
        }
        Stage::Scaledown(moves) => plan::scaledown::plan(&moves),
        Stage::Steady => {
            let want = steady::desired(&stored);
            let seen = observe::seen(ctx, &stored, &want).await?;
            match steady::apply(&stored, &want, &seen, jiff::Timestamp::now()) {
                Pass::Only(plan) => plan,
                Pass::ThenStatus(plan) => {
                    let applied = act.run(plan).await?;
                    steady::status(
                        &stored,
                        &want,
                        &seen,
                        &applied,
                        jiff::Timestamp::now(),
                        &ctx.config,
                    )
                }
            }
        }
    };
    let next = plan.next;
    act.run(plan).await?;
    Ok(match next {
        Next::After(d) => Action::Requeue(d),
        Next::Gone => Action::Gone,
    })
}
