//! Writes to the API server: server-side apply with pgo's one field
//! manager, never to an object pgo did not make, and not again while the
//! same object was applied moments ago (a level-triggered pass would
//! otherwise re-send every object every second).

use crate::store::FIELD_MANAGER;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use pgo_api::labels;
use pgo_platform::PlatformError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an applied object is trusted before it is applied again, so
/// drift (an edit by hand) is undone within this.
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

/// What was applied lately, by kind and name.
#[derive(Default)]
pub struct Applied(Mutex<HashMap<String, (String, Instant)>>);

impl Applied {
    fn fresh(&self, key: &str, body: &str) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(key).map(|(b, at)| b == body && at.elapsed() < REAPPLY))
            .unwrap_or(false)
    }

    fn record(&self, key: String, body: String) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, (body, Instant::now()));
        }
    }

    pub fn forget(&self, kind: &str, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&format!("{kind}/{name}"));
        }
    }

    /// Applies `object` unless the same was applied within [`REAPPLY`];
    /// refuses when an object of that name exists that pgo did not make.
    pub async fn apply<K>(&self, api: &Api<K>, object: &K) -> Result<(), PlatformError>
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
        K::DynamicType: Default,
    {
        let kind = K::kind(&K::DynamicType::default()).to_string();
        let name = object.meta().name.clone().unwrap_or_default();
        let key = format!("{kind}/{name}");
        let body = serde_json::to_string(object).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        if self.fresh(&key, &body) {
            return Ok(());
        }
        let what = format!("{kind} {name}");
        if let Some(current) = api.get_opt(&name).await.map_err(|e| api_error(&what, e))?
            && !ours(current.meta())
        {
            return Err(not_ours(&kind, &name));
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| api_error(&format!("applying {what}"), e))?;
        self.record(key, body);
        Ok(())
    }
}
