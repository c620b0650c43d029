//! Jobs that fill a new cluster's first volume before any pod of it runs:
//! a cluster's backups restored and replayed to a target
//! (`pgo restore --to-pvc`, `backrest-restore-job.json`), and a
//! pg_basebackup copy copied in (`--backup-pvc`, `seed-job.json`). Each
//! mounts the volume where an instance's pod does and works on the same
//! data directory, so the instance that starts on it later finds its data.

use crate::render::{self, RenderOptions};
use crate::templates::Templates;
use crate::{RenderError, repo_host};
use k8s_openapi::api::batch::v1::Job;
use pgo_api::cluster::PitrTarget;
use pgo_api::instance::InstanceConfig;
use serde_json::json;

/// Where the backup volume holding a copy is mounted in the seed Job.
const BACKUP_MOUNT: &str = "/backup";

/// A restore Job: `pgo restore --to-pvc`, or the first data of a cluster
/// restored from a deleted one's repository.
pub struct RestoreJob<'a> {
    pub name: &'a str,
    /// The cluster the Job is one of the pods of, to NetworkPolicies.
    pub cluster: &'a str,
    /// How the Job reaches the repository.
    pub repository: Reach<'a>,
    /// The new volume.
    pub pvc: &'a str,
    /// An instance config whose repository settings are `repository`'s.
    pub config: &'a InstanceConfig,
    pub target: Option<&'a PitrTarget>,
    pub options: &'a [String],
}

/// How a restore Job reaches a cluster's repository.
pub enum Reach<'a> {
    /// Through that cluster's repository host, with its client
    /// certificate (the Job is labelled one of its pods).
    Host { cluster: &'a str },
    /// Its PVC mounted read-only at the repository host's path, when the
    /// cluster and its host are gone.
    Volume { pvc: &'a str },
}

/// The Job that seeds instance `config.name`'s first volume.
pub struct SeedJob<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    pub pvc: &'a str,
    /// The backup volume and the copy's path in it.
    pub copy_pvc: &'a str,
    pub path: &'a str,
    pub config: &'a InstanceConfig,
}

/// The Job that seeds instance `instance`.
pub fn seed_job_name(instance: &str) -> String {
    format!("{instance}-seed")
}

fn config_text(config: &InstanceConfig) -> Result<String, RenderError> {
    serde_json::to_string(config).map_err(|e| RenderError::Invalid(e.to_string()))
}

pub fn render_restore(
    job: &RestoreJob<'_>,
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<Job, RenderError> {
    let (secret, repo_pvc) = match job.repository {
        Reach::Host { cluster } => (Some(repo_host::name(cluster)), None),
        Reach::Volume { pvc } => (None, Some(pvc)),
    };
    let ctx = render::job_context(
        opts,
        job.cluster,
        job.name,
        json!({
            "pvc": job.pvc,
            "config": config_text(job.config)?,
            "data_dir": job.config.volume_dir,
            "secret": secret,
            "repo_pvc": repo_pvc,
            "pitr_type": job.target.map(|t| t.type_.as_str()),
            "pitr_target": job.target.map(|t| t.value.as_str()),
            "options": job.options,
        }),
    );
    render::render(templates, "backrest-restore-job.json", &ctx, "Job")
}

pub fn render_seed(
    job: &SeedJob<'_>,
    templates: &Templates,
    opts: &RenderOptions,
) -> Result<Job, RenderError> {
    let copy = pgo_api::backup::inside(std::path::Path::new(BACKUP_MOUNT), job.path)
        .map_err(RenderError::Invalid)?;
    let ctx = render::job_context(
        opts,
        job.cluster,
        job.name,
        json!({
            "pvc": job.pvc,
            "copy_pvc": job.copy_pvc,
            "copy": copy,
            "config": config_text(job.config)?,
        }),
    );
    render::render(templates, "seed-job.json", &ctx, "Job")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pgo_api::cluster::PitrType;
    use pgo_api::labels;

    fn config() -> InstanceConfig {
        let spec = pgo_api::PgclusterSpec {
            port: 5432,
            strategy: "1".into(),
            backrest: Some(Default::default()),
            ..Default::default()
        };
        let want = pgo_core::desired::cluster("db", &spec, "db", &[]);
        render::instance_config("db", &RenderOptions::default(), &want.instances[0])
    }

    fn args(job: &Job) -> Vec<String> {
        let spec = job.spec.as_ref().unwrap();
        let pod = spec.template.spec.as_ref().unwrap();
        pod.containers[0].args.clone().unwrap()
    }

    #[test]
    fn a_restore_job_works_on_the_new_volume_with_the_sources_certificate_and_its_target() {
        let config = config();
        let target = PitrTarget {
            type_: PitrType::Time,
            value: "2026-01-01T00:00:00Z".into(),
        };
        let options = vec!["--set=L".to_string()];
        let job = render_restore(
            &RestoreJob {
                name: "new-restore-to-pvc",
                cluster: "db",
                repository: Reach::Host { cluster: "db" },
                pvc: "new",
                config: &config,
                target: Some(&target),
                options: &options,
            },
            &Templates::embedded(),
            &RenderOptions::default(),
        )
        .unwrap();
        let a = args(&job);
        let after = |flag: &str| a.iter().position(|x| x == flag).map(|i| a[i + 1].clone());
        assert_eq!(after("--volume").as_deref(), Some("/pgdata/data"));
        assert_eq!(after("--pitr-type").as_deref(), Some("time"));
        assert_eq!(after("--pitr-target").as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(a.last().map(String::as_str), Some("--set=L"));
        let back: InstanceConfig = serde_json::from_str(&after("--instance-config-json").unwrap()).unwrap();
        assert_eq!(back, config);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let volumes = pod.volumes.unwrap();
        let claim = volumes
            .iter()
            .find_map(|v| v.persistent_volume_claim.as_ref())
            .unwrap();
        assert_eq!(claim.claim_name, "new");
        let secret = volumes.iter().find_map(|v| v.secret.as_ref()).unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("db-backrest-repo"));
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels.get(labels::CLUSTER).map(String::as_str), Some("db"));
    }

    #[test]
    fn a_seed_job_copies_from_the_backup_volume_read_only_and_refuses_a_path_outside_it() {
        let config = config();
        let seed = |path| SeedJob {
            name: "new-seed",
            cluster: "new",
            pvc: "new",
            copy_pvc: "db-backup",
            path,
            config: &config,
        };
        let job = render_seed(
            &seed("db-backups/2026"),
            &Templates::embedded(),
            &RenderOptions::default(),
        )
        .unwrap();
        let a = args(&job);
        let at = a.iter().position(|x| x == "--copy").unwrap();
        assert_eq!(a[at + 1], "/backup/db-backups/2026");
        let pod = job.spec.unwrap().template.spec.unwrap();
        let backup = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim.filter(|c| c.claim_name == "db-backup"))
            .unwrap();
        assert_eq!(backup.read_only, Some(true));
        for bad in ["../x", "/etc", ""] {
            let e = render_seed(&seed(bad), &Templates::embedded(), &RenderOptions::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("not a path inside the backup volume"), "{bad}: {e}");
        }
    }
}
