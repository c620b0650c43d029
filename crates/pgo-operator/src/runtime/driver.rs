//! Runs a [`Queue`]: hands due keys to reconciles, up to the queue's
//! workers at once, each its own task, so a reconcile that blocks for
//! minutes holds one worker and its own key, never another key.

use super::metrics::Metrics;
use super::queue::{Outcome, Queue};
use super::triggers::{Route, watch_kind};
use crate::Context;
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
    let mut running: JoinSet<(Outcome, std::time::Duration)> = JoinSet::new();
    // The key of each reconcile in flight, by task: a panic reports only that.
    let mut keys: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut signals_open = true;
    loop {
        for key in queue.take_ready(Instant::now()) {
            let work = reconcile(key.clone());
            let handle = running.spawn(async move {
                let started = Instant::now();
                let outcome = work.await;
                (outcome, started.elapsed())
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
            Some(ended) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, result) = match ended {
                    Ok((id, done)) => (id, Ok(done)),
                    Err(e) => (e.id(), Err(e)),
                };
                let Some(key) = keys.remove(&id) else { continue };
                let (outcome, took) = result.unwrap_or_else(|e| {
                    // A reconcile that panicked is a failure of its key.
                    tracing::error!(controller, key = %key, error = %e, "reconcile panicked");
                    (Outcome::Failed, std::time::Duration::ZERO)
                });
                metrics.reconciled(controller, outcome, took);
                queue.done(key, outcome, Instant::now());
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

/// A controller: its watches, one per `(kind, route)`, and `feed` (keys
/// to trigger, from elsewhere), feed its queue, which `reconcile` drains
/// with the context's workers and metrics.
pub async fn run<R, F>(
    controller: &'static str,
    ctx: Arc<Context>,
    watches: Vec<(String, Route)>,
    feed: Option<mpsc::UnboundedReceiver<String>>,
    reconcile: R,
    stop: watch::Receiver<bool>,
) where
    R: Fn(Arc<Context>, String) -> F,
    F: Future<Output = Outcome> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    for (kind, route) in watches {
        tokio::spawn(watch_kind(
            ctx.store.clone(),
            kind,
            route,
            tx.clone(),
            stop.clone(),
        ));
    }
    if let Some(mut feed) = feed {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(key) = feed.recv().await {
                if tx.send(Signal::Trigger(key)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let (workers, metrics) = (ctx.config.pgo.reconcile_workers, ctx.metrics.clone());
    drive(
        controller,
        workers,
        rx,
        move |key| reconcile(ctx.clone(), key),
        metrics,
        stop,
    )
    .await;
}
