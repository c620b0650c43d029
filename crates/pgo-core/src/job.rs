//! Work the operator hands to the platform to run to its end, apart from
//! any instance: a process on the local platform, a Job on Kubernetes.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Unique among the platform's jobs; the object it serves (a Pgbackup).
    pub name: String,
    pub cluster: String,
    pub work: JobWork,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum JobWork {
    /// A pgBackRest command for `instance`'s stanza (a backup, an expire),
    /// with `standby` as the second database host of a backup taken from
    /// a replica. The job then reports the repository's `info`.
    Backrest {
        instance: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        standby: Option<String>,
        args: Vec<String>,
    },
    /// A pg_basebackup copy of `instance` into `path` (relative, no `..`)
    /// of `volume`. The job then reports the copy as a
    /// [`pgo_api::backup::RepoBackup`] labelled with its path.
    Basebackup {
        instance: String,
        volume: String,
        path: String,
    },
    /// A pgBackRest restore of `instance`'s repository into `volume`, a
    /// new data directory left ready to replay to the target and promote
    /// when a cluster starts on it.
    Restore {
        instance: String,
        volume: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<pgo_api::cluster::PitrTarget>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
    },
}

/// How a job went. A job whose process is gone without saying how it ended
/// (killed) has failed: nothing runs it again behind the user's back.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Running,
    /// `output`: what the job reported (the repository's `info`, as JSON).
    Succeeded {
        output: String,
    },
    Failed {
        message: String,
    },
}

pub use pgo_api::job::JobResult;

impl From<JobResult> for JobState {
    fn from(r: JobResult) -> JobState {
        if r.succeeded {
            JobState::Succeeded { output: r.output }
        } else {
            JobState::Failed { message: r.message }
        }
    }
}
