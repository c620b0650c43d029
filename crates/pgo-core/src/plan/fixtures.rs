//! Stored objects for the planner's tables.
#![allow(clippy::unwrap_used)]

use crate::failover::{self, Order};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pgo_api::cluster::MemberStatus;
use pgo_api::{Pgcluster, PgclusterSpec, Pgreplica, PgreplicaSpec, Pgtask, StorageSpec, labels};

pub fn at(ms: i64) -> jiff::Timestamp {
    "2026-01-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .checked_add(jiff::SignedDuration::from_millis(ms))
        .unwrap()
}

pub fn deleted_at() -> Time {
    Time(at(0))
}

pub fn cluster(name: &str) -> Pgcluster {
    let storage = StorageSpec {
        size: "1G".into(),
        ..Default::default()
    };
    let mut c = Pgcluster::new(
        name,
        PgclusterSpec {
            strategy: "1".into(),
            port: 5432,
            database: "userdb".into(),
            user: "testuser".into(),
            primary_storage: storage.clone(),
            replica_storage: storage,
            ..Default::default()
        },
    );
    c.metadata.uid = Some(format!("uid-{name}"));
    c.metadata.generation = Some(1);
    c.metadata.finalizers = Some(vec![labels::CLUSTER_FINALIZER.into()]);
    c
}

pub fn replica(cluster: &str, name: &str) -> Pgreplica {
    let mut r = Pgreplica::new(
        name,
        PgreplicaSpec {
            cluster_name: cluster.into(),
            ..Default::default()
        },
    );
    r.metadata.uid = Some(format!("uid-{name}"));
    r.metadata.finalizers = Some(vec![labels::REPLICA_FINALIZER.into()]);
    r
}

pub fn failover_task(cluster: &str, from: &str, target: &str, reason: &str, replace: Option<bool>) -> Pgtask {
    failover::task(
        cluster,
        &Order {
            from: from.into(),
            target: target.into(),
            reason: reason.into(),
            replace: replace.unwrap_or(true),
            replicas: Some(2),
            rejoin: reason.starts_with(failover::ROLLING_UPDATE),
        },
    )
}

pub fn member(name: &str, ready: bool) -> MemberStatus {
    MemberStatus {
        name: name.into(),
        ready,
        ..Default::default()
    }
}

/// Each action's variant name, in order: what a table of cases compares.
pub fn kinds<A: std::fmt::Debug>(actions: &[A]) -> Vec<String> {
    actions
        .iter()
        .map(|a| {
            format!("{a:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The backups a backup's plan marks expired.
pub fn marked(p: &crate::backup::Plan) -> Vec<&str> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            crate::backup::Action::MarkExpired { backup, .. } => Some(backup.as_str()),
            _ => None,
        })
        .collect()
}
