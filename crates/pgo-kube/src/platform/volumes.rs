//! A claim's size after it is made: grown when the cluster asks for more,
//! never shrunk (Kubernetes cannot shrink a claim).

use super::KubePlatform;
use super::apply::api_error;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Patch, PatchParams};
use pgo_core::desired::VolumeSpec;
use pgo_core::validate::size_bytes;
use pgo_platform::PlatformError;

/// What the claim asks for now.
fn requested(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.as_str())
}

impl KubePlatform {
    /// Asks for `spec`'s size when it is more than the claim has; the
    /// storage class must allow expansion (`allowVolumeExpansion`), or the
    /// API server refuses and the cluster's message says so. Less is left
    /// alone: a claim cannot shrink.
    pub(crate) async fn grow_volume(
        &self,
        current: &PersistentVolumeClaim,
        spec: &VolumeSpec,
    ) -> Result<(), PlatformError> {
        let want = spec.storage.size.as_str();
        let have = requested(current).unwrap_or_default();
        let (Some(w), Some(h)) = (size_bytes(want), size_bytes(have)) else {
            // A size written by hand in a form pgo does not compare.
            return Ok(());
        };
        if w <= h {
            if w < h {
                tracing::debug!(pvc = %spec.name, have, want, "a claim cannot shrink; left as it is");
            }
            return Ok(());
        }
        let patch = serde_json::json!({ "spec": { "resources": { "requests": { "storage": want } } } });
        let grown = self
            .api::<PersistentVolumeClaim>()
            .patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api_error(&format!("growing PVC {} from {have} to {want}", spec.name), e))?;
        self.wrote(grown);
        tracing::info!(pvc = %spec.name, from = have, to = want, "growing PVC");
        Ok(())
    }
}
