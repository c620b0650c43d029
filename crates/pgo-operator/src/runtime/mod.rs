//! The controller runtime every controller runs on: a work queue keyed by
//! object ([`queue`]), fed by watches that ignore the operator's own status
//! writes ([`triggers`]), drained by up to N concurrent reconciles
//! ([`driver`]), with the operator's metrics ([`metrics`]).

pub mod driver;
pub mod heartbeats;
pub mod metrics;
pub mod queue;
pub mod triggers;

pub use driver::Signal;
pub use metrics::Metrics;
pub use queue::Outcome;
