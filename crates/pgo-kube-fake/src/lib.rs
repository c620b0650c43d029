//! An in-memory Kubernetes API server, enough of one for the operator's
//! controllers: get, list (with label selectors), watch (over HTTP),
//! create, replace (with resourceVersion conflicts), the status
//! subresource, server-side apply (with field ownership: a field a manager
//! stops applying is removed), merge patches, deletion
//! with finalizers, and garbage collection by ownerReferences. A stand-in
//! kubelet gives Deployments their pods, and a stand-in Job controller
//! can finish Jobs. Every request is logged, so a test can say what was
//! (not) written. It serves a `kube::Client` in process, or HTTP on
//! loopback for a whole `postgres-operator` under test.
//!
//! Test support only: a broken invariant here is a broken test, so it
//! panics (unwrap) rather than carrying errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_server;
mod managers;
mod ownership;
pub mod pods;
mod tls;

pub use managers::ManagerCall;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use http_server::query_value;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const NS: &str = "pgo";
pub const PODS: &str = "/api/v1/namespaces/pgo/pods";
pub const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/pgo/deployments";
pub const SERVICES: &str = "/api/v1/namespaces/pgo/services";
pub const PVCS: &str = "/api/v1/namespaces/pgo/persistentvolumeclaims";
pub const CONFIGMAPS: &str = "/api/v1/namespaces/pgo/configmaps";
pub const SECRETS: &str = "/api/v1/namespaces/pgo/secrets";
pub const JOBS: &str = "/apis/batch/v1/namespaces/pgo/jobs";
pub const PGCLUSTERS: &str = "/apis/pgo.dev/v1/namespaces/pgo/pgclusters";
pub const PGREPLICAS: &str = "/apis/pgo.dev/v1/namespaces/pgo/pgreplicas";
pub const PGTASKS: &str = "/apis/pgo.dev/v1/namespaces/pgo/pgtasks";
pub const NODES: &str = "/api/v1/nodes";

/// The path of a core (`v1`) or apps/batch collection in namespace `ns`.
pub fn collection(ns: &str, resource: &str) -> String {
    match resource {
        "deployments" => format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        "jobs" => format!("/apis/batch/v1/namespaces/{ns}/jobs"),
        "pgclusters" | "pgreplicas" | "pgtasks" => format!("/apis/pgo.dev/v1/namespaces/{ns}/{resource}"),
        _ => format!("/api/v1/namespaces/{ns}/{resource}"),
    }
}

/// The namespace a collection's path names, if it names one.
fn namespace_of(coll: &str) -> Option<&str> {
    let mut segs = coll.split('/');
    segs.find(|s| *s == "namespaces")?;
    segs.next()
}

/// A change, as a watch reports it.
#[derive(Clone, Debug)]
pub struct Change {
    pub version: u64,
    pub collection: String,
    pub kind: &'static str,
    pub object: Value,
}

pub(crate) struct State {
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// Who applied which fields (server-side apply).
    owners: ownership::Owners,
    version: u64,
    log: Vec<String>,
    changes: Vec<Change>,
    feed: tokio::sync::broadcast::Sender<Change>,
    /// Deployments whose pods are not ready.
    pods_made: u32,
    /// Pod IPs are 127.<subnet>.<n>: loopback, and apart from another
    /// fake's in a test running beside this one.
    subnet: (u8, u8),
    serve_managers: bool,
    /// A kubelet runs the pods: a deleted pod on a node stays, marked,
    /// until that kubelet has stopped it (or the deletion is forced).
    graceful_pods: bool,
    manager_roles: BTreeMap<String, String>,
    manager_calls: Vec<managers::ManagerCall>,
}

impl Default for State {
    fn default() -> Self {
        State {
            objects: BTreeMap::new(),
            owners: ownership::Owners::default(),
            version: 0,
            log: Vec::new(),
            changes: Vec::new(),
            feed: tokio::sync::broadcast::channel(4096).0,
            pods_made: 0,
            subnet: {
                let seed = std::process::id() as u64
                    ^ std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos() as u64)
                        .unwrap_or(0);
                ((seed % 250 + 1) as u8, ((seed / 250) % 250 + 1) as u8)
            },
            serve_managers: false,
            graceful_pods: false,
            manager_roles: BTreeMap::new(),
            manager_calls: Vec::new(),
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeApi(Arc<Mutex<State>>);

fn status(code: u16, reason: &str, message: String) -> (u16, Value) {
    let s = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "message": message, "reason": reason, "code": code });
    (code, s)
}

