//! Removing a volume's data on Kubernetes: a Job from the rmdata template
//! mounts the PVC and empties it; the PVC is deleted only once the Job has
//! succeeded. A Job that fails leaves the PVC, and says so.

use super::apply::{api_error, not_ours, ours};
use super::jobs::{failed, succeeded};
use super::reads::delete_ours;
use super::{KubePlatform, post_params};
use crate::render::{Rendered, render_rmdata, rmdata_job_name};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::Api;
use pgo_api::labels;
use pgo_platform::PlatformError;

pub async fn remove(p: &KubePlatform, pvc: &str) -> Result<(), PlatformError> {
    let jobs: Api<Job> = p.api();
    let name = rmdata_job_name(pvc);
    let Some(claim) = p.get_opt::<PersistentVolumeClaim>(pvc).await? else {
        // Gone already (a second pass after the delete): tidy the Job.
        return delete_ours(&jobs, None, &name).await;
    };
    if !ours(&claim.metadata) {
        return Err(not_ours("PersistentVolumeClaim", pvc));
    }
    let Some(job) = jobs
        .get_opt(&name)
        .await
        .map_err(|e| api_error(&format!("Job {name}"), e))?
    else {
        let cluster = claim
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::CLUSTER).cloned())
            .unwrap_or_default();
        if pvc == pgo_core::names::backrest_repo_volume(&cluster) {
            super::repo_host::remove(p, &cluster).await?;
        }
        let Rendered::Job(job) = render_rmdata(&cluster, pvc, "data", &p.templates, &p.opts)
            .map_err(|e| PlatformError::Invalid(e.to_string()))?
        else {
            return Err(PlatformError::Invalid(
                "the rmdata template did not render a Job".into(),
            ));
        };
        match jobs.create(&post_params(), &job).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(api_error(&format!("creating Job {name}"), e)),
        }
        tracing::info!(pvc, job = %name, "rmdata job created");
        return Err(PlatformError::InProgress(format!(
            "rmdata Job {name} started for PVC {pvc}"
        )));
    };
    if !ours(&job.metadata) {
        return Err(not_ours("Job", &name));
    }
    if let Some(why) = failed(&job) {
        return Err(PlatformError::Failed(format!(
            "rmdata Job {name} failed ({why}); PVC {pvc} is kept"
        )));
    }
    if !succeeded(&job) {
        return Err(PlatformError::InProgress(format!("rmdata Job {name} is running")));
    }
    p.delete_ours::<PersistentVolumeClaim>(pvc).await?;
    delete_ours(&jobs, None, &name).await?;
    tracing::info!(pvc, "data removed and PVC deleted");
    Ok(())
}
