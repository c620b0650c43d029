//! The Kubernetes platform: the strategy templates (as the spec lays them
//! out) and their rendering into typed k8s-openapi objects, which
//! `postgres-operator render` prints without a cluster; and the Store over
//! the Kubernetes API, where the resources are CRDs.

pub mod leader;
pub mod platform;
pub mod render;
pub mod repo_host;
pub mod store;
pub mod templates;
pub mod volume_jobs;

pub use platform::{HttpManagers, KubePlatform, ManagerAddr, Managers};
pub use render::{
    CopyJob, RenderError, RenderOptions, Rendered, render_backup, render_cluster, render_rmdata,
};
pub use templates::Templates;

/// A client from the in-cluster config or `KUBECONFIG`.
pub async fn client() -> Result<kube::Client, kube::Error> {
    kube::Client::try_default().await
}
