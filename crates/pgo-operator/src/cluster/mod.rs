//! The Pgcluster controller.

pub mod controller;
mod failover;
mod reconcile;
mod replicas;

pub use reconcile::{Action, ReconcileError, reconcile};
