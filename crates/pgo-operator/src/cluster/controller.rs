//! Drives [`reconcile`](super::reconcile): on every watch event for a
//! cluster, and again for every cluster when its requeue time comes.

use super::reconcile::{Action, reconcile};
use crate::Context;
use futures::StreamExt;
use pgo_api::{Pgcluster, Pgreplica};
use pgo_store::{Api, Event};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

const TICK: Duration = Duration::from_millis(25);
const RETRY_LIST: Duration = Duration::from_secs(1);

pub async fn run(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let api: Api<Pgcluster> = Api::new(ctx.store.clone());
    let replicas: Api<Pgreplica> = Api::new(ctx.store.clone());
    while !*stop.borrow() {
        // List, then watch from the list's version: nothing is missed between.
        let watches = async {
            let (items, since) = api.list().await?;
            let events = api.watch(since).await?;
            let (_, since) = replicas.list().await?;
            let replica_events = replicas.watch(since).await?;
            Ok::<_, pgo_store::StoreError>((items, events, replica_events))
        };
        let (items, mut events, mut replica_events) = match watches.await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot list and watch clusters; retrying");
                tokio::time::sleep(RETRY_LIST).await;
                continue;
            }
        };
        let now = Instant::now();
        let mut due: HashMap<String, Instant> = items
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .map(|n| (n, now))
            .collect();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        let Some(name) = event.object().metadata.name.clone() else { continue };
                        match event {
                            Event::Deleted(_) => { due.remove(&name); }
                            _ => { due.insert(name, Instant::now()); }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the cluster watch ended; listing again");
                        break;
                    }
                    None => break,
                },
                // A replica's change is its cluster's business.
                event = replica_events.next() => match event {
                    Some(Ok(event)) => {
                        let cluster = event.object().spec.cluster_name.clone();
                        if !cluster.is_empty() {
                            due.insert(cluster, Instant::now());
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the replica watch ended; listing again");
                        break;
                    }
                    None => break,
                },
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = Instant::now();
            let ready: Vec<String> = due
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(n, _)| n.clone())
                .collect();
            for name in ready {
                let next = match reconcile(&ctx, &name).await {
                    Ok(Action::Requeue(after)) => Some(Instant::now() + after),
                    Ok(Action::Gone) => None,
                    Err(e) if e.in_progress() => {
                        tracing::debug!(cluster = %name, "{e}");
                        Some(Instant::now() + e.retry_after())
                    }
                    Err(e) => {
                        tracing::error!(cluster = %name, error = %e, "reconcile failed");
                        Some(Instant::now() + e.retry_after())
                    }
                };
                match next {
                    Some(t) => {
                        due.insert(name, t);
                    }
                    None => {
                        due.remove(&name);
                    }
                }
            }
        }
    }
}
