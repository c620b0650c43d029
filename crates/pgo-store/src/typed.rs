//! A typed view of a [`Store`] for one resource kind, in the shape of kube's
//! `Api<K>`, so controllers read the same on both platforms.

use crate::{EventType, Store, StoreError};
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex};

/// A change to an object of kind `K`.
#[derive(Clone, Debug)]
pub enum Event<K> {
    Added(K),
    Modified(K),
    Deleted(K),
}

impl<K> Event<K> {
    pub fn object(&self) -> &K {
        match self {
            Event::Added(k) | Event::Modified(k) | Event::Deleted(k) => k,
        }
    }
}

/// Objects decoded from a shared (cached) value, by type and name: a cache
/// answers every pass with the same value until the object changes, and
/// decoding it again each time was most of a steady pass's cost.
type Decoded = HashMap<(TypeId, String), (Arc<Value>, Arc<dyn Any + Send + Sync>)>;
static DECODED: LazyLock<Mutex<Decoded>> = LazyLock::new(Mutex::default);
const DECODED_MAX: usize = 100_000;

pub struct Api<K> {
    store: Arc<dyn Store>,
    kind: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            store: self.store.clone(),
            kind: self.kind.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> Api<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub fn new(store: Arc<dyn Store>) -> Self {
        Api {
            store,
            kind: K::kind(&()).into_owned(),
            _kind: PhantomData,
        }
    }

    fn decode(kind: &str, value: Value) -> Result<K, StoreError> {
        serde_json::from_value(value)
            .map_err(|e| StoreError::Invalid(format!("a stored {kind} does not read: {e}")))
    }

    fn decode_shared(kind: &str, value: &Value) -> Result<K, StoreError> {
        K::deserialize(value).map_err(|e| StoreError::Invalid(format!("a stored {kind} does not read: {e}")))
    }

    fn encode(&self, object: &K) -> Result<Value, StoreError> {
        let mut value = serde_json::to_value(object).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(K::api_version(&()).into_owned()),
            );
            map.insert("kind".into(), Value::String(self.kind.clone()));
        }
        Ok(value)
    }

    /// The kind's name in the store (`Pgcluster`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub async fn get(&self, name: &str) -> Result<K, StoreError> {
        let shared = self.store.get_shared(&self.kind, name).await?;
        let key = (TypeId::of::<K>(), name.to_string());
        let memo = DECODED.lock().ok().and_then(|m| {
            let (from, decoded) = m.get(&key)?;
            Arc::ptr_eq(from, &shared).then(|| decoded.downcast_ref::<K>().cloned())?
        });
        if let Some(k) = memo {
            return Ok(k);
        }
        let k = Self::decode_shared(&self.kind, &shared)?;
        // Only a value someone keeps (a cache) can come back the same.
        if Arc::strong_count(&shared) > 1
            && let Ok(mut m) = DECODED.lock()
        {
            // Bounded: kept for the last object of each name, cleared when
            // it grows past what a store of this size holds.
            if m.len() >= DECODED_MAX {
                m.clear();
            }
            m.insert(key, (shared, Arc::new(k.clone())));
        }
        Ok(k)
    }

    /// `None` where the object does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, StoreError> {
        match self.get(name).await {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object and the resourceVersion to watch from.
    pub async fn list(&self) -> Result<(Vec<K>, u64), StoreError> {
        let (items, version) = self.store.list_shared(&self.kind).await?;
        let items = items
            .iter()
            .map(|v| Self::decode_shared(&self.kind, v))
            .collect::<Result<_, _>>()?;
        Ok((items, version))
    }

    pub async fn create(&self, object: &K) -> Result<K, StoreError> {
        let value = self.encode(object)?;
        Self::decode(&self.kind, self.store.create(&self.kind, value).await?)
    }

    pub async fn replace(&self, object: &K) -> Result<K, StoreError> {
        let value = self.encode(object)?;
        Self::decode(&self.kind, self.store.replace(&self.kind, value).await?)
    }

    pub async fn replace_status(&self, object: &K) -> Result<K, StoreError> {
        let value = self.encode(object)?;
        Self::decode(&self.kind, self.store.replace_status(&self.kind, value).await?)
    }

    /// `None` once the object is gone; `Some` while finalizers hold it.
    pub async fn delete(&self, name: &str) -> Result<Option<K>, StoreError> {
        self.store
            .delete(&self.kind, name)
            .await?
            .map(|v| Self::decode(&self.kind, v))
            .transpose()
    }

    /// As [`delete`](Self::delete), and `None` where it was gone already.
    pub async fn delete_opt(&self, name: &str) -> Result<Option<K>, StoreError> {
        match self.delete(name).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    pub async fn watch(
        &self,
        since: u64,
    ) -> Result<BoxStream<'static, Result<Event<K>, StoreError>>, StoreError> {
        let kind = self.kind.clone();
        let raw = self.store.watch(&self.kind, since).await?;
        Ok(raw
            .map(move |event| {
                let event = event?;
                let object = Self::decode(&kind, event.object)?;
                Ok(match event.event_type {
                    EventType::Added => Event::Added(object),
                    EventType::Modified => Event::Modified(object),
                    EventType::Deleted => Event::Deleted(object),
                })
            })
            .boxed())
    }
}
