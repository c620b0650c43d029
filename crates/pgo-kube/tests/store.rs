#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Store over the Kubernetes API, against a mock API server that checks
//! every request the store makes and answers as Kubernetes would.

use futures::StreamExt;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use pgo_api::{Pgcluster, PgclusterSpec};
use pgo_kube::store::KubeStore;
use pgo_store::{Api, EventType, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn store() -> (KubeStore, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (KubeStore::new(kube::Client::new(service, "pgo"), "pgo"), handle)
}

const BASE: &str = "/apis/pgo.dev/v1/namespaces/pgo/pgclusters";

fn object(name: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "pgo.dev/v1",
        "kind": "Pgcluster",
        "metadata": { "name": name, "namespace": "pgo", "resourceVersion": rv },
        "spec": { "replicas": 1 }
    })
}

fn status(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("the server says {reason}"), "reason": reason, "code": code })
}

/// Takes the next request, checks it, answers it; returns its JSON body.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path: String,
    query: &[&str],
    code: u16,
    answer: Value,
) -> Value {
    let (request, send) = handle.next_request().await.expect("the store made no request");
    assert_eq!(request.method(), method);
    assert_eq!(request.uri().path(), path);
    let q = request.uri().query().unwrap_or("");
    for part in query {
        assert!(q.contains(part), "query {q:?} lacks {part:?}");
    }
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap(),
    );
    body
}

#[tokio::test]
async fn get_list_and_typed_reads() {
    let (store, mut h) = store();
    let (got, _) = tokio::join!(
        store.get("Pgcluster", "db"),
        expect(
            &mut h,
            Method::GET,
            format!("{BASE}/db"),
            &[],
            200,
            object("db", "7")
        )
    );
    assert_eq!(got.unwrap()["metadata"]["resourceVersion"], "7");

    let list = json!({ "apiVersion": "pgo.dev/v1", "kind": "PgclusterList", "metadata": { "resourceVersion": "42" },
                       "items": [object("a", "40"), object("b", "41")] });
    let (listed, _) = tokio::join!(
        store.list("Pgcluster"),
        expect(&mut h, Method::GET, BASE.to_string(), &[], 200, list)
    );
    let listed = listed.unwrap();
    assert_eq!(listed.resource_version, 42);
    assert_eq!(listed.items.len(), 2);

    // The typed view works the same over Kubernetes.
    let api: Api<Pgcluster> = Api::new(Arc::new(store.clone()));
    let (typed, _) = tokio::join!(
        api.get("db"),
        expect(
            &mut h,
            Method::GET,
            format!("{BASE}/db"),
            &[],
            200,
            object("db", "8")
        )
    );
    assert_eq!(typed.unwrap().spec.replicas, 1);

    let (missing, _) = tokio::join!(
        api.get_opt("nosuch"),
        expect(
            &mut h,
            Method::GET,
            format!("{BASE}/nosuch"),
            &[],
            404,
            status(404, "NotFound")
        )
    );
    assert!(missing.unwrap().is_none());
}

#[tokio::test]
async fn writes_carry_the_field_manager_and_map_conflicts() {
    let (store, mut h) = store();
    let api: Api<Pgcluster> = Api::new(Arc::new(store.clone()));
    let new = Pgcluster::new("db", PgclusterSpec::default());
    let (created, body) = tokio::join!(
        api.create(&new),
        expect(
            &mut h,
            Method::POST,
            BASE.to_string(),
            &["fieldManager=pgo"],
            201,
            object("db", "1")
        )
    );
    assert!(created.is_ok());
    assert_eq!(body["metadata"]["name"], "db");
    assert_eq!(body["kind"], "Pgcluster");

    let (again, _) = tokio::join!(
        api.create(&new),
        expect(
            &mut h,
            Method::POST,
            BASE.to_string(),
            &[],
            409,
            status(409, "AlreadyExists")
        )
    );
    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })));

    // A stale resourceVersion is sent as is, and the 409 is a conflict.
    let mut stale = Pgcluster::new("db", PgclusterSpec::default());
    stale.metadata.resource_version = Some("1".into());
    let (replaced, body) = tokio::join!(
        api.replace(&stale),
        expect(
            &mut h,
            Method::PUT,
            format!("{BASE}/db"),
            &["fieldManager=pgo"],
            409,
            status(409, "Conflict")
        )
    );
    assert_eq!(body["metadata"]["resourceVersion"], "1");
    assert!(replaced.unwrap_err().is_conflict());

    // Status goes through the status subresource.
    let (_, body) = tokio::join!(
        api.replace_status(&stale),
        expect(
            &mut h,
            Method::PUT,
            format!("{BASE}/db/status"),
            &[],
            200,
            object("db", "3")
        )
    );
    assert_eq!(body["metadata"]["name"], "db");
}

