//! The feed of owned objects' changes: Pods and Deployments labelled as
//! pgo's, watched, each change named by its cluster. A pod that stops
//! being ready triggers its cluster's reconcile at once, not at the next
//! probe; a Deployment deleted by hand is made again at once.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use pgo_api::labels;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const RETRY: Duration = Duration::from_secs(1);

pub fn feed(
    client: kube::Client,
    namespace: &str,
    stop: watch::Receiver<bool>,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(follow::<Pod>(
        Api::namespaced(client.clone(), namespace),
        tx.clone(),
        stop.clone(),
    ));
    tokio::spawn(follow::<Deployment>(Api::namespaced(client, namespace), tx, stop));
    rx
}

/// Lists, then watches from the list's version; again after any break.
async fn follow<K>(api: Api<K>, tx: mpsc::UnboundedSender<String>, mut stop: watch::Receiver<bool>)
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    use futures::StreamExt;
    let ours = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    loop {
        let version = match api.list(&ListParams::default().labels(&ours)).await {
            Ok(list) => list.metadata.resource_version.unwrap_or_default(),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list what pgo runs; trying again");
                if pause(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        let events = match api.watch(&WatchParams::default().labels(&ours), &version).await {
            Ok(events) => events,
            Err(e) => {
                tracing::debug!(error = %e, "cannot watch what pgo runs; trying again");
                if pause(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        let mut events = std::pin::pin!(events);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o))) => {
                        if let Some(cluster) = o.labels().get(labels::CLUSTER)
                            && tx.send(cluster.clone()).is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(WatchEvent::Bookmark(_))) => {}
                    // Expired, broken or ended: list again.
                    Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => break,
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Waits before trying again; true when stopped meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(RETRY) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
