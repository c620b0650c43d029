//! The Kubernetes platform. This part is pure: the strategy templates (as the
//! spec lays them out) and their rendering into typed k8s-openapi objects,
//! which `postgres-operator render` prints without a cluster.

pub mod render;
pub mod templates;

pub use render::{RenderError, RenderOptions, Rendered, render_backup, render_cluster, render_rmdata};
pub use templates::Templates;
