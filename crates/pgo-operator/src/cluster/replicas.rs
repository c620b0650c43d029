//! A cluster's Pgreplicas: found, made, removed. The operator makes a
//! replica when the cluster has fewer than `spec.replicas`, and never
//! removes one on its own: only a scaledown (or the cluster's deletion)
//! does, so a crash half-way through never takes the wrong one.

use super::reconcile::{ReconcileError, has_finalizer, replica_status};
use crate::Context;
use pgo_api::cluster::MemberStatus;
use pgo_api::{Pgcluster, Pgreplica, PgreplicaSpec, labels};
use pgo_core::desired::ReplicaInput;
use pgo_core::names;
use pgo_store::Api;
use std::collections::BTreeMap;

fn api(ctx: &Context) -> Api<Pgreplica> {
    Api::new(ctx.store.clone())
}

/// The Pgreplicas of `cluster`, by name.
pub async fn of(ctx: &Context, cluster: &str) -> Result<Vec<Pgreplica>, ReconcileError> {
    let (all, _) = api(ctx).list().await.map_err(ReconcileError::Read)?;
    Ok(all
        .into_iter()
        .filter(|r| r.spec.cluster_name == cluster)
        .collect())
}

pub fn input(r: &Pgreplica) -> ReplicaInput {
    ReplicaInput {
        name: r.metadata.name.clone().unwrap_or_default(),
        storage: r.spec.storage.clone(),
        node_name: r.spec.node_name.clone(),
    }
}

/// Makes Pgreplicas until the cluster has `spec.replicas` of them.
pub async fn create_missing(ctx: &Context, cluster: &Pgcluster, have: u32) -> Result<(), ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    for _ in have..cluster.spec.replicas {
        let suffix = pgo_platform::suffix(4).map_err(|_| ReconcileError::Write {
            what: format!("a replica of {name}"),
            source: pgo_store::StoreError::Backend("the system random source failed".into()),
        })?;
        let replica_name = names::replica(&name, &suffix);
        let mut replica = Pgreplica::new(
            &replica_name,
            PgreplicaSpec {
                cluster_name: name.clone(),
                storage: cluster.spec.replica_storage.clone(),
                node_name: None,
            },
        );
        replica.metadata.labels = Some(BTreeMap::from([
            (labels::CLUSTER.to_string(), name.clone()),
            (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        ]));
        replica.metadata.finalizers = Some(vec![labels::REPLICA_FINALIZER.to_string()]);
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

/// Carries out the scaledowns recorded on the cluster (the count was lowered
/// in the same write): each replica named leaving is marked (its data to go,
/// if asked) and deleted; the note of one that is gone is dropped. True when
/// anything was written, so the pass starts again from what is stored.
pub async fn finish_scaledowns(
    ctx: &Context,
    clusters: &Api<Pgcluster>,
    cluster: &Pgcluster,
    members: &[Pgreplica],
) -> Result<bool, ReconcileError> {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let notes = labels::scaledowns(cluster.metadata.annotations.as_ref());
    let mut gone = Vec::new();
    let mut wrote = false;
    for (replica, delete_data) in notes {
        let write = |source| ReconcileError::Write {
            what: format!("the scaledown of replica {replica}"),
            source,
        };
        match members
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(replica.as_str()))
        {
            None => gone.push(replica),
            Some(r) if r.metadata.deletion_timestamp.is_some() => {}
            Some(r) => {
                if delete_data {
                    let mut marked = r.clone();
                    marked
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(labels::DELETE_DATA.to_string(), "true".to_string());
                    api(ctx).replace(&marked).await.map_err(write)?;
                }
                api(ctx).delete(&replica).await.map_err(write)?;
                tracing::info!(cluster = %name, replica, "scaledown: replica leaving");
                wrote = true;
            }
        }
    }
    if !gone.is_empty() {
        let mut current = clusters.get(&name).await.map_err(ReconcileError::Read)?;
        if let Some(a) = current.metadata.annotations.as_mut() {
            for replica in &gone {
                a.remove(&labels::scaledown_key(replica));
            }
        }
        clusters
            .replace(&current)
            .await
            .map_err(|source| ReconcileError::Write {
                what: format!("the scaledown notes of {name}"),
                source,
            })?;
        wrote = true;
    }
    Ok(wrote)
}

/// A replica being scaled down: its instance stops, its slot on the primary
/// is dropped (so the primary stops keeping WAL for it), its data goes if
/// asked, and then its finalizer is released.
pub async fn remove(ctx: &Context, primary: &str, replica: &Pgreplica) -> Result<(), ReconcileError> {
    let name = replica.metadata.name.clone().unwrap_or_default();
    ctx.platform
        .remove_instance(&name)
        .await
        .map_err(ReconcileError::teardown(format!("replica {name}")))?;
    // Until the slot is dropped the finalizer stays, and the next pass
    // tries again (the primary's walsender may need a moment to let go).
    ctx.platform
        .drop_replication_slot(primary, &names::replication_slot(&name))
        .await
        .map_err(ReconcileError::teardown(format!("the slot of replica {name}")))?;
    let delete_data = replica
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get(labels::DELETE_DATA).is_some_and(|v| v == "true"));
    if delete_data {
        // Its data goes in a task of its own: on Kubernetes that is a Job
        // that may take a while, and its outcome should outlive the replica.
        let volume = names::volume_of(&replica.spec.cluster_name, None, &name);
        let uid = replica.metadata.uid.as_deref().unwrap_or(&name);
        crate::task::rmdata::request(ctx, &replica.spec.cluster_name, &volume, uid)
            .await
            .map_err(|source| ReconcileError::Write {
                what: format!("the data removal of replica {name}"),
                source,
            })?;
    }
    release(ctx, replica).await?;
    tracing::info!(replica = %name, delete_data, "replica removed");
    Ok(())
}

