//! Where resources live. [`Store`] is the contract both platforms meet — the
//! Kubernetes API on one, an embedded SQLite database on the other — with
//! Kubernetes' semantics: every write gets a new resourceVersion, a write that
//! names a stale one is refused, status is written apart from spec, deletion
//! waits for finalizers, and a watch delivers every change after a given
//! resourceVersion, in order.

pub mod cache;
mod error;
pub mod kept;
mod object;
pub mod sqlite;
mod typed;

pub use cache::Cached;
pub use error::StoreError;
pub use typed::{Api, Event};

use futures::stream::BoxStream;
use serde_json::Value;
use std::sync::Arc;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// A change, with the object as it was after it (before it, for a delete).
#[derive(Clone, Debug)]
pub struct RawEvent {
    pub kind: String,
    pub resource_version: u64,
    pub event_type: EventType,
    pub object: Value,
}

/// A list and the resourceVersion to watch from to see every later change.
#[derive(Clone, Debug)]
pub struct RawList {
    pub items: Vec<Value>,
    pub resource_version: u64,
}

/// Changes as they happen; ends only when the store closes.
pub type RawWatch = BoxStream<'static, Result<RawEvent, StoreError>>;

/// Objects are JSON values of one `kind`, named by `metadata.name`, so the
/// trait stays object-safe; [`Api`] gives the typed view.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, kind: &str, name: &str) -> Result<Value, StoreError>;
    async fn list(&self, kind: &str) -> Result<RawList, StoreError>;
    /// As [`get`](Self::get), shared: a cache answers without a copy.
    async fn get_shared(&self, kind: &str, name: &str) -> Result<Arc<Value>, StoreError> {
        self.get(kind, name).await.map(Arc::new)
    }
    /// As [`list`](Self::list), shared: every object and the version to
    /// watch from.
    async fn list_shared(&self, kind: &str) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        let list = self.list(kind).await?;
        Ok((
            list.items.into_iter().map(Arc::new).collect(),
            list.resource_version,
        ))
    }
    /// Fails with `AlreadyExists` when the name is taken.
    async fn create(&self, kind: &str, object: Value) -> Result<Value, StoreError>;
    /// Replaces metadata and spec; the stored status is kept. A
    /// `metadata.resourceVersion` that is not the current one is a `Conflict`.
    async fn replace(&self, kind: &str, object: Value) -> Result<Value, StoreError>;
    /// Replaces the status only (the status subresource).
    async fn replace_status(&self, kind: &str, object: Value) -> Result<Value, StoreError>;
    /// Deletes, or with finalizers present marks for deletion and returns the
    /// object as it now stands. `None` means it is gone.
    async fn delete(&self, kind: &str, name: &str) -> Result<Option<Value>, StoreError>;
    /// Every change to objects of `kind` after `since`, in order.
    async fn watch(&self, kind: &str, since: u64) -> Result<RawWatch, StoreError>;
}
