//! A restore in place: the Pgtask `<cluster>-restore` that records it, and
//! its steps. While it exists the cluster's reconcile drives it and nothing
//! else: stop every instance, restore the primary's volume (the instance
//! manager runs `pgbackrest restore --delta` and promotes at the target),
//! then finish; replicas are made again from the restored primary.

use crate::names;
use pgo_api::cluster::{PitrTarget, PitrType};
use pgo_api::task::RESTORE;
use pgo_api::{Pgtask, PgtaskSpec, labels};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const TARGET_TYPE: &str = "targetType";
const TARGET: &str = "target";
const OPTIONS: &str = "options";

/// Where a restore is. Recorded in the task's status; a step this
/// operator does not know is an error, never taken for the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Replicas released (their data goes), every instance stopped.
    Stop,
    /// The primary restored and promoted at the target.
    Restore,
    /// Recorded in the cluster's history; the task goes.
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Stop => "stop",
            Step::Restore => "restore",
            Step::Finish => "finish",
        }
    }

    pub fn of_task(recorded: Option<&str>) -> Result<Step, String> {
        match recorded {
            None | Some("stop") => Ok(Step::Stop),
            Some("restore") => Ok(Step::Restore),
            Some("finish") => Ok(Step::Finish),
            Some(other) => Err(format!(
                "unknown restore step {other:?} (known: stop, restore, finish)"
            )),
        }
    }
}

/// What a restore task asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub target: Option<PitrTarget>,
    pub options: Vec<String>,
}

impl Order {
    /// The order as a task's parameters.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        let mut parameters = BTreeMap::new();
        if let Some(t) = &self.target {
            parameters.insert(TARGET_TYPE.to_string(), t.type_.as_str().to_string());
            parameters.insert(TARGET.to_string(), t.value.clone());
        }
        if !self.options.is_empty() {
            parameters.insert(OPTIONS.to_string(), self.options.join(" "));
        }
        parameters
    }

    /// The order a task's parameters hold.
    pub fn of(p: &BTreeMap<String, String>) -> Result<Order, String> {
        let target = match (p.get(TARGET_TYPE), p.get(TARGET)) {
            (None, _) => None,
            (Some(kind), value) => Some(PitrTarget {
                type_: PitrType::parse(kind).ok_or_else(|| format!("unknown target type {kind:?}"))?,
                value: value.cloned().unwrap_or_default(),
            }),
        };
        let options = p
            .get(OPTIONS)
            .map(|o| o.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Order { target, options })
    }

    /// The target as people read it.
    pub fn describe(&self) -> String {
        match &self.target {
            None => "the end of the archived WAL".into(),
            Some(t) if t.type_ == PitrType::Immediate => "the end of its backup".into(),
            Some(t) if t.type_ == PitrType::Time => t.value.clone(),
            Some(t) => format!("{} {}", t.type_.as_str(), t.value),
        }
    }
}

pub fn task(cluster: &str, order: &Order) -> Pgtask {
    let parameters = order.parameters();
    let mut t = Pgtask::new(
        &names::restore_task(cluster),
        PgtaskSpec {
            cluster_name: cluster.to_string(),
            task_type: RESTORE.to_string(),
            parameters,
        },
    );
    t.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    t
}

/// A restore task as recorded, read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub step: Step,
    pub order: Order,
    /// Names this restore to the instance manager, which restores once per
    /// id (the task's uid).
    pub id: String,
    pub started: Option<String>,
}

impl Task {
    pub fn of(t: &Pgtask) -> Result<Task, crate::plan::PlanError> {
        let name = t.metadata.name.clone().unwrap_or_default();
        let err = |why: String| crate::plan::PlanError {
            what: format!("restore task {name}"),
            why,
        };
        let status = t.status.clone().unwrap_or_default();
        let step = Step::of_task(status.step.as_deref()).map_err(err)?;
        let order = Order::of(&t.spec.parameters).map_err(err)?;
        Ok(Task {
            step,
            order,
            id: t.metadata.uid.clone().unwrap_or(name),
            started: status.started,
        })
    }

    /// The target as people read it.
    pub fn describe(&self) -> String {
        self.order.describe()
    }
}
