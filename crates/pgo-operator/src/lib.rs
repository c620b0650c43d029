//! The operator: controllers that make what the store says true on the
//! platform. Level-triggered: a watch event only makes a reconcile sooner;
//! every cluster is reconciled again on a timer, and every reconcile reads
//! the whole state afresh instead of trusting what an event said.

pub mod cluster;
mod context;
pub mod runtime;
pub mod task;

pub use context::{Context, Hooks};

use std::sync::Arc;
use tokio::sync::watch;

/// Runs every controller until `stop` turns true.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    tokio::join!(
        cluster::controller::run(ctx.clone(), stop.clone()),
        task::controller::run(ctx, stop),
    );
}
