//! A claim's size after it is made: grown when the cluster asks for more,
//! never shrunk (Kubernetes cannot shrink a claim).

use super::KubePlatform;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
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
        if w < h {
            self.tell_not_shrunk(spec, have).await;
            return Ok(());
        }
        if w == h {
            return Ok(());
        }
        let patch = serde_json::json!({ "spec": { "resources": { "requests": { "storage": want } } } });
        self.merge_patch::<PersistentVolumeClaim>(
            &spec.name,
            &patch,
            &format!("growing PVC {} from {have} to {want}", spec.name),
        )
        .await?;
        tracing::info!(pvc = %spec.name, from = have, to = want, "growing PVC");
        Ok(())
    }

    /// Says once per asked size, as a warning Event on the cluster, that a
    /// smaller size was not applied: silently keeping the old one would
    /// leave a user believing the space was given back.
    async fn tell_not_shrunk(&self, spec: &VolumeSpec, have: &str) {
        let key = format!("{}={}", spec.name, spec.storage.size);
        let first = self.told.lock().is_ok_and(|mut told| told.insert(key));
        if !first {
            return;
        }
        let message = format!(
            "PVC {} stays at {have}: a claim cannot shrink, and the cluster asks for {}",
            spec.name, spec.storage.size
        );
        tracing::warn!(cluster = %spec.cluster, "{message}");
        let event = pgo_core::event::Event {
            cluster: spec.cluster.clone(),
            cluster_uid: None,
            reason: pgo_core::event::Reason::VolumeNotShrunk,
            message,
        };
        if let Err(e) = super::events::record(self, &event).await {
            tracing::warn!(cluster = %spec.cluster, error = %e, "cannot record an event");
        }
    }
}
