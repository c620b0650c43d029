//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go
//! does it, so that two operator pods can run and one reconciles.
//!
//! - A candidate takes the Lease when it is free or its holder has not
//!   renewed it for `lease`, judged by this process's own clock from when
//!   it last saw the record change (never by comparing clocks across
//!   machines).
//! - The leader renews every `retry`; every write carries the Lease's
//!   resourceVersion, so of two candidates one wins.
//! - A leader that has not renewed for `renew_deadline` (shorter than
//!   `lease`) stops leading before anyone else may take over.
//! - A leader that stops releases the Lease, so the next takes over at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Election {
    pub lease_name: String,
    /// This candidate, as the Lease's holder names it (the pod's name).
    pub identity: String,
    pub lease: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Election {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    pub fn new(lease_name: &str, identity: &str) -> Election {
        Election {
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// The label on the leader's pod: the apiserver's Service selects it, so
/// that `pgo` talks to the leader, whose home holds the users it knows.
pub const LEADER_LABEL: &str = "pgo-leader";

/// One who campaigns: the Leases of a namespace, the election, and the
/// pod to label while it leads.
pub struct Candidate {
    pub leases: Api<Lease>,
    pub pods: Api<Pod>,
    pub election: Election,
    pub pod: Option<String>,
}

impl Candidate {
    pub fn new(client: kube::Client, namespace: &str, election: Election, pod: Option<String>) -> Candidate {
        Candidate {
            leases: Api::namespaced(client.clone(), namespace),
            pods: Api::namespaced(client, namespace),
            election,
            pod,
        }
    }

    /// Campaigns until `stop`; the pod carries the label only while
    /// leading (a restarted container starts without it).
    pub async fn campaign(self, leading: watch::Sender<bool>, stop: watch::Receiver<bool>) {
        label(&self.pods, self.pod.as_deref(), false).await;
        let mut watching = leading.subscribe();
        let (pods, pod) = (self.pods.clone(), self.pod.clone());
        let labeller = async move {
            while watching.changed().await.is_ok() {
                let now = *watching.borrow_and_update();
                label(&pods, pod.as_deref(), now).await;
            }
        };
        let campaign = run(self.leases, self.election, leading, stop);
        tokio::join!(campaign, labeller);
    }
}

async fn label(pods: &Api<Pod>, pod: Option<&str>, leading: bool) {
    let Some(pod) = pod else {
        return;
    };
    let value = if leading {
        serde_json::json!("true")
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({ "metadata": { "labels": { LEADER_LABEL: value } } });
    if let Err(e) = pods
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(pod, leading, error = %e, "cannot label this pod");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("the lease {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The holder and renew time as last seen, and when this process saw
/// them change.
struct Observed {
    holder: Option<String>,
    renewed: Option<MicroTime>,
    seen_at: Instant,
}

/// Campaigns until `stop`; `leading` says whether this candidate leads.
/// Returns once it has stopped (and released the Lease if it held it).
pub async fn run(
    api: Api<Lease>,
    e: Election,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut observed: Option<Observed> = None;
    let mut renewed_at: Option<Instant> = None;
    loop {
        match attempt(&api, &e, &mut observed).await {
            Ok(true) => {
                renewed_at = Some(Instant::now());
                if !*leading.borrow() {
                    tracing::info!(identity = %e.identity, lease = %e.lease_name, "leading");
                    let _ = leading.send(true);
                }
            }
            Ok(false) => {
                renewed_at = None;
                if *leading.borrow() {
                    tracing::warn!(identity = %e.identity, "another candidate holds the lease; no longer leading");
                    let _ = leading.send(false);
                }
            }
            Err(err) => {
                tracing::warn!(identity = %e.identity, error = %err, "cannot reach the lease");
                if *leading.borrow() && renewed_at.is_none_or(|t| t.elapsed() >= e.renew_deadline) {
                    tracing::error!(identity = %e.identity, "lease not renewed in time; no longer leading");
                    let _ = leading.send(false);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(e.retry) => {}
            _ = stop.changed() => break,
        }
    }
    if *leading.borrow() {
        release(&api, &e).await;
        let _ = leading.send(false);
    }
}

fn api_err(e: &Election) -> impl FnOnce(kube::Error) -> ElectionError + '_ {
    move |source| ElectionError::Api {
        name: e.lease_name.clone(),
        source,
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// One try to take or keep the Lease: true when this candidate holds it.
async fn attempt(
    api: &Api<Lease>,
    e: &Election,
    observed: &mut Option<Observed>,
) -> Result<bool, ElectionError> {
    let Some(mut lease) = api.get_opt(&e.lease_name).await.map_err(api_err(e))? else {
        let fresh = Lease {
            metadata: ObjectMeta {
                name: Some(e.lease_name.clone()),
                ..Default::default()
            },
            spec: Some(held_by(e, None)),
        };
        return match api.create(&PostParams::default(), &fresh).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(err) => Err(api_err(e)(err)),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let changed = observed
        .as_ref()
        .is_none_or(|o| o.holder != holder || o.renewed != spec.renew_time);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renewed: spec.renew_time.clone(),
            seen_at: Instant::now(),
        });
    }
    let mine = holder.as_deref() == Some(e.identity.as_str());
    let expired = observed.as_ref().is_some_and(|o| o.seen_at.elapsed() >= e.lease);
    if !mine && holder.is_some() && !expired {
        return Ok(false);
    }
    // Ours to renew, or free, or expired: written with its resourceVersion.
    lease.spec = Some(if mine {
        held_by(e, Some(&spec))
    } else {
        LeaseSpec {
            lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + 1),
            ..held_by(e, None)
        }
    });
    match api.replace(&e.lease_name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        // Someone else wrote first: look again next time.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(err) => Err(api_err(e)(err)),
    }
}

/// The spec of a Lease held by `e`: a renewal of `current`, or new.
fn held_by(e: &Election, current: Option<&LeaseSpec>) -> LeaseSpec {
    let now = now();
    LeaseSpec {
        holder_identity: Some(e.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(e.lease.as_secs().max(1)).unwrap_or(i32::MAX)),
        acquire_time: current.and_then(|c| c.acquire_time.clone()).or(Some(now.clone())),
        renew_time: Some(now),
        lease_transitions: current.and_then(|c| c.lease_transitions).or(Some(0)),
        ..Default::default()
    }
}

/// Gives the Lease up, so the next candidate need not wait it out.
async fn release(api: &Api<Lease>, e: &Election) {
    let Ok(Some(mut lease)) = api.get_opt(&e.lease_name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(e.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    match api.replace(&e.lease_name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(identity = %e.identity, "lease released"),
        Err(err) => tracing::warn!(identity = %e.identity, error = %err, "cannot release the lease"),
    }
}
