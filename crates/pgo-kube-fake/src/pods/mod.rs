//! A kubelet stand-in that runs the rendered pods for real (as root): each
//! Deployment gets a pod whose first container runs as a local process from
//! the image's stand-in (`postgres-operator` and this machine's
//! PostgreSQL), in network and mount namespaces of its own, with its
//! volumes made as a kubelet makes them (`volumes`), as the pod's user
//! (`container`). Readiness probes set the pod's Ready condition, a failed
//! liveness probe or an exit restarts the container, deletion sends
//! SIGTERM and SIGKILL after the grace period, and Services route to ready
//! endpoints (`proxy`). Nothing here is told what the operator expects:
//! what the pod spec says is all it has.
//!
//! What it cannot show: images (the host's files stand in for every
//! image, so only containers of the operator's image run; others are
//! reported as not started), resource limits, and a second machine.

pub mod admission;
pub mod container;
pub mod net;
pub mod proxy;
pub mod volumes;

use crate::{DEPLOYMENTS, FakeApi, JOBS, NODES, PODS, SERVICES};
use container::Image;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every pod's service account token says (the fake API server
/// does not check tokens).
const SERVICE_ACCOUNT_TOKEN: &str = "fake-service-account-token";

/// Where pods run from.
#[derive(Clone, Debug)]
pub struct PodRuntime {
    /// Claims, pods' roots, volumes and logs live under it.
    pub dir: PathBuf,
    pub image: Image,
    /// The image names whose containers run (others cannot here): each is
    /// [`PodRuntime::image`], as two tags of one build would be.
    pub images: Vec<String>,
    /// OpenShift's restricted policy with this uid for the namespace: pods
    /// run as it, which no image knows ([`admission::restricted`]).
    pub restricted_uid: Option<u32>,
}

/// A running kubelet; dropping it stops every pod and removes the network.
pub struct Kubelet {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    node: Arc<Mutex<Node>>,
}

/// Where in a pod's directory its container's termination message is.
const TERMINATION_LOG: &str = "termination-log";

struct Pod {
    /// The uid of the Deployment or Job it belongs to.
    deployment_uid: String,
    /// The owner's pod template it was made from.
    template: Value,
    /// Its name and uid in the API server, once marked for deletion there:
    /// removed when stopped.
    deleted: Option<(String, String)>,
    /// The Job it runs, if it does (restartPolicy Never: run once).
    job: Option<String>,
    node: String,
    ns: String,
    n: u8,
    ip: String,
    dir: PathBuf,
    child: Option<Child>,
    started: Instant,
    restarts: u32,
    ready: bool,
    next_readiness: Instant,
    next_liveness: Instant,
    liveness_failures: u32,
    readiness_failures: u32,
    /// The pod's terminationGracePeriodSeconds.
    grace: Duration,
    /// Why the container is not running, if it is not.
    waiting: Option<String>,
}

struct Node {
    api: FakeApi,
    runtime: PodRuntime,
    bridge: net::Bridge,
    tokio: tokio::runtime::Runtime,
    ca_cert: String,
    pods: BTreeMap<String, Pod>,
    /// Pods being stopped, with their owner's uid: a Deployment's next pod
    /// waits (a Recreate rollout never runs two on one volume).
    stopping: Vec<(String, std::thread::JoinHandle<()>)>,
    services: BTreeMap<String, String>,
    endpoints: proxy::Endpoints,
    hosts: String,
    made: u32,
    /// Nodes lost: their processes stopped, their kubelet silent.
    lost: std::collections::BTreeSet<String>,
    /// Pods deleted while their node was lost: stopped when it is back.
    orphans: Vec<Pod>,
    /// Every Job pod that ended: (Job, whether it succeeded).
    ended: Vec<(String, bool)>,
}

