//! The vocabulary of plans: every change a reconcile can make, each one
//! the operator can carry out again without harm.

use crate::desired::{InstanceSpec, SecretSpec, ServiceSpec, VolumeSpec};
use crate::event::Event;
use crate::failover::Step;
use pgo_api::PgreplicaStatus;
use pgo_api::cluster::PgclusterStatus;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    // The Pgcluster.
    AddFinalizer,
    RemoveFinalizer,
    /// Written through the status subresource; nothing if unchanged.
    WriteStatus(Box<PgclusterStatus>),
    /// The replica count goes from `from` to `to`, only if it is still
    /// `from`: a second run (or a user's change since) leaves it be.
    LowerReplicaCount {
        from: u32,
        to: u32,
    },
    /// The scaledown notes of replicas that are gone.
    DropScaledownNotes(Vec<String>),

    // Pgreplicas.
    /// New Pgreplicas, with names drawn when made.
    CreateReplicas(u32),
    /// The replica's data goes when it does.
    MarkDeleteData(String),
    DeleteReplica(String),
    /// Deleted if it was not, and its finalizer off: the store lets it go.
    ReleaseReplica(String),
    /// A replica that became the primary: finalizer off, then deleted, so
    /// no teardown of it ever runs.
    ForgetReplica(String),
    /// The Pgreplica of a former primary that comes back as a replica on
    /// its own volume; nothing if it exists.
    RejoinReplica(String),
    WriteReplicaStatus(String, PgreplicaStatus),

    // Tasks.
    StartFailover {
        from: String,
        target: String,
        reason: String,
        replace: bool,
        replicas: u32,
        /// The old primary comes back as a replica (a rolling update).
        rejoin: bool,
    },
    SetFailoverStep(Step),
    DeleteFailoverTask,
    SetRestoreStep(crate::restore::Step),
    DeleteRestoreTask,
    RequestRmdata {
        volume: String,
        owner_uid: String,
    },

    // The platform.
    EnsureSecret(SecretSpec),
    EnsureVolume(VolumeSpec),
    /// Failing, it fails the pass.
    EnsureInstance(Box<InstanceSpec>),
    /// Failing, it is noted on the replica and the pass goes on: one
    /// replica that cannot be applied must not stop the primary's watch.
    EnsureReplica(Box<InstanceSpec>),
    /// Its pod is made again from the current template (a rolling update's
    /// step), which an ensure never does to a running instance.
    RestartInstance(Box<InstanceSpec>),
    RemoveInstance(String),
    /// Stopped at once, however it is: for a primary that may be hung.
    FenceInstance(String),
    PromoteInstance(String),
    CreateSlot {
        primary: String,
        slot: String,
    },
    DropSlot {
        primary: String,
        slot: String,
    },
    EnsureService(ServiceSpec),
    RemoveService(String),
    RemoveSecret(String),
    /// Told to the user; failing, it is logged and the pass goes on.
    Record(Event),
}

/// When to look at the cluster again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    After(Duration),
    /// The cluster is gone.
    Gone,
}

impl Next {
    pub const NOW: Next = Next::After(Duration::ZERO);
}

/// What a failed action leaves behind besides the error.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum OnFailure {
    #[default]
    Nothing,
    /// The cluster's status says what went wrong
    /// ([`steady::apply_failed`](super::steady::apply_failed)).
    ClusterMessage,
    /// The failover task's status says what went wrong at `Step`.
    TaskMessage(Step),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub next: Next,
    pub on_failure: OnFailure,
}

impl Plan {
    pub fn new(actions: Vec<Action>, next: Next) -> Plan {
        Plan {
            actions,
            next,
            on_failure: OnFailure::Nothing,
        }
    }

    pub fn on_failure(mut self, on_failure: OnFailure) -> Plan {
        self.on_failure = on_failure;
        self
    }
}
