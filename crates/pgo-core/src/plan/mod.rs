//! A cluster's reconcile as decisions without I/O. The operator reads what
//! is stored, observes the platform, and these functions say what to do:
//! actions in order, and when to look again. The operator carries them out
//! one at a time. An operator may stop between any two, and the next pass
//! plans again from what is then stored, so every action may run twice.

pub mod action;
pub mod conditions;
pub mod failover;
pub mod restore;
pub mod scaledown;
pub mod steady;
pub mod teardown;

pub use action::{Action, Next, OnFailure, Plan};

use crate::event::{Event, Reason};
use crate::names;
use pgo_api::cluster::PgclusterStatus;
use pgo_api::{Pgcluster, Pgreplica, Pgtask, labels};

/// What the store holds of one cluster.
#[derive(Clone, Copy, Debug)]
pub struct Stored<'a> {
    pub cluster: &'a Pgcluster,
    /// Its Pgreplicas, leaving ones included.
    pub replicas: &'a [Pgreplica],
    /// Its unfinished failover.
    pub failover: Option<&'a Pgtask>,
    /// Its restore in place, until it is done.
    pub restore: Option<&'a Pgtask>,
}

impl<'a> Stored<'a> {
    pub fn name(&self) -> &'a str {
        self.cluster.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn uid(&self) -> Option<&'a str> {
        self.cluster.metadata.uid.as_deref()
    }

    pub fn generation(&self) -> Option<i64> {
        self.cluster.metadata.generation
    }

    /// An event about this cluster.
    pub fn event(&self, reason: Reason, message: impl Into<String>) -> Action {
        Action::Record(Event {
            cluster: self.name().to_string(),
            cluster_uid: self.uid().map(str::to_string),
            reason,
            message: message.into(),
        })
    }

    pub fn status(&self) -> PgclusterStatus {
        self.cluster.status.clone().unwrap_or_default()
    }

    /// The instance the status names primary; before the first status, the
    /// one a new cluster starts with.
    pub fn primary(&self) -> String {
        self.cluster
            .status
            .as_ref()
            .and_then(|s| s.primary.clone())
            .unwrap_or_else(|| names::initial_primary(self.name()))
    }

    /// Replicas not being deleted.
    pub fn live(&self) -> impl Iterator<Item = &'a Pgreplica> {
        self.replicas
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
    }

    /// Replicas deleted and waiting for their teardown.
    pub fn leaving(&self) -> impl Iterator<Item = &'a Pgreplica> {
        self.replicas
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_some())
    }

    pub fn replica(&self, name: &str) -> Option<&'a Pgreplica> {
        self.replicas
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
    }
}

/// Which of its lifecycles a cluster is in, from what is stored alone. Each
/// has its own plan, and needs its own observations (a failover asks
/// nothing of the instances: asking a hung one costs a timeout).
#[derive(Debug, PartialEq)]
pub enum Stage {
    /// Deleted: its instances and services go.
    Teardown,
    /// New: the finalizer goes on first, so a delete always tears down.
    Finalize,
    /// A failover has the cluster to itself until it is done.
    Failover(failover::Task),
    /// So has a restore in place.
    Restore(crate::restore::Task),
    /// Replicas named leaving are marked and deleted first.
    Scaledown(Vec<scaledown::Move>),
    /// Everything else: make the desired state, observe, write the status.
    Steady,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{what}: {why}")]
pub struct PlanError {
    pub what: String,
    pub why: String,
}

pub fn stage(stored: &Stored<'_>) -> Result<Stage, PlanError> {
    let meta = &stored.cluster.metadata;
    if meta.deletion_timestamp.is_some() {
        return Ok(Stage::Teardown);
    }
    if !has_finalizer(&meta.finalizers, labels::CLUSTER_FINALIZER) {
        return Ok(Stage::Finalize);
    }
    if let Some(task) = stored.failover {
        return Ok(Stage::Failover(failover::Task::of(task)?));
    }
    if let Some(task) = stored.restore {
        return Ok(Stage::Restore(crate::restore::Task::of(task)?));
    }
    let moves = scaledown::moves(stored)?;
    if !moves.is_empty() {
        return Ok(Stage::Scaledown(moves));
    }
    Ok(Stage::Steady)
}

pub fn has_finalizer(finalizers: &Option<Vec<String>>, which: &str) -> bool {
    finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == which))
}

/// True when `annotations` ask for the object's data to go with it.
pub fn wants_data_deleted(annotations: &Option<std::collections::BTreeMap<String, String>>) -> bool {
    annotations
        .as_ref()
        .is_some_and(|a| a.get(labels::DELETE_DATA).is_some_and(|v| v == "true"))
}

/// True when `annotations` ask for the cluster's backups to go with it.
pub fn wants_backups_deleted(annotations: &Option<std::collections::BTreeMap<String, String>>) -> bool {
    annotations
        .as_ref()
        .is_some_and(|a| a.get(labels::DELETE_BACKUPS).is_some_and(|v| v == "true"))
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::fixtures::*;
    use super::*;

    #[test]
    fn stages_in_order_of_precedence() {
        let task = failover_task("db", "db", "db-a", "manual", None);
        let mut noted = cluster("db");
        noted.metadata.annotations = Some([labels::scaledown_note("db-a", false)].into_iter().collect());
        let mut deleted = noted.clone();
        deleted.metadata.deletion_timestamp = Some(deleted_at());
        let mut new = cluster("db");
        new.metadata.finalizers = None;
        let replicas = [replica("db", "db-a")];
        type Case<'a> = (&'a str, &'a Pgcluster, Option<&'a Pgtask>, fn(&Stage) -> bool);
        let cases: Vec<Case> = vec![
            ("deleted, even mid-failover", &deleted, Some(&task), |s| {
                *s == Stage::Teardown
            }),
            ("no finalizer yet", &new, None, |s| *s == Stage::Finalize),
            ("a failover before a scaledown", &noted, Some(&task), |s| {
                matches!(s, Stage::Failover(_))
            }),
            ("a scaledown", &noted, None, |s| matches!(s, Stage::Scaledown(_))),
        ];
        for (case, c, t, want) in cases {
            let stored = Stored {
                cluster: c,
                replicas: &replicas,
                failover: t,
                restore: None,
            };
            let got = stage(&stored).unwrap();
            assert!(want(&got), "{case}: {got:?}");
        }
        let plain = cluster("db");
        let stored = Stored {
            cluster: &plain,
            replicas: &replicas,
            failover: None,
            restore: None,
        };
        assert_eq!(stage(&stored).unwrap(), Stage::Steady);
    }

    #[test]
    fn an_unknown_failover_step_or_scaledown_note_is_an_error() {
        let mut task = failover_task("db", "db", "db-a", "manual", None);
        task.status = Some(pgo_api::PgtaskStatus {
            step: Some("repoint".into()),
            ..Default::default()
        });
        let c = cluster("db");
        let stored = Stored {
            cluster: &c,
            replicas: &[],
            failover: Some(&task),
            restore: None,
        };
        let err = stage(&stored).unwrap_err();
        assert!(err.why.contains("unknown failover step"), "{err}");

        let mut noted = cluster("db");
        noted.metadata.annotations = Some(
            [("pgo.dev/scaledown.db-a".to_string(), "maybe".to_string())]
                .into_iter()
                .collect(),
        );
        let stored = Stored {
            cluster: &noted,
            replicas: &[],
            failover: None,
            restore: None,
        };
        let err = stage(&stored).unwrap_err();
        assert!(err.why.contains("unknown scaledown note"), "{err}");
    }
}