impl FakeApi {
    /// Runs this API server's pods for real until the returned kubelet is
    /// dropped. Needs root: namespaces, mounts and identities.
    pub fn run_pods(&self, runtime: PodRuntime) -> Result<Kubelet, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err(
                "running pods for real needs root (namespaces, mounts, identities), as CI has".into(),
            );
        }
        std::fs::create_dir_all(&runtime.dir).map_err(|e| format!("{}: {e}", runtime.dir.display()))?;
        let bridge = net::Bridge::create()?;
        self.0
            .lock()
            .map_err(|_| "the API server's state is poisoned")?
            .graceful_pods = true;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // The API server as pods see it: HTTPS at the bridge's address,
        // named kubernetes.default.svc by their hosts file.
        let ca = pgo_platform::pki::Ca::generate("fake-kubernetes-ca", 30).map_err(|e| e.to_string())?;
        let (cert, _) = ca
            .issue(
                &[
                    "kubernetes.default.svc".into(),
                    "kubernetes.default.svc.cluster.local".into(),
                    bridge.host(),
                ],
                "kubernetes",
                30,
            )
            .map_err(|e| e.to_string())?;
        let tls = crate::tls::server_config(cert.cert.as_bytes(), cert.key.as_bytes())?;
        // As kube-controller-manager publishes it in every namespace.
        if self.get(crate::CONFIGMAPS, "kube-root-ca.crt").is_none() {
            self.put(
                crate::CONFIGMAPS,
                json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "kube-root-ca.crt" },
                    "data": { "ca.crt": ca.pem.cert } }),
            );
        }
        let api_port = self.serve_http();
        let listener = tokio
            .block_on(tokio::net::TcpListener::bind((bridge.host().as_str(), 443)))
            .map_err(|e| format!("cannot listen on {}:443: {e}", bridge.host()))?;
        tokio.spawn(proxy::api_front(listener, tls, api_port));
        let node = Arc::new(Mutex::new(Node {
            api: self.clone(),
            runtime,
            bridge,
            tokio,
            ca_cert: ca.pem.cert.clone(),
            pods: BTreeMap::new(),
            stopping: Vec::new(),
            services: BTreeMap::new(),
            endpoints: Arc::default(),
            hosts: String::new(),
            made: 0,
            lost: Default::default(),
            orphans: Vec::new(),
            ended: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (node, stop) = (node.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // A bug here must not leave pods running: the panic is
                    // said, and the drop still stops everything.
                    let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        lock(&node).pass();
                    }));
                    if let Err(e) = pass {
                        tracing_message(&format!("a pass panicked: {e:?}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Ok(Kubelet {
            stop,
            thread: Some(thread),
            node,
        })
    }
}

impl Kubelet {
    /// The IP of each running pod, by pod name.
    pub fn pod_ips(&self) -> BTreeMap<String, String> {
        let node = lock(&self.node);
        node.pods.iter().map(|(n, p)| (n.clone(), p.ip.clone())).collect()
    }

    /// A Service's address as pods and the host reach it.
    pub fn service_ip(&self, service: &str) -> Option<String> {
        lock(&self.node).services.get(service).cloned()
    }

    /// What a pod's containers wrote.
    pub fn log(&self, pod: &str) -> String {
        let node = lock(&self.node);
        node.pods
            .get(pod)
            .and_then(|p| std::fs::read_to_string(p.dir.join("container.log")).ok())
            .unwrap_or_default()
    }

    /// Every Job pod run so far: (Job, whether it succeeded).
    pub fn jobs_run(&self) -> Vec<(String, bool)> {
        lock(&self.node).ended.clone()
    }

