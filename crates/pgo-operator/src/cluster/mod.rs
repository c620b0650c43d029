//! The Pgcluster controller: a pass reads ([`observe`]), plans
//! (`pgo_core::plan`) and carries the plan out ([`act`]).

mod act;
pub mod controller;
mod observe;
mod reconcile;
mod replicas;

pub use reconcile::{Action, ReconcileError, reconcile};