#[tokio::test]
async fn delete_held_by_a_finalizer_and_gone() {
    let (store, mut h) = store();
    let mut held = object("db", "5");
    held["metadata"]["deletionTimestamp"] = json!("2026-11-23T00:00:00Z");
    held["metadata"]["finalizers"] = json!(["pgo.dev/cluster"]);
    let (out, _) = tokio::join!(
        store.delete("Pgcluster", "db"),
        expect(&mut h, Method::DELETE, format!("{BASE}/db"), &[], 200, held)
    );
    assert!(out.unwrap().unwrap()["metadata"]["deletionTimestamp"].is_string());
    let done =
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200 });
    let (out, _) = tokio::join!(
        store.delete("Pgcluster", "db"),
        expect(&mut h, Method::DELETE, format!("{BASE}/db"), &[], 200, done)
    );
    assert!(out.unwrap().is_none());
    let (out, _) = tokio::join!(
        store.delete("Pgcluster", "x"),
        expect(
            &mut h,
            Method::DELETE,
            format!("{BASE}/x"),
            &[],
            404,
            status(404, "NotFound")
        )
    );
    assert!(out.unwrap_err().is_not_found());
}

#[tokio::test]
async fn watch_from_a_version_in_order_and_gone_when_too_old() {
    let (store, mut h) = store();
    let serve = async {
        let (request, send) = h.next_request().await.unwrap();
        let q = request.uri().query().unwrap().to_string();
        assert!(
            q.contains("watch=true") && q.contains("resourceVersion=10"),
            "{q}"
        );
        let lines = [
            json!({ "type": "ADDED", "object": object("a", "11") }),
            json!({ "type": "MODIFIED", "object": object("a", "12") }),
            json!({ "type": "BOOKMARK", "object": { "kind": "Pgcluster", "apiVersion": "pgo.dev/v1", "metadata": { "resourceVersion": "13" } } }),
            json!({ "type": "DELETED", "object": object("a", "14") }),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        send.send_response(Response::builder().body(Body::from(text.into_bytes())).unwrap());
    };
    let (watch, _) = tokio::join!(store.watch("Pgcluster", 10), serve);
    let events: Vec<_> = watch.unwrap().collect().await;
    let seen: Vec<(EventType, u64)> = events
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| (e.event_type, e.resource_version))
        .collect();
    assert_eq!(
        seen,
        [
            (EventType::Added, 11),
            (EventType::Modified, 12),
            (EventType::Deleted, 14)
        ],
        "bookmarks are not changes"
    );

    let api: Api<Pgcluster> = Api::new(Arc::new(store.clone()));
    let serve = async {
        let (_, send) = h.next_request().await.unwrap();
        let gone = json!({ "type": "ERROR", "object": status(410, "Expired") });
        send.send_response(
            Response::builder()
                .body(Body::from(format!("{gone}\n").into_bytes()))
                .unwrap(),
        );
    };
    let (watch, _) = tokio::join!(api.watch(1), serve);
    let first = watch.unwrap().next().await.unwrap();
    assert!(matches!(first, Err(StoreError::Gone(1))), "{first:?}");
}

#[tokio::test]
async fn an_unknown_kind_is_refused_without_a_request() {
    let (store, _h) = store();
    let err = store.get("Deployment", "x").await.unwrap_err();
    assert!(err.to_string().contains("no kind \"Deployment\""), "{err}");
}
