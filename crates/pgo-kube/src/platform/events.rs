//! Events on a Pgcluster, as `kubectl describe pgcluster` and `kubectl get
//! events` show them: core/v1 Events naming the Pgcluster as their object.

use super::KubePlatform;
use super::apply::api_error;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};
use pgo_platform::PlatformError;

const COMPONENT: &str = "pgo";

pub async fn record(p: &KubePlatform, e: &pgo_core::event::Event) -> Result<(), PlatformError> {
    let now = jiff::Timestamp::now();
    let namespace = p.opts.namespace.clone();
    let event = Event {
        metadata: ObjectMeta {
            // Unique, and sorted by time as kubectl lists them.
            name: Some(format!("{}.{:x}", e.cluster, now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(format!("{}/{}", pgo_api::GROUP, pgo_api::VERSION)),
            kind: Some("Pgcluster".into()),
            name: Some(e.cluster.clone()),
            namespace: Some(namespace),
            uid: e.cluster_uid.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.as_str().into()),
        message: Some(e.message.clone()),
        type_: Some(if e.reason.warning() { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some(e.reason.as_str().into()),
        count: Some(1),
        ..Default::default()
    };
    let api: Api<Event> = p.api();
    api.create(&PostParams::default(), &event)
        .await
        .map_err(|err| api_error(&format!("event {} of {}", e.reason.as_str(), e.cluster), err))?;
    Ok(())
}
