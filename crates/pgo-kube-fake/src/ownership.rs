//! Server-side apply's field ownership, as much of it as the operator
//! relies on: an apply from a field manager owns the fields it sets, and a
//! field it set before and sets no more is removed, unless another manager
//! applied it too. Lists are atomic (owned whole), as for a list without
//! merge keys; the real server merges some lists by key, which pgo never
//! relies on (it applies whole objects).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Fields, as JSON pointers to leaves (a list is a leaf).
pub type Fields = BTreeSet<String>;

/// What each manager last applied, by collection and object name.
#[derive(Default)]
pub struct Owners(BTreeMap<(String, String), BTreeMap<String, Fields>>);

/// The identity of the object itself is nobody's to remove.
const IDENTITY: [&str; 4] = ["/apiVersion", "/kind", "/metadata/name", "/metadata/namespace"];

pub fn fields(value: &Value) -> Fields {
    fn walk(value: &Value, at: String, out: &mut Fields) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(v, format!("{at}/{key}"), out);
                }
            }
            _ => {
                out.insert(at);
            }
        }
    }
    let mut out = Fields::new();
    walk(value, String::new(), &mut out);
    out.retain(|f| !IDENTITY.contains(&f.as_str()) && !f.starts_with("/status"));
    out
}

/// Removes the leaf at `pointer`, and parents left empty by it.
fn remove(object: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    if let Some(map) = object.pointer_mut(parent).and_then(Value::as_object_mut) {
        map.remove(&key);
        if map.is_empty() && !parent.is_empty() {
            remove(object, parent);
        }
    }
}

impl Owners {
    /// `manager` applied `body` to `object`: fields it no longer sets go,
    /// then `body` is merged in.
    pub fn apply(&mut self, coll: &str, name: &str, manager: &str, object: &mut Value, body: &Value) {
        let now = fields(body);
        let managers = self.0.entry((coll.to_string(), name.to_string())).or_default();
        let before = managers.remove(manager).unwrap_or_default();
        for gone in before.difference(&now) {
            if !managers.values().any(|f| f.contains(gone)) {
                remove(object, gone);
            }
        }
        super::merge(object, body);
        managers.insert(manager.to_string(), now);
    }

    pub fn forget(&mut self, coll: &str, name: &str) {
        self.0.remove(&(coll.to_string(), name.to_string()));
    }
}

/// The `fieldManager` of a query string.
pub fn manager(query: &str) -> String {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("fieldManager="))
        .unwrap_or("unknown")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_a_manager_stops_applying_goes_unless_another_applies_it() {
        let mut owners = Owners::default();
        let mut o = json!({});
        let first = json!({ "metadata": { "name": "x", "labels": { "a": "1", "b": "2" } },
            "spec": { "ports": [1, 2], "keep": true } });
        owners.apply("c", "x", "pgo", &mut o, &first);
        owners.apply(
            "c",
            "x",
            "other",
            &mut o,
            &json!({ "metadata": { "labels": { "b": "2" } } }),
        );
        let second = json!({ "metadata": { "name": "x" }, "spec": { "ports": [3] } });
        owners.apply("c", "x", "pgo", &mut o, &second);
        assert_eq!(
            o,
            json!({ "metadata": { "name": "x", "labels": { "b": "2" } }, "spec": { "ports": [3] } }),
            "a and keep go; b stays, another manager applied it; a list is replaced whole"
        );
    }
}
