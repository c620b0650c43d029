//! A deleted cluster: instances and services go; volumes and secrets stay
//! unless `--delete-data` asked otherwise. Then the finalizer comes off.

use super::action::{Action, Next, Plan};
use super::conditions::{self, Activity};
use super::{Stored, wants_backups_deleted, wants_data_deleted};
use crate::desired;
use crate::event::Reason;
use crate::names;
use pgo_api::cluster::{ClusterPhase, PgclusterStatus};

/// `volumes`: the cluster's volumes, as the platform lists them (only
/// asked for when the data goes).
pub fn plan(stored: &Stored<'_>, volumes: &[String], now: jiff::Timestamp) -> Plan {
    let name = stored.name();
    let delete_data = wants_data_deleted(&stored.cluster.metadata.annotations);
    let delete_backups = wants_backups_deleted(&stored.cluster.metadata.annotations);
    let previous = stored.status();
    let primary = stored.primary();
    let mut actions = Vec::new();
    if previous.phase != ClusterPhase::Deleting {
        let mut status = PgclusterStatus {
            phase: ClusterPhase::Deleting,
            message: Some(if delete_data {
                "stopping instances and closing services; then the data is removed".into()
            } else {
                "stopping instances and closing services; data is kept".into()
            }),
            ..previous.clone()
        };
        let spec = &stored.cluster.spec;
        conditions::set(&mut status, spec, Activity::Deleting, stored.generation(), now);
        let what = if delete_data {
            "with its data"
        } else {
            "keeping its data"
        };
        actions.push(stored.event(Reason::Deleting, format!("deleting the cluster, {what}")));
        actions.push(Action::WriteStatus(Box::new(status)));
    }
    let mut instances: Vec<String> = vec![primary.clone()];
    instances.extend(stored.replicas.iter().filter_map(|r| r.metadata.name.clone()));
    instances.extend(previous.members.iter().map(|m| m.name.clone()));
    instances.sort();
    instances.dedup();
    actions.extend(instances.into_iter().map(Action::RemoveInstance));
    actions.extend(
        desired::services(name, &stored.cluster.spec, &primary, &[])
            .into_iter()
            .map(|s| Action::RemoveService(s.name)),
    );
    // The whole cluster goes, primary included: no slot is left to drop.
    actions.extend(
        stored
            .replicas
            .iter()
            .filter_map(|r| r.metadata.name.clone())
            .map(Action::ReleaseReplica),
    );
    // A shared volume (`--pvc-name`) is not the cluster's to remove; its
    // backups go only when asked for (`--delete-backups`), as the spec says.
    let owner_uid = stored.uid().unwrap_or(name).to_string();
    actions.extend(
        volumes
            .iter()
            .filter(|v| stored.cluster.spec.pvc_name.as_ref() != Some(*v))
            .filter(|v| {
                if names::is_backup_volume(name, v) {
                    delete_backups
                } else {
                    delete_data
                }
            })
            .map(|v| Action::RequestRmdata {
                volume: v.clone(),
                owner_uid: owner_uid.clone(),
            }),
    );
    if delete_data {
        // The passwords go with the data: a cluster made again under this
        // name must not get the old ones.
        actions.extend(
            desired::cluster(name, &stored.cluster.spec, &primary, &[])
                .secrets
                .into_iter()
                .map(|s| Action::RemoveSecret(s.name)),
        );
    }
    actions.push(Action::RemoveFinalizer);
    Plan::new(actions, Next::Gone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;
    use pgo_api::labels;

    #[test]
    fn data_is_kept_unless_asked_and_a_shared_volume_is_never_removed() {
        let mut c = cluster("db");
        c.metadata.deletion_timestamp = Some(deleted_at());
        c.spec.pvc_name = Some("shared".into());
        let replicas = [replica("db", "db-a")];
        let volumes = ["shared".to_string(), "db-a".to_string()];
        let stored = Stored {
            cluster: &c,
            replicas: &replicas,
            failover: None,
            restore: None,
        };
        let kept = plan(&stored, &volumes, super::super::fixtures::at(0));
        assert_eq!(
            kinds(&kept.actions),
            [
                "Record",
                "WriteStatus",
                "RemoveInstance",
                "RemoveInstance",
                "RemoveService",
                "RemoveService",
                "ReleaseReplica",
                "RemoveFinalizer"
            ]
        );
        assert_eq!(kept.next, Next::Gone);

        c.metadata.annotations = Some([(labels::DELETE_DATA.into(), "true".into())].into());
        c.status = Some(PgclusterStatus {
            phase: ClusterPhase::Deleting,
            ..Default::default()
        });
        let stored = Stored {
            cluster: &c,
            replicas: &replicas,
            failover: None,
            restore: None,
        };
        let gone = plan(&stored, &volumes, super::super::fixtures::at(0));
        assert_eq!(
            kinds(&gone.actions)[0],
            "RemoveInstance",
            "Deleting is written once"
        );
        let rmdata: Vec<_> = gone
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::RequestRmdata { volume, .. } => Some(volume.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(rmdata, ["db-a"]);
        assert!(gone.actions.iter().any(|a| matches!(a, Action::RemoveSecret(_))));
    }

    #[test]
    fn backups_go_only_with_delete_backups() {
        let volumes = ["db".to_string(), "db-backrestrepo".to_string()];
        let removed = |annotations: &[&str]| {
            let mut c = cluster("db");
            c.metadata.deletion_timestamp = Some(deleted_at());
            c.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|a| (a.to_string(), "true".to_string()))
                    .collect(),
            );
            let stored = Stored {
                cluster: &c,
                replicas: &[],
                failover: None,
                restore: None,
            };
            let p = plan(&stored, &volumes, super::super::fixtures::at(0));
            p.actions
                .iter()
                .filter_map(|a| match a {
                    Action::RequestRmdata { volume, .. } => Some(volume.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert!(removed(&[]).is_empty());
        assert_eq!(removed(&[labels::DELETE_DATA]), ["db"]);
        assert_eq!(removed(&[labels::DELETE_BACKUPS]), ["db-backrestrepo"]);
        assert_eq!(
            removed(&[labels::DELETE_DATA, labels::DELETE_BACKUPS]),
            ["db", "db-backrestrepo"]
        );
    }
}
