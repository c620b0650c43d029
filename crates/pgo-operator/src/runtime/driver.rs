//! Runs a [`Queue`]: hands due keys to reconciles, up to the queue's
//! workers at once, each its own task, so a reconcile that blocks for
//! minutes holds one worker and its own key, never another key.

use super::metrics::Metrics;
use super::queue::{Outcome, Queue};
use super::triggers::{Route, watch_kind};
use crate::Context;
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

/// A reconcile's end: its key, how it went and how long it took.
type Ended = (String, Outcome, std::time::Duration);

/// Runs `reconcile` for every key as the queue makes it due, until `stop`.
///
/// The queue's `workers` are long-lived tasks, each taking one key at a
/// time: a reconcile's future lives in its worker, so a pass allocates no
/// task of its own (a task per pass cost a large allocation each, and
/// glibc's malloc consolidates its free lists on every one). A reconcile
/// that panics is a failure of its key; its worker goes on.
pub async fn drive<R, F>(
    controller: &'static str,
    workers: usize,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    reconcile: R,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) where
    R: Fn(String) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let mut queue: Queue<String> = Queue::new(workers);
    let workers = workers.max(1);
    let (work_tx, work_rx) = mpsc::channel::<String>(workers);
    let (ended_tx, mut ended_rx) = mpsc::channel::<Ended>(workers);
    let work_rx = Arc::new(tokio::sync::Mutex::new(work_rx));
    let reconcile = Arc::new(reconcile);
    // Dropped on return: every reconcile in flight is cut off.
    let mut pool = JoinSet::new();
    for _ in 0..workers {
        pool.spawn(work(
            controller,
            work_rx.clone(),
            ended_tx.clone(),
            reconcile.clone(),
        ));
    }
    drop(ended_tx);
    let mut signals_open = true;
    let _beating = super::heartbeats::Beating {
        beats: &metrics.heartbeats,
        controller,
    };
    let mut beat = tokio::time::interval(super::heartbeats::BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        metrics.heartbeats.beat(controller, Instant::now());
        for key in queue.take_ready(Instant::now()) {
            // Never full: the queue hands out at most one key per worker.
            if work_tx.send(key).await.is_err() {
                return;
            }
        }
        metrics.queue_depth(controller, queue.depth());
        let next = queue.next_due();
        tokio::select! {
            signal = signals.recv(), if signals_open => match signal {
                Some(Signal::Trigger(key)) => queue.trigger(key, Instant::now()),
                Some(Signal::Forget(key)) => queue.forget(&key),
                None => signals_open = false,
            },
            Some((key, outcome, took)) = ended_rx.recv() => {
                metrics.reconciled(controller, outcome, took);
                queue.done(key, outcome, Instant::now());
            },
            _ = sleep_until(next) => {}
            _ = beat.tick() => {}
            _ = stop.changed() => return,
        }
    }
}

/// One worker: takes a key, reconciles it, says how it ended; again.
async fn work<R, F>(
    controller: &'static str,
    keys: Arc<tokio::sync::Mutex<mpsc::Receiver<String>>>,
    ended: mpsc::Sender<Ended>,
    reconcile: Arc<R>,
) where
    R: Fn(String) -> F,
    F: Future<Output = Outcome>,
{
    use futures::FutureExt;
    loop {
        let Some(key) = keys.lock().await.recv().await else {
            return;
        };
        let started = Instant::now();
        let outcome = match std::panic::AssertUnwindSafe(reconcile(key.clone()))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::error!(controller, key = %key, "reconcile panicked");
                Outcome::Failed
            }
        };
        if ended.send((key, outcome, started.elapsed())).await.is_err() {
            return;
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
    R: Fn(Arc<Context>, String) -> F + Send + Sync + 'static,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Keys reconciled, in order, by a driver of 2 workers where `stuck`
    /// never ends and `bad` panics; everything else ends at once.
    #[tokio::test]
    async fn a_panic_fails_its_key_and_a_stuck_key_holds_only_its_worker() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let log = seen.clone();
        let reconcile = move |key: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(key.clone());
                match key.as_str() {
                    "stuck" => std::future::pending().await,
                    "bad" => panic!("a bug in one reconcile"),
                    _ => Outcome::Requeue(Duration::from_millis(20)),
                }
            }
        };
        let metrics = Arc::new(Metrics::default());
        let driver = tokio::spawn(drive("test", 2, rx, reconcile, metrics.clone(), stop));
        for key in ["stuck", "bad", "good"] {
            tx.send(Signal::Trigger(key.into())).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _ = stop_tx.send(true);
        driver.await.unwrap();

        let seen = seen.lock().unwrap();
        let count = |k: &str| seen.iter().filter(|s| *s == k).count();
        assert_eq!(count("stuck"), 1, "in flight once, never again");
        assert!(count("good") >= 5, "the other worker went on: {seen:?}");
        assert!(
            (1..=2).contains(&count("bad")),
            "retried after its backoff (0.5 s), not at once: {seen:?}"
        );
    }
}
