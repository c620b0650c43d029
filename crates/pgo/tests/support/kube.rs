//! The server on the Kubernetes platform against the in-memory API server:
//! the operator-conf of deploy/ as files, a kubeconfig, and the start.

use super::Server;
use std::path::{Path, PathBuf};

/// The operator-conf ConfigMap of deploy/, as files, the way Kubernetes mounts it.
pub fn operator_conf(dir: &Path) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/operator-conf.yaml"
    ))
    .unwrap();
    let doc = text.split("---\n").nth(1).unwrap();
    let map: serde_json::Value = serde_yaml::from_str(doc).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in map["data"].as_object().unwrap() {
        std::fs::write(dir.join(name), content.as_str().unwrap()).unwrap();
    }
}

/// The server on the Kubernetes platform, in namespace pgo.
pub fn start(conf: &Path, kubeconfig: &Path) -> Server {
    start_with(conf, kubeconfig, None)
}

/// The same, with `pgo_yaml` as its pgo.yaml.
pub fn start_with(conf: &Path, kubeconfig: &Path, pgo_yaml: Option<&str>) -> Server {
    let conf = conf.to_string_lossy().to_string();
    Server::start_env(
        &[
            "--platform",
            "kubernetes",
            "--operator-conf",
            &conf,
            "--namespace",
            "pgo",
        ],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        |home| {
            if let Some(yaml) = pgo_yaml {
                std::fs::write(home.join("pgo.yaml"), yaml).unwrap();
            }
        },
    )
}

/// A kubeconfig for the API server at `port`, namespace pgo.
pub fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: pgo\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

/// Leaves what the operator asked of `api` for the reverse RBAC audit
/// (`crates/pgo-kube/tests/rbac_audit.rs`), under the running test's name.
pub fn record_requests(api: &pgo_kube_fake::FakeApi) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rbac-audit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("pgo-{test}.log")), api.log().join("\n")).unwrap();
}

/// The in-memory API server over HTTP on two nodes, with stand-in managers,
/// a stand-in kubelet giving Deployments ready pods and a stand-in Job
/// controller finishing Jobs; and a kubeconfig for it under `dir`.
pub fn stand_in_api(dir: &Path) -> (pgo_kube_fake::FakeApi, PathBuf) {
    let api = pgo_kube_fake::FakeApi::new(&["node-a", "node-b"]);
    let port = api.serve_http();
    api.serve_managers();
    let kubelet = api.clone();
    std::thread::spawn(move || {
        loop {
            kubelet.kubelet();
            kubelet.finish_jobs();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    let kubeconfig = kubeconfig(dir, port);
    (api, kubeconfig)
}
