//! The [`Store`] over the Kubernetes API: each pgo kind is a CRD in one
//! namespace. The API server already gives Kubernetes' semantics (the
//! SQLite store copies them), so this only translates: objects as
//! `DynamicObject`s, errors by status code, watch events one for one.
//!
//! The Store speaks of resourceVersions as numbers. Kubernetes calls them
//! opaque, but every API server backed by etcd serves etcd revisions; one
//! that does not is refused with a clear error rather than misread.

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::ApiResource;
use pgo_api::{Pgbackup, Pgcluster, Pgpolicy, Pgreplica, Pgtask, Pgupgrade};
use pgo_store::{EventType, RawEvent, RawList, RawWatch, Store, StoreError};
use serde_json::Value;

/// The field manager of every write pgo makes.
pub const FIELD_MANAGER: &str = "pgo";

#[derive(Clone)]
pub struct KubeStore {
    client: kube::Client,
    namespace: String,
}

impl KubeStore {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        KubeStore {
            client,
            namespace: namespace.to_string(),
        }
    }

    fn api(&self, kind: &str) -> Result<Api<DynamicObject>, StoreError> {
        let resource = match kind {
            "Pgcluster" => ApiResource::erase::<Pgcluster>(&()),
            "Pgreplica" => ApiResource::erase::<Pgreplica>(&()),
            "Pgbackup" => ApiResource::erase::<Pgbackup>(&()),
            "Pgtask" => ApiResource::erase::<Pgtask>(&()),
            "Pgpolicy" => ApiResource::erase::<Pgpolicy>(&()),
            "Pgupgrade" => ApiResource::erase::<Pgupgrade>(&()),
            other => return Err(StoreError::Invalid(format!("pgo has no kind {other:?}"))),
        };
        Ok(Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &resource,
        ))
    }
}

fn params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    }
}

fn version(text: Option<&str>) -> Result<u64, StoreError> {
    let text = text.unwrap_or("0");
    text.parse().map_err(|_| {
        StoreError::Backend(format!(
            "the API server's resourceVersion {text:?} is not a number; pgo needs an etcd-backed API server"
        ))
    })
}

fn error(kind: &str, name: &str, given: Option<String>, e: kube::Error) -> StoreError {
    match e {
        kube::Error::Api(status) => match status.code {
            404 => StoreError::NotFound {
                kind: kind.to_string(),
                name: name.to_string(),
            },
            409 if status.reason == "AlreadyExists" => StoreError::AlreadyExists {
                kind: kind.to_string(),
                name: name.to_string(),
            },
            409 => StoreError::Conflict {
                kind: kind.to_string(),
                name: name.to_string(),
                given: given.unwrap_or_default(),
                current: 0,
            },
            410 => StoreError::Gone(0),
            422 | 400 => StoreError::Invalid(status.message),
            _ => StoreError::Backend(format!("{kind} {name}: {} ({})", status.message, status.code)),
        },
        other => StoreError::Backend(format!("{kind} {name}: {other}")),
    }
}

fn to_object(value: Value) -> Result<DynamicObject, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn to_value(object: &DynamicObject) -> Result<Value, StoreError> {
    serde_json::to_value(object).map_err(|e| StoreError::Backend(e.to_string()))
}

fn name_of(value: &Value) -> String {
    value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn given_version(value: &Value) -> Option<String> {
    value
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[async_trait::async_trait]
impl Store for KubeStore {
    async fn get(&self, kind: &str, name: &str) -> Result<Value, StoreError> {
        let object = self
            .api(kind)?
            .get(name)
            .await
            .map_err(|e| error(kind, name, None, e))?;
        to_value(&object)
    }

    async fn list(&self, kind: &str) -> Result<RawList, StoreError> {
        let list = self
            .api(kind)?
            .list(&ListParams::default())
            .await
            .map_err(|e| error(kind, "", None, e))?;
        Ok(RawList {
            resource_version: version(list.metadata.resource_version.as_deref())?,
            items: list.items.iter().map(to_value).collect::<Result<_, _>>()?,
        })
    }

    async fn create(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let name = name_of(&object);
        let created = self
            .api(kind)?
            .create(&params(), &to_object(object)?)
            .await
            .map_err(|e| error(kind, &name, None, e))?;
        to_value(&created)
    }

    async fn replace(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let (name, given) = (name_of(&object), given_version(&object));
        let replaced = self
            .api(kind)?
            .replace(&name, &params(), &to_object(object)?)
            .await
            .map_err(|e| error(kind, &name, given, e))?;
        to_value(&replaced)
    }

    async fn replace_status(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let (name, given) = (name_of(&object), given_version(&object));
        let replaced = self
            .api(kind)?
            .replace_status(&name, &params(), &to_object(object)?)
            .await
            .map_err(|e| error(kind, &name, given, e))?;
        to_value(&replaced)
    }

    async fn delete(&self, kind: &str, name: &str) -> Result<Option<Value>, StoreError> {
        let outcome = self
            .api(kind)?
            .delete(name, &DeleteParams::default())
            .await
            .map_err(|e| error(kind, name, None, e))?;
        match outcome {
            // Still there: held by a finalizer, now marked for deletion.
            either::Either::Left(object) => to_value(&object).map(Some),
            either::Either::Right(_) => Ok(None),
        }
    }

    async fn watch(&self, kind: &str, since: u64) -> Result<RawWatch, StoreError> {
        let events = self
            .api(kind)?
            .watch(&WatchParams::default(), &since.to_string())
            .await
            .map_err(|e| error(kind, "", None, e))?;
        let kind = kind.to_string();
        let mapped = events.filter_map(move |event| {
            let kind = kind.clone();
            async move {
                let (event_type, object) = match event {
                    Ok(WatchEvent::Added(o)) => (EventType::Added, o),
                    Ok(WatchEvent::Modified(o)) => (EventType::Modified, o),
                    Ok(WatchEvent::Deleted(o)) => (EventType::Deleted, o),
                    Ok(WatchEvent::Bookmark(_)) => return None,
                    Ok(WatchEvent::Error(status)) if status.code == 410 => {
                        return Some(Err(StoreError::Gone(since)));
                    }
                    Ok(WatchEvent::Error(status)) => {
                        return Some(Err(StoreError::Backend(format!(
                            "watch of {kind}: {}",
                            status.message
                        ))));
                    }
                    Err(e) => return Some(Err(StoreError::Backend(format!("watch of {kind}: {e}")))),
                };
                let resource_version = match version(object.metadata.resource_version.as_deref()) {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e)),
                };
                Some(to_value(&object).map(|object| RawEvent {
                    kind,
                    resource_version,
                    event_type,
                    object,
                }))
            }
        });
        Ok(Box::pin(mapped))
    }
}
