//! The operator: controllers that make what the store says true on the
//! platform. Level-triggered: a watch event only makes a reconcile sooner;
//! every cluster is reconciled again on a timer, and every reconcile reads
//! the whole state afresh instead of trusting what an event said.

pub mod backup;
pub mod cluster;
mod context;
pub mod runtime;
pub mod task;

pub use context::{CACHED_KINDS, Context, Hooks, cached};

use std::sync::Arc;
use tokio::sync::watch;

/// Runs every controller until `stop` turns true.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    tokio::join!(
        cluster::controller::run(ctx.clone(), stop.clone()),
        task::controller::run(ctx.clone(), stop.clone()),
        backup::controller::run(ctx, stop),
    );
}

/// How [`run_while_leading`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Leadership {
    /// `stop` turned true.
    Stopped,
    /// This process led and no longer does. Its controllers were cut off
    /// at once, mid-pass: another leader may be starting.
    Lost,
}

/// Runs every controller while `leading` is true (waiting until it is),
/// until `stop`. Leadership lost ends it: the caller exits, and starts
/// again as a candidate, as client-go's elections do.
pub async fn run_while_leading(
    ctx: Arc<Context>,
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> Leadership {
    while !*leading.borrow_and_update() {
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { return Leadership::Stopped },
            _ = stop.changed() => return Leadership::Stopped,
        }
    }
    let (stop_controllers, controllers_stop) = watch::channel(false);
    let controllers = tokio::spawn(run(ctx, controllers_stop));
    // No sender left means no election any more: leading until stopped.
    let mut elected = true;
    loop {
        tokio::select! {
            changed = leading.changed(), if elected => match changed {
                Err(_) => elected = false,
                Ok(()) if !*leading.borrow_and_update() => {
                    controllers.abort();
                    return Leadership::Lost;
                }
                Ok(()) => {}
            },
            _ = stop.changed() => {
                let _ = stop_controllers.send(true);
                let _ = controllers.await;
                return Leadership::Stopped;
            }
        }
    }
}
