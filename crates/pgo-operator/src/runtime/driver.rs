//! Runs a [`Queue`]: hands due keys to reconciles, up to the queue's
//! workers at once, each its own task, so a reconcile that blocks for
//! minutes holds one worker and its own key, never another key.

use super::metrics::Metrics;
use super::queue::{Outcome, Queue};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a watch tells a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Something about this key changed: reconcile it now.
    Trigger(String),
    /// The object is gone.
    Forget(String),
}

/// Runs `reconcile` for every key as the queue makes it due, until `stop`.
pub async fn drive<R, F>(
    controller: &'static str,
    workers: usize,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    reconcile: R,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) where
    R: Fn(String) -> F,
    F: Future<Output = Outcome> + Send + 'static,
{
    let mut queue: Queue<String> = Queue::new(workers);
    let mut running: JoinSet<(String, Outcome, std::time::Duration)> = JoinSet::new();
    let mut keys: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut signals_open = true;
    loop {
        for key in queue.take_ready(Instant::now()) {
            let work = reconcile(key.clone());
            let owned = key.clone();
            let handle = running.spawn(async move {
                let started = Instant::now();
                let outcome = work.await;
                (owned, outcome, started.elapsed())
            });
            keys.insert(handle.id(), key);
        }
        metrics.queue_depth(controller, queue.depth());
        let next = queue.next_due();
        tokio::select! {
            signal = signals.recv(), if signals_open => match signal {
                Some(Signal::Trigger(key)) => queue.trigger(key, Instant::now()),
                Some(Signal::Forget(key)) => queue.forget(&key),
                None => signals_open = false,
            },
            ended = running.join_next_with_id(), if !running.is_empty() => {
                let now = Instant::now();
                match ended {
                    Some(Ok((id, (key, outcome, took)))) => {
                        keys.remove(&id);
                        metrics.reconciled(controller, outcome, took);
                        queue.done(key, outcome, now);
                    }
                    // A reconcile that panicked is a failure of its key.
                    Some(Err(e)) => {
                        if let Some(key) = keys.remove(&e.id()) {
                            tracing::error!(controller, key = %key, error = %e, "reconcile panicked");
                            metrics.reconciled(controller, Outcome::Failed, std::time::Duration::ZERO);
                            queue.done(key, Outcome::Failed, now);
                        }
                    }
                    None => {}
                }
            },
            _ = sleep_until(next) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