/// A JSON answer to the in-process client.
fn reply(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// The collection, name and subresource a path names.
pub(crate) fn parse(path: &str) -> (String, Option<String>, Option<String>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let base = if segs[0] == "api" { 2 } else { 3 };
    let rest = &segs[base..];
    let (coll_len, tail) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (base + 3, &rest[3..])
    } else {
        (base + 1, &rest[1..])
    };
    let coll = format!("/{}", segs[..coll_len].join("/"));
    (
        coll,
        tail.first().map(|s| s.to_string()),
        tail.get(1).map(|s| s.to_string()),
    )
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub(crate) fn selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| p.strip_prefix("labelSelector="))
        .flat_map(|s| {
            decode(s)
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(crate) fn matches(object: &Value, sel: &[(String, String)]) -> bool {
    sel.iter().all(|(k, v)| {
        object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            == Some(v)
    })
}

/// JSON merge patch (RFC 7386): objects merge, `null` removes, the rest replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Method, path, query and content type of a request.
pub(crate) fn head<B>(req: &Request<B>) -> (Method, String, String, String) {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        req.method().clone(),
        req.uri().path().to_string(),
        req.uri().query().unwrap_or("").to_string(),
        content_type,
    )
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string()
}

impl State {
    fn bump(&mut self, object: &mut Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
    }

    fn record(&mut self, collection: &str, kind: &'static str, object: &Value) {
        let change = Change {
            version: self.version,
            collection: collection.to_string(),
            kind,
            object: object.clone(),
        };
        let _ = self.feed.send(change.clone());
        self.changes.push(change);
    }

    /// Stores `object` (already bumped) and records the change.
    fn store(&mut self, collection: &str, name: &str, object: Value, kind: &'static str) {
        self.record(collection, kind, &object);
        self.objects
            .entry(collection.to_string())
            .or_default()
            .insert(name.to_string(), object);
    }

    /// Stores a changed object. As the real server: a write that changes
    /// nothing keeps the version and tells no watch, and a deleted object
    /// whose last finalizer went is gone.
    fn write_back(&mut self, coll: &str, name: &str, before: &Value, mut cur: Value) -> (u16, Value) {
        if cur == *before {
            return (200, cur);
        }
        self.bump(&mut cur);
        let finalizers_gone = cur
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty());
        if cur.pointer("/metadata/deletionTimestamp").is_some() && finalizers_gone {
            self.remove(coll, name);
            return (200, cur);
        }
        self.store(coll, name, cur.clone(), "MODIFIED");
        (200, cur)
    }

    fn insert_new(&mut self, coll: &str, mut object: Value) -> Value {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.version += 1;
        let meta = &mut object["metadata"];
        meta["uid"] = json!(format!("uid-{}", self.version));
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        if let Some(ns) = namespace_of(coll) {
            meta["namespace"] = json!(ns);
        }
        self.bump(&mut object);
        self.store(coll, &name, object.clone(), "ADDED");
        object
    }

    /// Removes an object and, as the garbage collector would, what it owns.
    /// A pod a kubelet runs is only marked (`deletionTimestamp`): it goes
    /// when that kubelet has stopped it ([`FakeApi::pod_stopped`]).
    fn remove(&mut self, coll: &str, name: &str) -> Option<Value> {
        self.delete_with_grace(coll, name, None)
    }

    /// [`State::remove`], with the grace period a delete asked for: 0
    /// forces a pod's removal whatever its kubelet says.
    fn delete_with_grace(&mut self, coll: &str, name: &str, grace: Option<u64>) -> Option<Value> {
        if coll == PODS && self.graceful_pods && grace != Some(0) {
            let cur = self.objects.get(coll)?.get(name)?.clone();
            let finished = matches!(cur["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            if cur["spec"]["nodeName"].is_string() && !finished {
                if cur.pointer("/metadata/deletionTimestamp").is_none() {
                    let mut marked = cur.clone();
                    marked["metadata"]["deletionTimestamp"] = json!(now());
                    marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace.unwrap_or_else(|| {
                        cur["spec"]["terminationGracePeriodSeconds"]
                            .as_u64()
                            .unwrap_or(30)
                    }));
                    self.bump(&mut marked);
                    self.store(coll, name, marked.clone(), "MODIFIED");
                    return Some(marked);
                }
                return Some(cur);
            }
        }
        let mut gone = self.objects.get_mut(coll)?.remove(name)?;
        self.owners.forget(coll, name);
        self.bump(&mut gone);
        self.record(coll, "DELETED", &gone);
        let uid = gone["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let owned: Vec<(String, String)> = self
            .objects
            .iter()
            .flat_map(|(c, m)| {
                m.iter()
                    .filter(|(_, o)| {
                        o.pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == json!(uid)))
                    })
                    .map(|(n, _)| (c.clone(), n.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (c, n) in owned {
            self.remove(&c, &n);
        }
        Some(gone)
    }

    pub(crate) fn changes_since(
        &self,
        collection: &str,
        version: u64,
    ) -> (Vec<Change>, tokio::sync::broadcast::Receiver<Change>) {
        let past = self
            .changes
            .iter()
            .filter(|c| c.collection == collection && c.version > version)
            .cloned()
            .collect();
        (past, self.feed.subscribe())
    }

    pub(crate) fn handle(
        &mut self,
        method: &Method,
        path: &str,
        query: &str,
        content_type: &str,
        body: Value,
    ) -> (u16, Value) {
        let (coll, name, sub) = parse(path);
        let current = name
            .as_ref()
            .and_then(|n| self.objects.get(&coll).and_then(|m| m.get(n)).cloned());
        let not_found = |n: &str| status(404, "NotFound", format!("{coll} {n:?} not found"));
        match (method.clone(), name) {
            (Method::GET, None) => {
                if query.contains("watch=") {
                    return status(
                        405,
                        "MethodNotAllowed",
                        "watches are served over HTTP only".into(),
                    );
                }
                let sel = selector(query);
                let items: Vec<Value> = self
                    .objects
                    .get(&coll)
                    .map(|m| m.values().filter(|o| matches(o, &sel)).cloned().collect())
                    .unwrap_or_default();
                (
                    200,
                    json!({ "apiVersion": "v1", "kind": "List",
                    "metadata": { "resourceVersion": self.version.to_string() }, "items": items }),
                )
            }
            (Method::GET, Some(n)) => match current {
                Some(o) => (200, o),
                None => not_found(&n),
            },
            (Method::POST, None) => {
                let n = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
                if self.objects.get(&coll).is_some_and(|m| m.contains_key(&n)) {
                    return status(409, "AlreadyExists", format!("{n:?} already exists"));
                }
                (201, self.insert_new(&coll, body))
            }
            (Method::PUT, Some(n)) => {
                let Some(mut cur) = current else {
                    return not_found(&n);
                };
                let given = body.pointer("/metadata/resourceVersion").cloned();
                if given.is_some() && given != cur.pointer("/metadata/resourceVersion").cloned() {
                    return status(409, "Conflict", format!("the object {n:?} has been modified"));
                }
                let before = cur.clone();
                if sub.as_deref() == Some("status") {
                    cur["status"] = body["status"].clone();
                } else {
                    let keep = cur["metadata"].clone();
                    let kept_status = cur.get("status").cloned();
                    cur = body;
                    for k in [
                        "uid",
                        "creationTimestamp",
                        "deletionTimestamp",
                        "namespace",
                        "generation",
                    ] {
                        if let Some(v) = keep.get(k) {
                            cur["metadata"][k] = v.clone();
                        }
                    }
                    if let Some(s) = kept_status {
                        cur["status"] = s;
                    }
                    cur["metadata"]["resourceVersion"] = before["metadata"]["resourceVersion"].clone();
                }
                self.write_back(&coll, &n, &before, cur)
            }
            (Method::PATCH, Some(n)) => {
                let apply = content_type.contains("apply-patch");
                let manager = ownership::manager(query);
                match current {
                    None if apply => {
                        let mut fresh = Value::Object(Default::default());
                        self.owners.apply(&coll, &n, &manager, &mut fresh, &body);
                        (201, self.insert_new(&coll, fresh))
                    }
                    None => not_found(&n),
                    Some(mut cur) => {
                        let before = cur.clone();
                        if apply {
                            self.owners.apply(&coll, &n, &manager, &mut cur, &body);
                        } else {
                            merge(&mut cur, &body);
                        }
                        self.write_back(&coll, &n, &before, cur)
                    }
                }
            }
            (Method::DELETE, Some(n)) => {
                let Some(mut cur) = current else {
                    return not_found(&n);
                };
                let held = cur
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if held {
                    if cur.pointer("/metadata/deletionTimestamp").is_none() {
                        cur["metadata"]["deletionTimestamp"] = json!(now());
                        self.bump(&mut cur);
                        self.store(&coll, &n, cur.clone(), "MODIFIED");
                    }
                    return (200, cur);
                }
                let grace = body["gracePeriodSeconds"]
                    .as_u64()
                    .or_else(|| query_value(query, "gracePeriodSeconds").and_then(|g| g.parse().ok()));
                if let Some(marked) = self.delete_with_grace(&coll, &n, grace)
                    && marked.pointer("/metadata/deletionTimestamp").is_some()
                {
                    return (200, marked);
                }
                if coll.contains("pgo.dev") {
                    status(200, "", "deleted".into())
                } else {
                    (200, cur)
                }
            }
            (m, n) => status(405, "MethodNotAllowed", format!("{m} {coll} {n:?}")),
        }
    }
}

impl FakeApi {
    pub fn new(nodes: &[&str]) -> Self {
        let api = FakeApi::default();
        {
            let mut s = api.0.lock().unwrap();
            for n in nodes {
                s.insert_new(
                    NODES,
                    json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": n } }),
                );
            }
        }
        api
    }

    pub fn client(&self) -> kube::Client {
        self.client_cut_by(Arc::default())
    }

    /// A client that answers 503 while `cut` is set: a process cut off
    /// from the API server.
    pub fn client_cut_by(&self, cut: Arc<std::sync::atomic::AtomicBool>) -> kube::Client {
        let me = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let (me, cut) = (me.clone(), cut.clone());
            async move {
                if cut.load(std::sync::atomic::Ordering::SeqCst) {
                    let (code, body) = status(503, "ServiceUnavailable", "cut off".into());
                    return Ok::<_, std::convert::Infallible>(reply(code, &body));
                }
                Ok(me.serve(req).await)
            }
        });
        kube::Client::new(service, NS)
    }

    async fn serve(&self, req: Request<Body>) -> Response<Body> {
        let (method, path, query, content_type) = head(&req);
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let (code, answer) = {
            let mut s = self.0.lock().unwrap();
            s.log.push(format!("{method} {path}"));
            s.handle(&method, &path, &query, &content_type, body)
        };
        reply(code, &answer)
    }

    pub fn get(&self, coll: &str, name: &str) -> Option<Value> {
        self.0
            .lock()
            .unwrap()
            .objects
            .get(coll)
            .and_then(|m| m.get(name))
            .cloned()
    }

    pub fn names(&self, coll: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .objects
            .get(coll)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn list(&self, coll: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .objects
            .get(coll)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Puts an object as someone else (not pgo) would.
    pub fn put(&self, coll: &str, object: Value) {
        self.0.lock().unwrap().insert_new(coll, object);
    }

    /// Deletes an object as someone else (kubectl) would; what it owns goes too.
    pub fn delete(&self, coll: &str, name: &str) {
        self.0.lock().unwrap().remove(coll, name);
    }

    /// A kubelet has stopped a pod marked for deletion: it goes now, if it
    /// is still the pod `uid` names.
    pub(crate) fn pod_stopped(&self, name: &str, uid: &str) {
        let mut s = self.0.lock().unwrap();
        let same = s
            .objects
            .get(PODS)
            .and_then(|m| m.get(name))
            .is_some_and(|p| p["metadata"]["uid"] == json!(uid));
        if same {
            s.delete_with_grace(PODS, name, Some(0));
        }
    }

    /// Merges `patch` into an object, as a controller writing its status would.
    pub fn patch(&self, coll: &str, name: &str, patch: Value) {
        let mut s = self.0.lock().unwrap();
        let mut o = s
            .objects
            .get(coll)
            .and_then(|m| m.get(name))
            .cloned()
            .expect("no such object");
        merge(&mut o, &patch);
        s.bump(&mut o);
        s.store(coll, name, o, "MODIFIED");
    }

    /// The Job controller: every Job without an outcome succeeds.
    pub fn finish_jobs(&self) {
        let jobs = self.list(JOBS);
        for job in jobs
            .iter()
            .filter(|j| j.pointer("/status/succeeded").is_none() && j.pointer("/status/failed").is_none())
        {
            let name = job["metadata"]["name"].as_str().unwrap().to_string();
            self.patch(JOBS, &name, json!({ "status": { "succeeded": 1 } }));
        }
    }

    /// The requests made so far, as "METHOD path".
    pub fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().log.clone()
    }

    /// The kubelet and the ReplicaSet controller, in one: a running pod for
    /// every Deployment without one (from its pod template, owned by it),
    /// Ready. Returns the pods, by Deployment, with their IPs.
    pub fn kubelet(&self) -> BTreeMap<String, String> {
        let mut new_pods = Vec::new();
        let out = self.kubelet_pass(&mut new_pods);
        for (ip, secret) in new_pods {
            self.start_manager(ip, secret);
        }
        out
    }

    fn kubelet_pass(&self, new_pods: &mut Vec<(String, String)>) -> BTreeMap<String, String> {
        let mut s = self.0.lock().unwrap();
        // Every namespace's Deployments: what a pass compares (the whole
        // object only where a pod is made), so a pass over thousands of
        // them does not hold the API server's lock for long.
        let deployments: Vec<(String, String, Value, serde_json::Map<String, Value>)> = s
            .objects
            .iter()
            .filter(|(coll, _)| {
                coll.starts_with("/apis/apps/v1/namespaces/") && coll.ends_with("/deployments")
            })
            .flat_map(|(coll, m)| {
                let ns = namespace_of(coll).unwrap_or(NS).to_string();
                m.values().map(move |d| {
                    (
                        ns.clone(),
                        d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                        d["metadata"]["uid"].clone(),
                        d["spec"]["template"]["metadata"]["annotations"]
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
            })
            .collect();
        // Each namespace's pods by their owner's uid, found once per pass:
        // (name, annotations, IP).
        let mut owned: BTreeMap<String, BTreeMap<String, (String, Value, String)>> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (ns, dname, uid, template_annotations) in deployments {
            let pods_coll = collection(&ns, "pods");
            let by_owner = owned.entry(ns.clone()).or_insert_with(|| {
                s.objects
                    .get(&pods_coll)
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(|p| {
                        let owner = p.pointer("/metadata/ownerReferences/0/uid")?.as_str()?;
                        let seen = (
                            p["metadata"]["name"].as_str()?.to_string(),
                            p["metadata"]["annotations"].clone(),
                            p["status"]["podIP"].as_str().unwrap_or_default().to_string(),
                        );
                        Some((owner.to_string(), seen))
                    })
                    .collect()
            });
            let existing = uid.as_str().and_then(|u| by_owner.get(u)).cloned();
            // A changed template (its annotations say so) replaces the pod,
            // as a `Recreate` rollout does. Annotations put on the pod since
            // are its own.
            let existing = match existing {
                Some((name, annotations, _))
                    if template_annotations.iter().any(|(k, v)| annotations[k] != *v) =>
                {
                    s.remove(&pods_coll, &name);
                    None
                }
                other => other,
            };
            let d = match existing {
                Some(_) => Value::Null,
                None => s
                    .objects
                    .get(&collection(&ns, "deployments"))
                    .and_then(|m| m.get(&dname))
                    .cloned()
                    .unwrap_or(Value::Null),
            };
            let ip = match existing {
                Some((_, _, ip)) => ip,
                None => {
                    s.pods_made += 1;
                    let n = s.pods_made;
                    let template = &d["spec"]["template"];
                    let mut spec = template["spec"].clone();
                    spec["nodeName"] = json!(if n % 2 == 1 { "node-a" } else { "node-b" });
                    let pod = json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {
                            "name": format!("{dname}-{n:05}"),
                            "labels": template["metadata"]["labels"].clone(),
                            "annotations": template["metadata"]["annotations"].clone(),
                            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment",
                                "name": dname, "uid": uid, "controller": true }],
                        },
                        "spec": spec,
                        "status": { "phase": "Running", "podIP": format!("127.{}.{}.{}", s.subnet.0, s.subnet.1, n + 1),
                            "conditions": [{ "type": "Ready", "status": "True" }] },
                    });
                    let pod = s.insert_new(&pods_coll, pod);
                    if s.serve_managers {
                        let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
                        // The Secret the pod mounts with the manager's token, as a kubelet would.
                        let secret = pod["spec"]["volumes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.get("secret"))
                            .find(|v| {
                                v["items"]
                                    .as_array()
                                    .is_some_and(|items| items.iter().any(|i| i["key"] == "token"))
                            })
                            .and_then(|v| v["secretName"].as_str())
                            .unwrap_or_default();
                        new_pods.push((ip, format!("{ns}/{secret}")));
                    }
                    pod["status"]["podIP"].as_str().unwrap_or_default().to_string()
                }
            };
            // Keyed by name in the default namespace, `namespace/name` in others.
            let key = if ns == NS { dname } else { format!("{ns}/{dname}") };
            out.insert(key, ip);
        }
        out
    }
}
