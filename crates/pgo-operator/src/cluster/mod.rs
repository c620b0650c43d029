//! The Pgcluster controller.

pub mod controller;
mod reconcile;

pub use reconcile::{Action, ReconcileError, reconcile};
