//! Reading and writing the `metadata` fields the store manages.

use crate::StoreError;
use serde_json::{Map, Value};

pub fn name(object: &Value) -> Result<String, StoreError> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| StoreError::Invalid("metadata.name is missing".into()))
}

pub fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, StoreError> {
    let root = object
        .as_object_mut()
        .ok_or_else(|| StoreError::Invalid("an object must be a JSON map".into()))?;
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    meta.as_object_mut()
        .ok_or_else(|| StoreError::Invalid("metadata must be a JSON map".into()))
}

/// The resourceVersion the writer last read, if it said one.
pub fn given_version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

pub fn has_finalizers(object: &Value) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

pub fn is_deleting(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

pub fn generation(object: &Value) -> i64 {
    object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Now, as Kubernetes writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
