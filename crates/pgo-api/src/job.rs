//! What a job reports when it ends: a job process, a Job's termination
//! message, and the repository host's answer to a backup Job.

use serde::{Deserialize, Serialize};

/// What a job writes when it ends, for whoever started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct JobResult {
    pub succeeded: bool,
    pub message: String,
    pub output: String,
}
