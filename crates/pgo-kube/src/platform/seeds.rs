//! A new cluster's first data filled by a Job before the first pod of its
//! primary is made, where the pod could not do it itself:
//! - `--backup-pvc`: the pg_basebackup copy copied in (`seed-job.json`).
//!   No pod of the cluster mounts the backup volume, which may go
//!   (`pgo delete backup`, the source's rmdata) long before the cluster
//!   does; a pod that mounted it would then never start again.
//! - `--restore-from` a deleted cluster: its repository host went with it,
//!   so the Job mounts the repository's PVC, which stays until
//!   `--delete-backups`, restores and replays to the target
//!   (`backrest-restore-job.json`). While the source's host runs, the pod
//!   restores itself through it, as on the local platform.

use super::{KubePlatform, jobs};
use crate::volume_jobs::{self, Reach, RestoreJob, SeedJob};
use crate::{RenderError, render, repo_host};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use pgo_api::instance::InstanceBackrest;
use pgo_core::desired::{InstanceRestoreSpec, InstanceSpec, SeedSpec};
use pgo_core::job::JobState;
use pgo_platform::PlatformError;
use std::path::PathBuf;

/// Whether the instance's volume holds its first data yet.
#[derive(Debug, PartialEq, Eq)]
pub enum Seeded {
    Done,
    Filling,
}

/// Where a Job brings an instance's first data from.
pub enum Source<'a> {
    Copy(&'a SeedSpec),
    Repository(&'a InstanceRestoreSpec),
}

impl Source<'_> {
    fn describe(&self) -> String {
        match self {
            Source::Copy(s) => format!("copying {}/{}", s.volume, s.path),
            Source::Repository(r) => format!("restoring from volume {}", r.repo_volume),
        }
    }
}

/// What a Job would fill instance `spec`'s first volume from: a copy, or
/// another cluster's repository (a restore in place is the pod's own).
pub fn wanted(spec: &InstanceSpec) -> Option<Source<'_>> {
    match (&spec.seed, &spec.restore) {
        (Some(seed), _) => Some(Source::Copy(seed)),
        (None, Some(r)) if r.id.is_none() && r.cluster != spec.cluster => Some(Source::Repository(r)),
        _ => None,
    }
}

/// What a Job must fill instance `spec`'s first volume from now: a
/// repository only once its host is gone.
async fn source<'a>(p: &KubePlatform, spec: &'a InstanceSpec) -> Result<Option<Source<'a>>, PlatformError> {
    match wanted(spec) {
        Some(Source::Repository(r)) => {
            let host_gone = p
                .get_opt::<Deployment>(&repo_host::name(&r.cluster))
                .await?
                .is_none();
            Ok(host_gone.then_some(Source::Repository(r)))
        }
        other => Ok(other),
    }
}

/// Done when nothing is to be filled; else starts the Job, or sees how it
/// went. A failed Job goes, so the next pass (after the cluster's
/// backoff) tries again; its words go to the cluster's message meanwhile.
/// A Job run again over its own work (an operator restarted after it
/// succeeded, before the claim was marked) finds the data there and
/// succeeds without doing it twice.
pub async fn ensure(p: &KubePlatform, spec: &InstanceSpec) -> Result<Seeded, PlatformError> {
    let Some(from) = source(p, spec).await? else {
        return Ok(Seeded::Done);
    };
    if filled(p, &spec.volume).await? {
        return Ok(Seeded::Done);
    }
    let name = volume_jobs::seed_job_name(&spec.name);
    let Some(job) = p.get_opt::<Job>(&name).await? else {
        let job = render(p, spec, &from).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        jobs::create(p, &name, &job).await?;
        return Ok(Seeded::Filling);
    };
    // The Job succeeds only when the data is whole in the volume; what it
    // says matters only when it failed.
    if jobs::succeeded(&job) {
        // The claim remembers it: a Deployment made again later (deleted
        // by hand) starts on the data, with no Job that would need the
        // copy or the repository, which may be gone by then.
        let patch = serde_json::json!({ "metadata": { "annotations": { FILLED: name } } });
        p.merge_patch::<PersistentVolumeClaim>(
            &spec.volume,
            &patch,
            &format!("marking PVC {} filled", spec.volume),
        )
        .await?;
        jobs::remove(p, &name).await?;
        return Ok(Seeded::Done);
    }
    if jobs::failed(&job).is_none() {
        return Ok(Seeded::Filling);
    }
    let why = match jobs::state(p, &name).await? {
        Some(JobState::Failed { message }) => message,
        other => format!("{other:?}"),
    };
    jobs::remove(p, &name).await?;
    Err(PlatformError::Invalid(format!(
        "{} into volume {} failed ({why}); it is tried again",
        from.describe(),
        spec.volume
    )))
}

/// The annotation of a PVC that a Job filled: the Job's name.
pub const FILLED: &str = "pgo.dev/filled-by";

/// Whether a Job filled the PVC `volume` already.
async fn filled(p: &KubePlatform, volume: &str) -> Result<bool, PlatformError> {
    Ok(p.get_opt::<PersistentVolumeClaim>(volume)
        .await?
        .is_some_and(|pvc| pvc.metadata.annotations.is_some_and(|a| a.contains_key(FILLED))))
}

/// The Job that fills instance `spec`'s first volume from `from`.
pub fn render(p: &KubePlatform, spec: &InstanceSpec, from: &Source<'_>) -> Result<Job, RenderError> {
    let mut config = render::instance_config(&spec.cluster, &p.opts, spec);
    let name = volume_jobs::seed_job_name(&spec.name);
    match from {
        Source::Copy(seed) => volume_jobs::render_seed(
            &SeedJob {
                name: &name,
                cluster: &spec.cluster,
                pvc: &spec.volume,
                copy_pvc: &seed.volume,
                path: &seed.path,
                config: &config,
            },
            &p.templates,
            &p.opts,
        ),
        Source::Repository(r) => {
            // The source's repository, mounted where its host had it.
            let own = config.backrest.take();
            config.backrest = Some(InstanceBackrest {
                repo_path: PathBuf::from(repo_host::REPO_PATH),
                stanza: r.stanza.clone(),
                archive_timeout_seconds: own.as_ref().map_or(60, |b| b.archive_timeout_seconds),
                retention_full: own.as_ref().map_or(1, |b| b.retention_full),
                retention_diff: None,
                remote: None,
            });
            config.restore = None;
            volume_jobs::render_restore(
                &RestoreJob {
                    name: &name,
                    cluster: &spec.cluster,
                    repository: Reach::Volume { pvc: &r.repo_volume },
                    pvc: &spec.volume,
                    config: &config,
                    target: r.target.as_ref(),
                    options: &r.options,
                },
                &p.templates,
                &p.opts,
            )
        }
    }
}

/// What an instance whose pod is not made yet is waiting for, when it is
/// a Job filling its volume.
pub async fn underway(p: &KubePlatform, instance: &str) -> Result<Option<String>, PlatformError> {
    let name = volume_jobs::seed_job_name(instance);
    let Some(job) = p.get_opt::<Job>(&name).await? else {
        return Ok(None);
    };
    if jobs::succeeded(&job) || jobs::failed(&job).is_some() {
        return Ok(None);
    }
    let restoring = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first()?.args.as_ref()?.get(1).cloned())
        .is_some_and(|verb| verb == "restore");
    let what = if restoring {
        "restoring the data directory from a pgBackRest repository and replaying WAL"
    } else {
        "copying the data directory from a pg_basebackup copy"
    };
    Ok(Some(format!("{what} (Job {name})")))
}