/// Lets the store delete a replica: marks it deleted if it was not, and
/// takes its finalizer off.
pub async fn release(ctx: &Context, replica: &Pgreplica) -> Result<(), ReconcileError> {
    let name = replica.metadata.name.clone().unwrap_or_default();
    let write = |source| ReconcileError::Write {
        what: format!("replica {name}"),
        source,
    };
    let api = api(ctx);
    let Some(mut current) = api
        .delete(&name)
        .await
        .or_else(|e| if e.is_not_found() { Ok(None) } else { Err(e) })
        .map_err(write)?
    else {
        return Ok(());
    };
    if has_finalizer(&current.metadata.finalizers, labels::REPLICA_FINALIZER) {
        if let Some(f) = current.metadata.finalizers.as_mut() {
            f.retain(|x| x != labels::REPLICA_FINALIZER);
        }
        api.replace(&current).await.map_err(write)?;
    }
    Ok(())
}

/// A replica that became the primary: its Pgreplica goes without tearing
/// anything down. The finalizer comes off first, so a crash in between
/// never leaves a deleted replica whose teardown would stop the primary.
pub async fn forget(ctx: &Context, replica: &Pgreplica) -> Result<(), ReconcileError> {
    let name = replica.metadata.name.clone().unwrap_or_default();
    let write = |source| ReconcileError::Write {
        what: format!("replica {name}"),
        source,
    };
    let api = api(ctx);
    let Some(mut current) = api.get_opt(&name).await.map_err(write)? else {
        return Ok(());
    };
    if has_finalizer(&current.metadata.finalizers, labels::REPLICA_FINALIZER) {
        if let Some(f) = current.metadata.finalizers.as_mut() {
            f.retain(|x| x != labels::REPLICA_FINALIZER);
        }
        api.replace(&current).await.map_err(write)?;
    }
    api.delete(&name)
        .await
        .or_else(|e| if e.is_not_found() { Ok(None) } else { Err(e) })
        .map_err(write)?;
    Ok(())
}

/// Writes a replica's readiness into its Pgreplica when it changed.
pub async fn write_status(
    ctx: &Context,
    replica: &Pgreplica,
    member: Option<&MemberStatus>,
) -> Result<(), ReconcileError> {
    let status = replica_status(member);
    if replica.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = replica.clone();
    next.status = Some(status);
    api(ctx)
        .replace_status(&next)
        .await
        .map_err(ReconcileError::Status)?;
    Ok(())
}
