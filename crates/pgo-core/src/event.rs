//! What a user is told about a cluster beside its status: on Kubernetes an
//! Event on the Pgcluster (`kubectl describe pgcluster`), on the local
//! platform a line in the server's log.

/// Why, as Kubernetes Events name it: one CamelCase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The primary accepts connections.
    Ready,
    /// It did and does not any more.
    NotReady,
    /// It cannot proceed without a change from the user.
    Failed,
    /// The spec cannot be built as it stands.
    Refused,
    FailoverStarted,
    FailoverSucceeded,
    FailoverFailed,
    /// A member is restarted on the operator's current pod template.
    RollingUpdate,
    /// A volume stays larger than the cluster asks: a claim cannot shrink.
    VolumeNotShrunk,
    Deleting,
    RestoreStarted,
    Restored,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ready => "Ready",
            Reason::NotReady => "NotReady",
            Reason::Failed => "Failed",
            Reason::Refused => "Refused",
            Reason::FailoverStarted => "FailoverStarted",
            Reason::FailoverSucceeded => "FailoverSucceeded",
            Reason::FailoverFailed => "FailoverFailed",
            Reason::RollingUpdate => "RollingUpdate",
            Reason::VolumeNotShrunk => "VolumeNotShrunk",
            Reason::Deleting => "Deleting",
            Reason::RestoreStarted => "RestoreStarted",
            Reason::Restored => "Restored",
        }
    }

    /// Kubernetes' two event types: what needs a look is a warning.
    pub fn warning(self) -> bool {
        matches!(
            self,
            Reason::NotReady
                | Reason::Failed
                | Reason::Refused
                | Reason::FailoverStarted
                | Reason::FailoverFailed
                | Reason::VolumeNotShrunk
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub cluster: String,
    pub cluster_uid: Option<String>,
    pub reason: Reason,
    pub message: String,
}
