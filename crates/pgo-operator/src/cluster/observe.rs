//! The reads a plan is made from: what the store holds of a cluster, and
//! what the platform says of it.

use super::ReconcileError;
use crate::Context;
use pgo_api::{Pgcluster, Pgreplica, Pgtask};
use pgo_core::desired::DesiredCluster;
use pgo_core::names;
use pgo_core::plan::Stored;
use pgo_core::plan::steady::Seen;
use pgo_store::Api;
use std::collections::BTreeMap;

/// A cluster and what belongs to it, as stored.
pub struct Read {
    pub cluster: Pgcluster,
    pub replicas: Vec<Pgreplica>,
    pub failover: Option<Pgtask>,
    pub restore: Option<Pgtask>,
}

impl Read {
    pub fn stored(&self) -> Stored<'_> {
        Stored {
            cluster: &self.cluster,
            replicas: &self.replicas,
            failover: self.failover.as_ref(),
            restore: self.restore.as_ref(),
        }
    }
}

/// None when the cluster is gone.
pub async fn stored(ctx: &Context, name: &str) -> Result<Option<Read>, ReconcileError> {
    let Some(cluster) = Api::<Pgcluster>::new(ctx.store.clone())
        .get_opt(name)
        .await
        .map_err(ReconcileError::Read)?
    else {
        return Ok(None);
    };
    let (all, _) = Api::<Pgreplica>::new(ctx.store.clone())
        .list()
        .await
        .map_err(ReconcileError::Read)?;
    let replicas = all.into_iter().filter(|r| r.spec.cluster_name == name).collect();
    let failover = Api::<Pgtask>::new(ctx.store.clone())
        .get_opt(&names::failover_task(name))
        .await
        .map_err(ReconcileError::Read)?;
    let restore = Api::<Pgtask>::new(ctx.store.clone())
        .get_opt(&names::restore_task(name))
        .await
        .map_err(ReconcileError::Read)?;
    Ok(Some(Read {
        cluster,
        replicas,
        failover,
        restore,
    }))
}

/// Every desired instance, asked at once: one that hangs costs one timeout.
pub async fn seen(ctx: &Context, stored: &Stored<'_>, want: &DesiredCluster) -> Result<Seen, ReconcileError> {
    let name = stored.name();
    let asked = futures::future::join_all(
        want.instances
            .iter()
            .map(|i| ctx.platform.observe_instance(&i.name)),
    )
    .await;
    let mut instances = BTreeMap::new();
    for (i, seen) in want.instances.iter().zip(asked) {
        if let Some(o) = seen.map_err(ReconcileError::Observe)? {
            instances.insert(i.name.clone(), o);
        }
    }
    let pvc_owner = match &stored.cluster.spec.pvc_name {
        Some(pvc) => ctx
            .platform
            .volumes()
            .await
            .map_err(ReconcileError::Observe)?
            .into_iter()
            .find(|v| &v.name == pvc)
            .map(|v| v.cluster),
        None => None,
    };
    let refusal = ctx.platform.check(want).await.err().map(|e| e.to_string());
    if let Some(why) = &refusal {
        tracing::debug!(cluster = name, why, "the platform cannot build this cluster");
    }
    Ok(Seen {
        instances,
        strategies: ctx.platform.strategies(),
        pvc_owner,
        refusal,
    })
}

/// The names of the cluster's volumes.
pub async fn volumes(ctx: &Context, name: &str) -> Result<Vec<String>, ReconcileError> {
    Ok(ctx
        .platform
        .volumes()
        .await
        .map_err(ReconcileError::teardown(format!("the volumes of {name}")))?
        .into_iter()
        .filter(|v| v.cluster == name)
        .map(|v| v.name)
        .collect())
}