    /// Kills every process of a pod at once (SIGKILL), as an OOM kill or
    /// a crashed container runtime would; its kubelet restarts it.
    pub fn kill_pod(&self, pod: &str) {
        let n = lock(&self.node);
        if let Some(p) = n.pods.get(pod) {
            signal_all(&p.ns, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// How often a pod's container was restarted.
    pub fn restarts(&self, pod: &str) -> Option<u32> {
        lock(&self.node).pods.get(pod).map(|p| p.restarts)
    }

    /// The node a pod runs on.
    pub fn node_of(&self, pod: &str) -> Option<String> {
        lock(&self.node).pods.get(pod).map(|p| p.node.clone())
    }

    /// Loses a node: every process of its pods is stopped (SIGSTOP), the
    /// Node is NotReady and, as the node controller marks them, so are its
    /// pods. Its kubelet says nothing more until [`Kubelet::restore_node`].
    pub fn lose_node(&self, node: &str) {
        let mut n = lock(&self.node);
        n.lost.insert(node.to_string());
        let names: Vec<String> = n
            .pods
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(k, _)| k.clone())
            .collect();
        for name in &names {
            signal_all(&n.pods[name].ns, nix::sys::signal::Signal::SIGSTOP);
            if n.api.get(PODS, name).is_some() {
                n.api.patch(
                    PODS,
                    name,
                    json!({ "status": { "conditions": [{ "type": "Ready", "status": "False" }] } }),
                );
            }
        }
        n.api.patch(
            NODES,
            node,
            json!({ "status": { "conditions": [{ "type": "Ready", "status": "Unknown" }] } }),
        );
    }

    /// The node is back: its processes go on (SIGCONT) and its kubelet
    /// acts again, first on the pods deleted meanwhile.
    pub fn restore_node(&self, node: &str) {
        let mut n = lock(&self.node);
        n.lost.remove(node);
        for p in n.pods.values().filter(|p| p.node == node) {
            signal_all(&p.ns, nix::sys::signal::Signal::SIGCONT);
        }
        for p in n.orphans.iter().filter(|p| p.node == node) {
            signal_all(&p.ns, nix::sys::signal::Signal::SIGCONT);
        }
        n.api.patch(
            NODES,
            node,
            json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } }),
        );
    }

    /// Where a claim's data is on this machine.
    pub fn claim_dir(&self, claim: &str) -> PathBuf {
        volumes::claim_dir(&lock(&self.node).runtime.dir, claim)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut node = lock(&self.node);
        let pods: Vec<String> = node.pods.keys().cloned().collect();
        for name in pods {
            if let Some(pod) = node.pods.remove(&name) {
                kill_all(&pod.ns);
                net::remove(&pod.ns);
            }
        }
        for pod in std::mem::take(&mut node.orphans) {
            kill_all(&pod.ns);
            net::remove(&pod.ns);
        }
        let stopping = std::mem::take(&mut node.stopping);
        for (_, t) in stopping {
            let _ = t.join();
        }
        // Whatever is left in this network's namespaces, however it got
        // there, goes with it.
        for ns in net::namespaces(&node.bridge.name) {
            kill_all(&ns);
            net::remove(&ns);
        }
    }
}

