//! Drives [`reconcile`](super::reconcile): on every watch event for a
//! cluster, and again for every cluster when its requeue time comes.

use super::reconcile::{Action, reconcile};
use crate::Context;
use futures::StreamExt;
use pgo_api::Pgcluster;
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
    while !*stop.borrow() {
        // List, then watch from the list's version: nothing is missed between.
        let (items, since) = match api.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot list clusters; retrying");
                tokio::time::sleep(RETRY_LIST).await;
                continue;
            }
        };
        let mut events = match api.watch(since).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch clusters; retrying");
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
