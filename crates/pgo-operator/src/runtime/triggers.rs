//! Watches that feed a queue. A change triggers a reconcile only when it is
//! more than a status write: the operator writes status every pass (WAL
//! positions, lag), and a status write that came back as a trigger would
//! reconcile a busy cluster back to back instead of once per probe period.

use super::driver::Signal;
use pgo_store::{EventType, Store};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const RETRY_LIST: Duration = Duration::from_secs(1);

/// What a change to an object means for a queue's keys; `deleted` when the
/// object is gone.
pub type Route = fn(object: &Value, deleted: bool) -> Vec<Signal>;

/// The object less what changes without a decision to make: its status and
/// the bookkeeping of every write.
fn fingerprint(object: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    if let Some(map) = object.as_object() {
        for (key, value) in map.iter().filter(|(k, _)| *k != "status") {
            key.hash(&mut h);
            match value.as_object().filter(|_| key == "metadata") {
                Some(meta) => {
                    for (k, v) in meta
                        .iter()
                        .filter(|(k, _)| *k != "resourceVersion" && *k != "managedFields")
                    {
                        k.hash(&mut h);
                        v.to_string().hash(&mut h);
                    }
                }
                None => value.to_string().hash(&mut h),
            }
        }
    }
    h.finish()
}

pub fn name_of(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The object's own key: triggered while it exists, forgotten once gone.
pub fn own_key(object: &Value, deleted: bool) -> Vec<Signal> {
    name_of(object)
        .map(|name| {
            if deleted {
                Signal::Forget(name)
            } else {
                Signal::Trigger(name)
            }
        })
        .into_iter()
        .collect()
}

/// What a watch has seen of each object: its fingerprint, to tell a status
/// write from a change, and the object, to route its deletion when a
/// broken watch missed it.
#[derive(Default)]
pub struct Seen(HashMap<String, (u64, Value)>);

impl Seen {
    /// True when `object` differs from what was seen of it, beyond status.
    pub fn changed(&mut self, object: &Value) -> bool {
        let Some(name) = name_of(object) else {
            return false;
        };
        let print = fingerprint(object);
        self.0
            .insert(name, (print, object.clone()))
            .is_none_or(|(before, _)| before != print)
    }

    /// Forgets `name`.
    pub fn gone(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Forgets, and returns, what is not among `listed`.
    fn missing_from(&mut self, listed: &[Value]) -> Vec<Value> {
        let names: std::collections::HashSet<String> = listed.iter().filter_map(name_of).collect();
        let gone: Vec<String> = self.0.keys().filter(|n| !names.contains(*n)).cloned().collect();
        gone.iter()
            .filter_map(|n| self.0.remove(n))
            .map(|(_, o)| o)
            .collect()
    }
}

/// Lists then watches `kind`, sending what `route` makes of every change,
/// until `stop`. After a broken watch it lists again: what changed
/// meanwhile is triggered, and what went is routed as deleted.
pub async fn watch_kind(
    store: Arc<dyn Store>,
    kind: String,
    route: Route,
    tx: mpsc::UnboundedSender<Signal>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = Seen::default();
    let send = |signals: Vec<Signal>| {
        for s in signals {
            let _ = tx.send(s);
        }
    };
    while !*stop.borrow() {
        let listed = async {
            let list = store.list(&kind).await?;
            let events = store.watch(&kind, list.resource_version).await?;
            Ok::<_, pgo_store::StoreError>((list.items, events))
        };
        let (items, mut events) = match listed.await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(kind, error = %e, "cannot list and watch; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_LIST) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        for old in seen.missing_from(&items) {
            send(route(&old, true));
        }
        // Every object once at each list: level-triggered, nothing missed
        // while the watch was down.
        for item in items.iter().filter(|i| name_of(i).is_some()) {
            seen.changed(item);
            send(route(item, false));
        }
        loop {
            let event = tokio::select! {
                e = futures::StreamExt::next(&mut events) => e,
                _ = stop.changed() => return,
            };
            match event {
                Some(Ok(e)) => {
                    let Some(name) = name_of(&e.object) else { continue };
                    if e.event_type == EventType::Deleted {
                        seen.gone(&name);
                        send(route(&e.object, true));
                    } else if seen.changed(&e.object) {
                        send(route(&e.object, false));
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(kind, error = %e, "the watch ended; listing again");
                    break;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_write_is_no_change_and_a_spec_or_metadata_change_is() {
        let mut seen = Seen::default();
        let base = json!({ "metadata": { "name": "a", "resourceVersion": "1", "generation": 1 },
            "spec": { "replicas": 1 }, "status": { "walLsn": "0/1" } });
        assert!(seen.changed(&base), "first sight");
        let cases = [
            (
                "a status write",
                json!({ "metadata": { "name": "a", "resourceVersion": "2", "generation": 1 },
                "spec": { "replicas": 1 }, "status": { "walLsn": "0/2" } }),
                false,
            ),
            (
                "a spec change",
                json!({ "metadata": { "name": "a", "resourceVersion": "3", "generation": 2 },
                "spec": { "replicas": 2 }, "status": { "walLsn": "0/2" } }),
                true,
            ),
            (
                "the same again",
                json!({ "metadata": { "name": "a", "resourceVersion": "4", "generation": 2 },
                "spec": { "replicas": 2 } }),
                false,
            ),
            (
                "marked for deletion",
                json!({ "metadata": { "name": "a", "resourceVersion": "5", "generation": 2,
                "deletionTimestamp": "2026-11-24T00:00:00Z" }, "spec": { "replicas": 2 } }),
                true,
            ),
        ];
        for (what, object, changed) in cases {
            assert_eq!(seen.changed(&object), changed, "{what}");
        }
        seen.gone("a");
        assert!(seen.changed(&base), "seen again after it went");
    }
}