/// The node's state, even after a pass panicked holding it.
fn lock(node: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    node.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn signal_all(ns: &str, sig: nix::sys::signal::Signal) {
    for pid in net::pids(ns) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

fn kill_all(ns: &str) {
    for pid in net::pids(ns) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !net::pids(ns).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container port by number or by name.
fn port_of(container: &Value, port: &Value) -> Option<u16> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = port.as_str()?;
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == json!(name))
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// Runs an HTTP(S) GET probe from the host against the pod, as a kubelet
/// does (a certificate is not checked).
fn http_probe(ip: &str, container: &Value, probe: &Value) -> bool {
    let get = &probe["httpGet"];
    let Some(port) = port_of(container, &get["port"]) else {
        return false;
    };
    let scheme = get["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
    let path = get["path"].as_str().unwrap_or("/");
    let timeout = probe["timeoutSeconds"].as_u64().unwrap_or(1);
    std::process::Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            &timeout.to_string(),
        ])
        .arg(format!("{scheme}://{ip}:{port}{path}"))
        .output()
        .map(|o| {
            let code: u16 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
            (200..400).contains(&code)
        })
        .unwrap_or(false)
}

impl Node {
    fn pass(&mut self) {
        self.services();
        self.reap();
        self.deployments();
        self.jobs();
        self.lifecycle();
        self.endpoints();
    }

    /// Each Service gets an address on the pod network and a proxy per port;
    /// a headless one (`clusterIP: None`) none, but names for the pods that
    /// name it as their subdomain: `<hostname>.<subdomain>.<ns>.svc`.
    fn services(&mut self) {
        let all = self.api.list(SERVICES);
        let headless: Vec<String> = all
            .iter()
            .filter(|s| s["spec"]["clusterIP"] == "None")
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        for svc in all {
            let name = svc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if self.services.contains_key(&name) || headless.contains(&name) {
                continue;
            }
            let n = 200 + self.services.len() as u8;
            let Ok(ip) = self.bridge.add_address(n) else {
                continue;
            };
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                let port = p["port"].as_u64().unwrap_or(0) as u16;
                let bound = self
                    .tokio
                    .block_on(tokio::net::TcpListener::bind((ip.as_str(), port)));
                if let Ok(listener) = bound {
                    self.tokio.spawn(proxy::service(
                        listener,
                        name.clone(),
                        port,
                        self.endpoints.clone(),
                    ));
                }
            }
            self.services.insert(name, ip);
        }
        let mut hosts = format!(
            "127.0.0.1 localhost\n{} kubernetes.default.svc kubernetes.default.svc.cluster.local kubernetes.default kubernetes\n",
            self.bridge.host()
        );
        let ns = crate::NS;
        for (name, ip) in &self.services {
            hosts.push_str(&format!(
                "{ip} {name}.{ns}.svc {name}.{ns}.svc.cluster.local {name}.{ns} {name}\n"
            ));
        }
        for pod in self.pods.values().filter(|p| p.deleted.is_none()) {
            let spec = &pod.template["spec"];
            if let (Some(host), Some(sub)) = (spec["hostname"].as_str(), spec["subdomain"].as_str())
                && headless.iter().any(|h| h == sub)
            {
                hosts.push_str(&format!(
                    "{} {host}.{sub}.{ns}.svc {host}.{sub}.{ns}.svc.cluster.local\n",
                    pod.ip
                ));
            }
        }
        if hosts != self.hosts {
            // In place: each pod's /etc/hosts is a bind mount of the file.
            for pod in self.pods.values() {
                let _ = std::fs::write(pod.dir.join("etc/hosts"), &hosts);
            }
            self.hosts = hosts;
        }
    }

    /// Ready pods matching each Service's selector are its endpoints.
    fn endpoints(&mut self) {
        let pods = self.api.list(PODS);
        let mut map = BTreeMap::new();
        for svc in self.api.list(SERVICES) {
            let name = svc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let selector = svc["spec"]["selector"].as_object().cloned().unwrap_or_default();
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                let port = p["port"].as_u64().unwrap_or(0) as u16;
                let target = p.get("targetPort").cloned().unwrap_or(json!(port));
                let mut list = Vec::new();
                for pod in &pods {
                    let labels = &pod["metadata"]["labels"];
                    let selected = !selector.is_empty() && selector.iter().all(|(k, v)| &labels[k] == v);
                    // A terminating pod is no endpoint, whatever its probe said.
                    let ready = pod["metadata"]["deletionTimestamp"].is_null()
                        && pod["status"]["conditions"]
                            .as_array()
                            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
                    let ip = pod["status"]["podIP"].as_str();
                    let container = &pod["spec"]["containers"][0];
                    if let (true, true, Some(ip), Some(port)) =
                        (selected, ready, ip, port_of(container, &target))
                    {
                        list.push(format!("{ip}:{port}"));
                    }
                }
                map.insert((name.clone(), port), list);
            }
        }
        *self.endpoints.lock().unwrap() = map;
    }

    /// A pod deleted (marked, or gone) is stopped: SIGTERM to its main
    /// process, SIGKILL to all of it after its grace period; then, as a
    /// kubelet confirms, it leaves the API server. A pod on a lost node
    /// stays marked until the node is back or its deletion is forced.
    fn reap(&mut self) {
        let live: BTreeMap<String, (String, bool)> = self
            .api
            .list(PODS)
            .into_iter()
            .map(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let uid = p["metadata"]["uid"].as_str().unwrap_or_default().to_string();
                (name, (uid, p["metadata"]["deletionTimestamp"].is_string()))
            })
            .collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|n| live.get(*n).is_none_or(|(_, marked)| *marked))
            .cloned()
            .collect();
        let mut to_stop: Vec<Pod> = Vec::new();
        for name in gone {
            let Some(mut pod) = self.pods.remove(&name) else {
                continue;
            };
            pod.deleted = live.get(&name).map(|(uid, _)| (name.clone(), uid.clone()));
            if self.lost.contains(&pod.node) {
                // Its kubelet cannot hear of it until the node is back.
                self.orphans.push(pod);
            } else {
                to_stop.push(pod);
            }
        }
        let lost = self.lost.clone();
        let (back, still): (Vec<Pod>, Vec<Pod>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|p| !lost.contains(&p.node));
        self.orphans = still;
        to_stop.extend(back);
        for mut pod in to_stop {
            let owner = pod.deployment_uid.clone();
            let grace = pod.grace;
            let api = self.api.clone();
            let handle = std::thread::spawn(move || {
                if let Some(child) = &mut pod.child {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    let deadline = Instant::now() + grace;
                    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                kill_all(&pod.ns);
                if let Some(child) = &mut pod.child {
                    let _ = child.wait();
                }
                net::remove(&pod.ns);
                if let Some((name, uid)) = &pod.deleted {
                    api.pod_stopped(name, uid);
                }
            });
            self.stopping.push((owner, handle));
        }
        self.stopping.retain(|(_, t)| !t.is_finished());
    }

    /// Every Deployment has a pod (the ReplicaSet controller and the
    /// scheduler, in one), once its previous pod has stopped. A changed pod
    /// template is rolled out as `Recreate` does: the old pod is deleted,
    /// and the new one made once it has stopped.
    fn deployments(&mut self) {
        for d in self.api.list(DEPLOYMENTS) {
            let dname = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            let old: Vec<String> = self
                .pods
                .iter()
                .filter(|(_, p)| p.deployment_uid == uid && p.template != d["spec"]["template"])
                .map(|(name, _)| name.clone())
                .collect();
            for pod in old {
                self.api.delete(PODS, &pod);
            }
            if self.pods.values().any(|p| p.deployment_uid == uid) {
                continue;
            }
            if self.stopping.iter().any(|(owner, _)| *owner == uid) {
                continue;
            }
            let existing = self.api.list(PODS).into_iter().find(|p| {
                p.pointer("/metadata/ownerReferences/0/uid")
                    .and_then(Value::as_str)
                    == Some(uid.as_str())
            });
            if existing.is_some() {
                // Made by another kubelet (or by hand): not ours to run.
                continue;
            }
            if let Err(e) = self.create_pod(&d, "apps/v1", "Deployment", &dname, &uid) {
                tracing_message(&format!("pod for {dname}: {e}"));
            }
        }
    }

    /// An address no pod holds: not one running, nor one still stopping
    /// or stranded on a lost node (their namespaces are still there).
    fn free_n(&self) -> Option<u8> {
        (2..200u8).find(|n| {
            !self.pods.values().any(|p| p.n == *n)
                && !Path::new("/run/netns")
                    .join(format!("{}-{n}", self.bridge.name))
                    .exists()
        })
    }

    /// The Job controller: each Job without an outcome gets a pod, once
    /// the pod before it (if it failed) is done, up to its backoffLimit.
    fn jobs(&mut self) {
        for job in self.api.list(JOBS) {
            let status = &job["status"];
            if status["succeeded"].as_u64().unwrap_or(0) > 0 {
                continue;
            }
            let failed = status["failed"].as_u64().unwrap_or(0);
            if failed > job["spec"]["backoffLimit"].as_u64().unwrap_or(6) {
                continue;
            }
            let name = job["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let uid = job["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            if self.pods.values().any(|p| p.deployment_uid == uid) {
                continue;
            }
            if let Err(e) = self.create_pod(&job, "batch/v1", "Job", &name, &uid) {
                tracing_message(&format!("pod for job {name}: {e}"));
            }
        }
    }

    /// A Job's pod has ended: its outcome is the Job's, and its pod stays
    /// (Succeeded or Failed) until the Job goes.
    fn job_ended(&mut self, pod: &str, job: &str, success: bool) {
        self.ended.push((job.to_string(), success));
        let Some(j) = self.api.get(JOBS, job) else {
            return;
        };
        let patch = if success {
            json!({ "status": { "succeeded": 1 } })
        } else {
            json!({ "status": { "failed": j["status"]["failed"].as_u64().unwrap_or(0) + 1 } })
        };
        self.api.patch(JOBS, job, patch);
        if let Some(current) = self.api.get(PODS, pod) {
            let phase = if success { "Succeeded" } else { "Failed" };
            let message = self
                .pods
                .get(pod)
                .and_then(|p| std::fs::read_to_string(p.dir.join(TERMINATION_LOG)).ok())
                .unwrap_or_default();
            let container = &current["spec"]["containers"][0]["name"];
            self.api.patch(
                PODS,
                pod,
                json!({ "status": { "phase": phase,
                "conditions": [{ "type": "Ready", "status": "False" }],
                "containerStatuses": [{ "name": container, "ready": false, "restartCount": 0,
                    "state": { "terminated": { "exitCode": if success { 0 } else { 1 }, "message": message } } }] } }),
            );
        }
        if let Some(p) = self.pods.remove(pod) {
            net::remove(&p.ns);
        }
        if !success {
            // The next try is a new pod.
            self.api.delete(PODS, pod);
        }
    }

    fn create_pod(
        &mut self,
        d: &Value,
        api_version: &str,
        kind: &str,
        dname: &str,
        uid: &str,
    ) -> Result<(), String> {
        let n = self.free_n().ok_or("no pod address left")?;
        self.made += 1;
        let name = format!("{dname}-{:05}", self.made);
        let template = &d["spec"]["template"];
        let mut spec = template["spec"].clone();
        if let Some(uid) = self.runtime.restricted_uid {
            admission::restricted(&mut spec, uid)?;
        }
        let nodes: Vec<String> = self
            .api
            .names(NODES)
            .into_iter()
            .filter(|n| !self.lost.contains(n))
            .collect();
        // A scheduler's spreading, as far as pgo's templates ask for it:
        // the node with the fewest pods its preferred anti-affinity
        // selects, in turn among equals.
        let selectors: Vec<Value> = spec
            .pointer("/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| t["podAffinityTerm"]["labelSelector"].clone())
            .collect();
        let placed = self.api.list(PODS);
        let crowd = |node: &str| {
            placed
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node && p["metadata"]["deletionTimestamp"].is_null())
                .filter(|p| selectors.iter().any(|s| selects(s, &p["metadata"]["labels"])))
                .count()
        };
        let turn = self.made as usize % nodes.len().max(1);
        let node = (0..nodes.len())
            .map(|i| &nodes[(turn + i) % nodes.len()])
            .min_by_key(|n| crowd(n))
            .cloned()
            .ok_or("no node is ready to run a pod")?;
        spec["nodeName"] = json!(node);
        let (ns, ip) = self.bridge.pod(n)?;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": template["metadata"]["labels"].clone(),
                "annotations": template["metadata"]["annotations"].clone(),
                "ownerReferences": [{ "apiVersion": api_version, "kind": kind,
                    "name": dname, "uid": uid, "controller": true }],
            },
            "spec": spec,
            "status": { "phase": "Pending", "podIP": ip,
                "conditions": [{ "type": "Ready", "status": "False" }] },
        });
        self.api.put(PODS, pod.clone());
        let dir = self.runtime.dir.join("pods").join(&name);
        let mut p = Pod {
            deployment_uid: uid.to_string(),
            template: template.clone(),
            deleted: None,
            job: (kind == "Job").then(|| dname.to_string()),
            node,
            ns,
            n,
            ip,
            dir,
            child: None,
            started: Instant::now(),
            restarts: 0,
            ready: false,
            next_readiness: Instant::now(),
            next_liveness: Instant::now(),
            liveness_failures: 0,
            readiness_failures: 0,
            grace: Duration::from_secs(
                pod["spec"]["terminationGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(30),
            ),
            waiting: None,
        };
        let start = self.start_container(&pod, &p);
        match start {
            Ok(child) => p.child = Some(child),
            Err(e) => p.waiting = Some(e),
        }
        self.pods.insert(name, p);
        Ok(())
    }

    fn start_container(&self, pod: &Value, p: &Pod) -> Result<Child, String> {
        let container = &pod["spec"]["containers"][0];
        let image = container["image"].as_str().unwrap_or_default();
        if !self.runtime.images.iter().any(|i| i == image) {
            return Err(format!("image {image} is not on this machine"));
        }
        let etc = p.dir.join("etc");
        std::fs::create_dir_all(&etc).map_err(|e| e.to_string())?;
        self.write_etc(&etc)?;
        let token = [("token", SERVICE_ACCOUNT_TOKEN.as_bytes().to_vec())];
        let vols = volumes::make(&self.api, &self.runtime.dir, &p.dir, pod, &token)?;
        let mut mounts = volumes::mounts(container, &vols)?;
        if let Some(sa) = self.service_account(&p.dir, pod)? {
            mounts.push(volumes::Mount {
                source: volumes::Source::Dir(sa),
                target: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
                read_only: true,
            });
        }
        // The termination message: a file of the pod's the container may
        // write whoever it runs as, read when it ends. Under /dev it would
        // land in this machine's /dev, which containers share here.
        if let Some(path) = container["terminationMessagePath"].as_str() {
            if path.starts_with("/dev/") {
                return Err(format!(
                    "terminationMessagePath {path}: this stand-in cannot place a file under /dev; name another path"
                ));
            }
            let log = p.dir.join(TERMINATION_LOG);
            std::fs::write(&log, b"").map_err(|e| e.to_string())?;
            std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .map_err(|e| e.to_string())?;
            mounts.push(volumes::Mount {
                source: volumes::Source::File(log),
                target: path.to_string(),
                read_only: false,
            });
        }
        let read_only_root = container["securityContext"]["readOnlyRootFilesystem"].as_bool() == Some(true);
        let root = p.dir.join("root");
        let script = container::script(&root, &etc, &self.runtime.image.binary, &mounts, read_only_root);
        let env = container::env(pod, container, &self.runtime.image, &p.ip)?;
        let args: Vec<String> = container["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let identity = container::identity(pod, container, &self.runtime.image);
        container::start(
            &p.ns,
            &script,
            &root,
            identity,
            &env,
            &args,
            &p.dir.join("container.log"),
        )
    }

    /// The image's /etc/passwd and /etc/group (the host's, with the
    /// image's user), and the pod's /etc/hosts.
    fn write_etc(&self, etc: &Path) -> Result<(), String> {
        let uid = self.runtime.image.uid;
        let mut passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        if !passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        {
            passwd.push_str(&format!("pgo:x:{uid}:{uid}::/tmp:/bin/sh\n"));
        }
        let mut group = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
        if !group
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        {
            group.push_str(&format!("pgo:x:{uid}:\n"));
        }
        std::fs::write(etc.join("passwd"), passwd).map_err(|e| e.to_string())?;
        std::fs::write(etc.join("group"), group).map_err(|e| e.to_string())?;
        std::fs::write(etc.join("hosts"), &self.hosts).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The service account's token, CA and namespace, unless the pod
    /// opts out of them.
    fn service_account(&self, dir: &Path, pod: &Value) -> Result<Option<PathBuf>, String> {
        if pod["spec"]["automountServiceAccountToken"] == json!(false) {
            return Ok(None);
        }
        let d = dir.join("files/kube-api-access");
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        let gid = pod["spec"]["securityContext"]["fsGroup"].as_u64();
        for (file, content) in [
            ("token", SERVICE_ACCOUNT_TOKEN.to_string()),
            ("ca.crt", self.ca_cert.clone()),
            ("namespace", crate::NS.to_string()),
        ] {
            let path = d.join(file);
            std::fs::write(&path, content).map_err(|e| e.to_string())?;
            if let Some(gid) = gid {
                let _ = nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(gid as u32)));
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
        }
        Ok(Some(d))
    }

    /// Probes, restarts and the pod's status.
    fn lifecycle(&mut self) {
        let names: Vec<String> = self.pods.keys().cloned().collect();
        for name in names {
            let Some(pod) = self.api.get(PODS, &name) else {
                continue;
            };
            if self.pods.get(&name).is_some_and(|p| self.lost.contains(&p.node)) {
                continue;
            }
            let container = pod["spec"]["containers"][0].clone();
            let (exited, success) = {
                let p = self.pods.get_mut(&name).unwrap();
                match &mut p.child {
                    Some(c) => match c.try_wait() {
                        Ok(Some(status)) => (Some(status.to_string()), status.success()),
                        _ => (None, false),
                    },
                    None => (Some(p.waiting.clone().unwrap_or_default()), false),
                }
            };
            if exited.is_some()
                && let Some(job) = self.pods.get(&name).and_then(|p| p.job.clone())
            {
                if let Some(p) = self.pods.get(&name) {
                    kill_all(&p.ns);
                }
                self.job_ended(&name, &job, success);
                continue;
            }
            let restart = {
                let p = self.pods.get_mut(&name).unwrap();
                let backoff = Duration::from_secs(u64::from(p.restarts.min(5)) * 2);
                exited.is_some() && p.started.elapsed() >= backoff
            };
            if restart {
                let p = self.pods.get_mut(&name).unwrap();
                kill_all(&p.ns);
                p.restarts += 1;
                p.started = Instant::now();
                p.ready = false;
                let Some(p) = self.pods.remove(&name) else {
                    continue;
                };
                let started = self.start_container(&pod, &p);
                let mut p = p;
                match started {
                    Ok(c) => {
                        p.child = Some(c);
                        p.waiting = None;
                    }
                    Err(e) => {
                        p.child = None;
                        p.waiting = Some(e);
                    }
                }
                self.pods.insert(name.clone(), p);
            }
            let p = self.pods.get_mut(&name).unwrap();
            let now = Instant::now();
            let running = p.child.is_some() && exited.is_none();
            if running && now >= p.next_readiness {
                let probe = &container["readinessProbe"];
                if probe.is_null() || http_probe(&p.ip, &container, probe) {
                    p.readiness_failures = 0;
                    p.ready = true;
                } else {
                    // Not ready after failureThreshold failures in a row.
                    p.readiness_failures += 1;
                    let threshold = probe["failureThreshold"].as_u64().unwrap_or(3) as u32;
                    if p.readiness_failures >= threshold {
                        p.ready = false;
                    }
                }
                let period = probe["periodSeconds"].as_u64().unwrap_or(10);
                p.next_readiness = now + Duration::from_secs(period);
            }
            if running && now >= p.next_liveness && p.started.elapsed() > Duration::from_secs(5) {
                let probe = &container["livenessProbe"];
                if !probe.is_null() {
                    if http_probe(&p.ip, &container, probe) {
                        p.liveness_failures = 0;
                    } else {
                        p.liveness_failures += 1;
                    }
                    let threshold = probe["failureThreshold"].as_u64().unwrap_or(3) as u32;
                    if p.liveness_failures >= threshold {
                        // Restarted on the next pass, as if it had exited.
                        p.liveness_failures = 0;
                        kill_all(&p.ns.clone());
                    }
                    let period = probe["periodSeconds"].as_u64().unwrap_or(10);
                    p.next_liveness = now + Duration::from_secs(period);
                }
            }
            let ready = p.ready && running;
            let phase = if running { "Running" } else { "Pending" };
            let status = json!({
                "phase": phase,
                "podIP": p.ip,
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
                "containerStatuses": [{ "name": container["name"], "ready": ready, "restartCount": p.restarts,
                    "state": if running { json!({ "running": {} }) } else { json!({ "waiting": { "message": p.waiting.clone().unwrap_or_default() } }) } }],
            });
            if pod["status"] != status {
                self.api.patch(PODS, &name, json!({ "status": status }));
            }
        }
    }
}

fn tracing_message(m: &str) {
    eprintln!("stand-in kubelet: {m}");
}

/// Whether a label selector (matchLabels, and matchExpressions with In,
/// NotIn, Exists and DoesNotExist) selects `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_label = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let value = labels.get(key);
            let among = |v: &Value| e["values"].as_array().is_some_and(|vs| vs.contains(v));
            match e["operator"].as_str().unwrap_or_default() {
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                "In" => value.is_some_and(among),
                "NotIn" => !value.is_some_and(among),
                _ => false,
            }
        });
    by_label && by_expression
}
