//! Writes to the API server: server-side apply with pgo's one field
//! manager, never to an object pgo did not make, and not again while the
//! object is as pgo applied it (a level-triggered pass would otherwise
//! re-send every object every second).

use super::cache::{Cachable, Reflector, version};
use super::reads::read;
use crate::store::FIELD_MANAGER;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use pgo_api::labels;
use pgo_platform::PlatformError;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Without a cache to see drift (an edit by hand) in, how long an applied
/// object is trusted before it is applied again.
const REAPPLY: Duration = Duration::from_secs(60);

/// Whether pgo made the object: only those it changes or deletes.
pub fn ours(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(labels::MANAGED_BY))
        .is_some_and(|v| v == labels::MANAGER)
}

pub fn api_error(what: &str, e: kube::Error) -> PlatformError {
    PlatformError::Invalid(format!("{what}: {e}"))
}

pub fn not_ours(kind: &str, name: &str) -> PlatformError {
    PlatformError::Invalid(format!(
        "{kind} {name} exists but was not made by pgo (no label {}={}); pgo leaves it alone: remove or rename it",
        labels::MANAGED_BY,
        labels::MANAGER
    ))
}

/// What pgo applied of an object: the body it sent, and what the API
/// server made of it.
struct Entry {
    body: String,
    at: Instant,
    version: u64,
    shape: u64,
}

/// What was applied lately, by kind and name.
#[derive(Default)]
pub struct Applied(Mutex<HashMap<String, Entry>>);

/// The parts of an object anyone but its controllers would change: labels,
/// annotations, spec and data. Not status, nor the bookkeeping of writes.
fn shape<K: Serialize>(object: &K) -> u64 {
    let value = serde_json::to_value(object).unwrap_or_default();
    let mut h = DefaultHasher::new();
    for part in ["/metadata/labels", "/metadata/annotations", "/spec", "/data"] {
        value.pointer(part).map(Value::to_string).hash(&mut h);
    }
    h.finish()
}

impl Applied {
    /// True when applying `body` again would change nothing. With a cache:
    /// the object is as pgo left it (later writes changed only its status).
    /// Without one: applied within [`REAPPLY`].
    fn fresh<K: Cachable + Serialize>(
        &self,
        key: &str,
        body: &str,
        cache: Option<&Arc<Reflector<K>>>,
        name: &str,
    ) -> bool {
        let Ok(map) = self.0.lock() else { return false };
        let Some(entry) = map.get(key).filter(|e| e.body == body) else {
            return false;
        };
        match cache.and_then(|c| c.get(name)) {
            Some(Some(live)) => version(&live) <= entry.version || shape(&live) == entry.shape,
            // Deleted behind pgo's back.
            Some(None) => false,
            None => entry.at.elapsed() < REAPPLY,
        }
    }

    fn record<K: Serialize + Resource>(&self, key: String, body: String, answer: &K) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(
                key,
                Entry {
                    body,
                    at: Instant::now(),
                    version: version(answer),
                    shape: shape(answer),
                },
            );
        }
    }

    pub fn forget(&self, kind: &str, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&format!("{kind}/{name}"));
        }
    }

    /// Applies `object` unless doing so would change nothing (see
    /// [`fresh`](Self::fresh)); refuses when an object of that name exists
    /// that pgo did not make.
    pub async fn apply<K>(
        &self,
        api: &Api<K>,
        cache: Option<&Arc<Reflector<K>>>,
        object: &K,
    ) -> Result<(), PlatformError>
    where
        K: Cachable + Serialize,
    {
        let kind = K::kind(&()).to_string();
        let name = object.meta().name.clone().unwrap_or_default();
        let key = format!("{kind}/{name}");
        let body = serde_json::to_string(object).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        if self.fresh(&key, &body, cache, &name) {
            return Ok(());
        }
        let what = format!("{kind} {name}");
        if read(api, cache, &name).await?.is_some_and(|c| !ours(c.meta())) {
            return Err(not_ours(&kind, &name));
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let answer = api
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| api_error(&format!("applying {what}"), e))?;
        self.record(key, body, &answer);
        if let Some(c) = cache {
            c.wrote(answer);
        }
        Ok(())
    }
}

impl super::KubePlatform {
    /// Applies `object` in the platform's namespace, seen in its cache.
    pub(crate) async fn apply<K>(&self, object: &K) -> Result<(), PlatformError>
    where
        K: Cachable + super::cache::CacheOf<K> + Serialize,
    {
        self.applied
            .apply(&self.api::<K>(), self.cache::<K>(), object)
            .await
    }
}
