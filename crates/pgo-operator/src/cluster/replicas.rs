//! A cluster's Pgreplicas, written. The operator makes a replica when the
//! cluster has fewer than `spec.replicas`, and never removes one on its
//! own: only a scaledown (or the cluster's deletion) does, so a crash
//! half-way through never takes the wrong one.

use super::ReconcileError;
use crate::Context;
use pgo_api::{Pgcluster, Pgreplica, PgreplicaSpec, PgreplicaStatus, StorageSpec, labels};
use pgo_core::names;
use pgo_core::plan::has_finalizer;
use pgo_store::{Api, StoreError};
use std::collections::BTreeMap;

fn api(ctx: &Context) -> Api<Pgreplica> {
    Api::new(ctx.store.clone())
}

/// Makes `count` Pgreplicas, with names drawn now.
pub async fn create(ctx: &Context, cluster: &Pgcluster, count: u32) -> Result<(), ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    for _ in 0..count {
        let suffix = pgo_platform::suffix(4).map_err(|_| ReconcileError::Write {
            what: format!("a replica of {name}"),
            source: pgo_store::StoreError::Backend("the system random source failed".into()),
        })?;
        let replica_name = names::replica(&name, &suffix);
        let replica = new(&name, &replica_name, cluster.spec.replica_storage.clone());
        match api(ctx).create(&replica).await {
            Ok(_) => tracing::info!(cluster = %name, replica = %replica_name, "replica added"),
            // A name taken by chance: the next pass draws another.
            Err(e @ pgo_store::StoreError::AlreadyExists { .. }) => {
                tracing::warn!(cluster = %name, error = %e, "replica name taken")
            }
            Err(source) => {
                return Err(ReconcileError::Write {
                    what: format!("replica {replica_name}"),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn new(cluster: &str, replica: &str, storage: StorageSpec) -> Pgreplica {
    let mut made = Pgreplica::new(
        replica,
        PgreplicaSpec {
            cluster_name: cluster.to_string(),
            storage,
            node_name: None,
        },
    );
    made.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    made.metadata.finalizers = Some(vec![labels::REPLICA_FINALIZER.to_string()]);
    made
}

/// A former primary, back as a replica under its own name, so its volume
/// (made from the primary's storage) is the one it uses.
pub async fn rejoin(ctx: &Context, cluster: &Pgcluster, replica: &str) -> Result<(), ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let made = new(&name, replica, cluster.spec.primary_storage.clone());
    match api(ctx).create(&made).await {
        Ok(_) => tracing::info!(cluster = %name, replica, "the old primary rejoins as a replica"),
        // Made by a pass that stopped after it: once is enough.
        Err(StoreError::AlreadyExists { .. }) => {}
        Err(source) => return Err(write(replica)(source)),
    }
    Ok(())
}

fn write(replica: &str) -> impl FnOnce(StoreError) -> ReconcileError {
    let what = format!("replica {replica}");
    move |source| ReconcileError::Write { what, source }
}

/// A replica scaled down with `--delete-data`: its data goes when it does.
pub async fn mark_delete_data(ctx: &Context, replica: &str) -> Result<(), ReconcileError> {
    let api = api(ctx);
    let Some(mut marked) = api.get_opt(replica).await.map_err(write(replica))? else {
        return Ok(());
    };
    marked
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(labels::DELETE_DATA.to_string(), "true".to_string());
    api.replace(&marked).await.map_err(write(replica))?;
    Ok(())
}

/// Deleted: its finalizer holds it until its teardown is done.
pub async fn delete(ctx: &Context, replica: &str) -> Result<(), ReconcileError> {
    api(ctx).delete_opt(replica).await.map_err(write(replica))?;
    tracing::info!(replica, "scaledown: replica leaving");
    Ok(())
}

/// Lets the store delete a replica: marks it deleted if it was not, and
/// takes its finalizer off.
pub async fn release(ctx: &Context, name: &str) -> Result<(), ReconcileError> {
    let api = api(ctx);
    let Some(mut current) = api.delete_opt(name).await.map_err(write(name))? else {
        return Ok(());
    };
    if has_finalizer(&current.metadata.finalizers, labels::REPLICA_FINALIZER) {
        if let Some(f) = current.metadata.finalizers.as_mut() {
            f.retain(|x| x != labels::REPLICA_FINALIZER);
        }
        api.replace(&current).await.map_err(write(name))?;
    }
    Ok(())
}

/// A replica that became the primary: its Pgreplica goes without tearing
/// anything down. The finalizer comes off first, so a crash in between
/// never leaves a deleted replica whose teardown would stop the primary.
pub async fn forget(ctx: &Context, name: &str) -> Result<(), ReconcileError> {
    let api = api(ctx);
    let Some(mut current) = api.get_opt(name).await.map_err(write(name))? else {
        return Ok(());
    };
    if has_finalizer(&current.metadata.finalizers, labels::REPLICA_FINALIZER) {
        if let Some(f) = current.metadata.finalizers.as_mut() {
            f.retain(|x| x != labels::REPLICA_FINALIZER);
        }
        api.replace(&current).await.map_err(write(name))?;
    }
    api.delete_opt(name).await.map_err(write(name))?;
    Ok(())
}

/// Writes a replica's readiness over the replica as read this pass (the
/// plan wrote it only because it changed); a write in between is a conflict.
pub async fn write_status(
    ctx: &Context,
    replica: &Pgreplica,
    status: PgreplicaStatus,
) -> Result<(), ReconcileError> {
    let mut next = replica.clone();
    next.status = Some(status);
    api(ctx)
        .replace_status(&next)
        .await
        .map_err(ReconcileError::Status)?;
    Ok(())
}
