//! The operator's own metrics, in Prometheus' text format: what each
//! controller's queue does. Cheap to record (atomics), encoded only when
//! scraped.

use super::queue::Outcome;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum OutcomeLabel {
    Requeue,
    Wait,
    Failed,
    Gone,
}

impl From<Outcome> for OutcomeLabel {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Requeue(_) => OutcomeLabel::Requeue,
            Outcome::Wait(_) => OutcomeLabel::Wait,
            Outcome::Failed => OutcomeLabel::Failed,
            Outcome::Gone => OutcomeLabel::Gone,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: &'static str,
    outcome: OutcomeLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum FailoverReason {
    Manual,
    Auto,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum FailoverOutcome {
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailoverLabels {
    reason: FailoverReason,
    outcome: FailoverOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: FailoverReason,
}

/// The operator's series. They live in a registry that may hold others
/// too (the apiserver's), encoded together on one scrape.
pub struct Metrics {
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Histograms<ControllerLabel>,
    queue_depth: Family<ControllerLabel, Gauge>,
    failovers: Family<FailoverLabels, Counter>,
    failover_seconds: Histograms<ReasonLabel>,
    /// Whether each running controller's loop still turns (liveness).
    pub heartbeats: super::heartbeats::Heartbeats,
}

/// Counted, and scraped nowhere (tests, tools): the registry goes.
impl Default for Metrics {
    fn default() -> Self {
        Metrics::register(&mut Registry::default())
    }
}

impl Metrics {
    /// The same series, counted together, with heartbeats of its own: for
    /// another controller runtime in the process (another namespace's).
    pub fn with_own_heartbeats(&self) -> Metrics {
        Metrics {
            reconciles: self.reconciles.clone(),
            reconcile_seconds: self.reconcile_seconds.clone(),
            queue_depth: self.queue_depth.clone(),
            failovers: self.failovers.clone(),
            failover_seconds: self.failover_seconds.clone(),
            heartbeats: Default::default(),
        }
    }

    /// The series, registered into `registry` (prefix it: `pgo_operator`).
    pub fn register(registry: &mut Registry) -> Metrics {
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_seconds: Histograms<ControllerLabel> = Family::new_with_constructor(seconds_histogram);
        let queue_depth = Family::<ControllerLabel, Gauge>::default();
        let failovers = Family::<FailoverLabels, Counter>::default();
        let failover_seconds: Histograms<ReasonLabel> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "reconciles",
            "Reconciles, by controller and outcome",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconcile took",
            reconcile_seconds.clone(),
        );
        registry.register("queue_depth", "Keys due or being reconciled", queue_depth.clone());
        registry.register(
            "failovers",
            "Failovers finished, by reason (manual or auto) and outcome",
            failovers.clone(),
        );
        registry.register(
            "failover_duration_seconds",
            "From a failover's first step to its last",
            failover_seconds.clone(),
        );
        Metrics {
            reconciles,
            reconcile_seconds,
            queue_depth,
            failovers,
            failover_seconds,
            heartbeats: Default::default(),
        }
    }

    /// A failover ended; `reason` as recorded (`manual`, `auto: ...`).
    pub fn failover(&self, reason: &str, succeeded: bool, took: Duration) {
        let reason = if reason == pgo_core::failover::MANUAL {
            FailoverReason::Manual
        } else {
            FailoverReason::Auto
        };
        let outcome = if succeeded {
            FailoverOutcome::Succeeded
        } else {
            FailoverOutcome::Failed
        };
        self.failovers
            .get_or_create(&FailoverLabels {
                reason: reason.clone(),
                outcome,
            })
            .inc();
        if succeeded {
            self.failover_seconds
                .get_or_create(&ReasonLabel { reason })
                .observe(took.as_secs_f64());
        }
    }

    pub fn reconciled(&self, controller: &'static str, outcome: Outcome, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller,
                outcome: outcome.into(),
            })
            .inc();
        self.reconcile_seconds
            .get_or_create(&ControllerLabel { controller })
            .observe(took.as_secs_f64());
    }

    pub fn queue_depth(&self, controller: &'static str, depth: usize) {
        self.queue_depth
            .get_or_create(&ControllerLabel { controller })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Reconciles so far by `controller`, whatever their outcome.
    pub fn reconciles(&self, controller: &'static str) -> u64 {
        [
            OutcomeLabel::Requeue,
            OutcomeLabel::Wait,
            OutcomeLabel::Failed,
            OutcomeLabel::Gone,
        ]
        .into_iter()
        .map(|outcome| {
            self.reconciles
                .get_or_create(&ReconcileLabels { controller, outcome })
                .get()
        })
        .sum()
    }
}
