//! Jobs on Kubernetes: a backup's work as a Job from the strategy's
//! template, its outcome read from the Job's status and its pod's
//! termination message (where the job writes what it made): a
//! pg_basebackup copy, or a pgBackRest command that the cluster's
//! repository host runs for the Job (a backup, an expire).

use super::apply::{api_error, not_ours, ours};
use super::{KubePlatform, instances, post_params};
use crate::render::{self, CopyJob, JOB_LABEL, Rendered, render_backup};
use crate::{repo_host, volume_jobs};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use pgo_api::cluster::MemberRole;
use pgo_api::instance::InstanceConfig;
use pgo_core::job::{JobSpec, JobState, JobWork};
use pgo_core::names;
use pgo_platform::PlatformError;

pub async fn start(p: &KubePlatform, job: &JobSpec) -> Result<(), PlatformError> {
    if let Some(existing) = p.get_opt::<Job>(&job.name).await? {
        return if ours(&existing.metadata) {
            Ok(())
        } else {
            Err(not_ours("Job", &job.name))
        };
    }
    match &job.work {
        JobWork::Basebackup {
            instance,
            volume,
            path,
        } => start_copy(p, job, instance, volume, path).await,
        JobWork::Backrest { standby, args, .. } => {
            let rendered = repo_host::render_job(
                &repo_host::BackrestJob {
                    name: &job.name,
                    cluster: &job.cluster,
                    standby: standby.as_deref(),
                    args,
                },
                &p.templates,
                &p.opts,
            )
            .map_err(|e| PlatformError::Invalid(e.to_string()))?;
            create(p, &job.name, &rendered).await
        }
        JobWork::Restore {
            instance,
            volume,
            target,
            options,
        } => {
            let config = instance_config(p, instance).await?;
            let rendered = volume_jobs::render_restore(
                &volume_jobs::RestoreJob {
                    name: &job.name,
                    cluster: &job.cluster,
                    repository: volume_jobs::Reach::Host {
                        cluster: &job.cluster,
                    },
                    pvc: volume,
                    config: &config,
                    target: target.as_ref(),
                    options,
                },
                &p.templates,
                &p.opts,
            )
            .map_err(|e| PlatformError::Invalid(e.to_string()))?;
            create(p, &job.name, &rendered).await
        }
    }
}

/// Instance `instance`'s manager config, as its ConfigMap holds it.
pub(super) async fn instance_config(
    p: &KubePlatform,
    instance: &str,
) -> Result<InstanceConfig, PlatformError> {
    let map = p
        .get_opt::<ConfigMap>(&render::config_map_name(instance))
        .await?
        .ok_or_else(|| PlatformError::Invalid(format!("instance {instance} does not exist")))?;
    render::config_in(&map).map_err(|e| PlatformError::Invalid(format!("instance {instance}: {e}")))
}

pub(super) async fn create(p: &KubePlatform, name: &str, rendered: &Job) -> Result<(), PlatformError> {
    match p.api::<Job>().create(&post_params(), rendered).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(api_error(&format!("creating Job {name}"), e)),
    }
    tracing::info!(job = %name, "backup job created");
    Ok(())
}

async fn start_copy(
    p: &KubePlatform,
    job: &JobSpec,
    instance: &str,
    volume: &str,
    path: &str,
) -> Result<(), PlatformError> {
    let seen = instances::observe(p, instance)
        .await?
        .ok_or_else(|| PlatformError::Invalid(format!("instance {instance} does not exist")))?;
    // A Service of the cluster, which the instance's certificate names;
    // a replica's copy comes through the replica Service.
    let service = match seen.role {
        Some(MemberRole::Primary) => names::primary_service(&job.cluster),
        _ => names::replica_service(&job.cluster),
    };
    let copy = CopyJob {
        name: &job.name,
        cluster: &job.cluster,
        host: format!("{service}.{}.svc", p.opts.namespace),
        port: seen.port,
        pvc: volume,
        path,
        instance,
    };
    let Rendered::Job(rendered) =
        render_backup(&copy, &p.templates, &p.opts).map_err(|e| PlatformError::Invalid(e.to_string()))?
    else {
        return Err(PlatformError::Invalid(
            "the backup template did not render a Job".into(),
        ));
    };
    create(p, &job.name, &rendered).await
}

/// What the Job's pod said as it ended (its termination message).
async fn said(p: &KubePlatform, name: &str) -> Result<String, PlatformError> {
    let pods = p.list_ours::<Pod>(Some((JOB_LABEL, name))).await?;
    Ok(pods
        .iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
        .find(|m| !m.trim().is_empty())
        .unwrap_or_default())
}

pub async fn state(p: &KubePlatform, name: &str) -> Result<Option<JobState>, PlatformError> {
    let Some(job) = p.get_opt::<Job>(name).await? else {
        return Ok(None);
    };
    if !ours(&job.metadata) {
        return Err(not_ours("Job", name));
    }
    if succeeded(&job) {
        let message = said(p, name).await?;
        // The job writes its result (JSON) as its termination message.
        return Ok(Some(
            match serde_json::from_str::<pgo_core::job::JobResult>(&message) {
                Ok(r) => r.into(),
                Err(e) => JobState::Failed {
                    message: format!("Job {name} succeeded but said no result ({e}): {message:?}"),
                },
            },
        ));
    }
    if let Some(condition) = failed(&job) {
        let said = said(p, name).await?;
        let why = serde_json::from_str::<pgo_core::job::JobResult>(&said)
            .map(|r| r.message)
            .unwrap_or(condition);
        return Ok(Some(JobState::Failed {
            message: format!("Job {name} failed: {why}"),
        }));
    }
    Ok(Some(JobState::Running))
}

/// Whether the Job ran to success.
pub(super) fn succeeded(job: &Job) -> bool {
    job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0
}

/// Why the Job failed, once it has: its `Failed` condition's words, or,
/// where no controller writes conditions, more failed pods than its
/// `backoffLimit` allows.
pub(super) fn failed(job: &Job) -> Option<String> {
    let status = job.status.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True");
    let limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
    match condition {
        Some(c) => Some(
            c.message
                .clone()
                .or(c.reason.clone())
                .unwrap_or_else(|| "no reason given".into()),
        ),
        None => (status.failed.unwrap_or(0) > limit).then(|| "no reason given".into()),
    }
}

pub async fn remove(p: &KubePlatform, name: &str) -> Result<(), PlatformError> {
    p.delete_ours::<Job>(name).await
}
