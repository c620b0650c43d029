//! Reads of the objects pgo made: from the platform's caches where it has
//! them and they hold the answer, from the API server otherwise.

use super::KubePlatform;
use super::apply::{api_error, not_ours, ours};
use super::cache::{Cachable, CacheOf, Reflector};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use pgo_platform::PlatformError;
use std::sync::Arc;

impl KubePlatform {
    pub(crate) fn cache<K: Cachable + CacheOf<K>>(&self) -> Option<&Arc<Reflector<K>>> {
        self.caches.as_ref().map(K::of)
    }

    /// The object, from the cache on a hit; a miss asks the API server,
    /// which also knows objects pgo did not make.
    pub(crate) async fn get_opt<K: Cachable + CacheOf<K>>(
        &self,
        name: &str,
    ) -> Result<Option<K>, PlatformError> {
        read(&self.api::<K>(), self.cache::<K>(), name).await
    }

    /// pgo's objects labelled `selector` (`key=value`, or every one when
    /// `None`), from the cache when it is synced.
    pub(crate) async fn list_ours<K: Cachable + CacheOf<K>>(
        &self,
        selector: Option<(&str, &str)>,
    ) -> Result<Vec<K>, PlatformError> {
        let matches = |o: &K| selector.is_none_or(|(k, v)| o.labels().get(k).is_some_and(|x| x == v));
        if let Some(hit) = self.cache::<K>().and_then(|c| c.list(matches)) {
            return Ok(hit);
        }
        let mut labels = super::cache::ours();
        if let Some((k, v)) = selector {
            labels.push_str(&format!(",{k}={v}"));
        }
        let list = self
            .api::<K>()
            .list(&ListParams::default().labels(&labels))
            .await
            .map_err(|e| api_error(&format!("listing {}s", K::kind(&())), e))?;
        Ok(list.items)
    }

    /// Keeps what the API server answered to a write of pgo's.
    pub(crate) fn wrote<K: Cachable + CacheOf<K>>(&self, object: K) {
        if let Some(c) = self.cache::<K>() {
            c.wrote(object);
        }
    }

    /// Merges `patch` into `name`, keeping what the API server answered;
    /// `what` names the change in an error.
    pub(crate) async fn merge_patch<K: Cachable + CacheOf<K>>(
        &self,
        name: &str,
        patch: &serde_json::Value,
        what: &str,
    ) -> Result<(), PlatformError> {
        let patched = self
            .api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| api_error(what, e))?;
        self.wrote(patched);
        Ok(())
    }

    /// Deletes `name` if pgo made it; gone already is fine.
    pub(crate) async fn delete_ours<K: Cachable + CacheOf<K>>(
        &self,
        name: &str,
    ) -> Result<(), PlatformError> {
        delete_ours(&self.api::<K>(), self.cache::<K>(), name).await
    }
}

/// `name` from `cache` on a hit, from the API server otherwise (a miss, a
/// cache not synced yet, or a kind without one).
pub(crate) async fn read<K: Cachable>(
    api: &Api<K>,
    cache: Option<&Arc<Reflector<K>>>,
    name: &str,
) -> Result<Option<K>, PlatformError> {
    if let Some(Some(hit)) = cache.and_then(|c| c.get(name)) {
        return Ok(Some(hit));
    }
    api.get_opt(name)
        .await
        .map_err(|e| api_error(&format!("{} {name}", K::kind(&())), e))
}

/// Deletes `name` if pgo made it; gone already is fine. `cache`, where
/// the kind has one, forgets it.
pub(crate) async fn delete_ours<K: Cachable>(
    api: &Api<K>,
    cache: Option<&Arc<Reflector<K>>>,
    name: &str,
) -> Result<(), PlatformError> {
    let kind = K::kind(&());
    let what = format!("{kind} {name}");
    let Some(current) = read(api, cache, name).await? else {
        return Ok(());
    };
    if !ours(current.meta()) {
        return Err(not_ours(&kind, name));
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(api_error(&format!("deleting {what}"), e)),
    }
    if let Some(c) = cache {
        c.deleted(name);
    }
    Ok(())
}
