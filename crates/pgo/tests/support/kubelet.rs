//! The in-memory API server with the stand-in kubelet running its pods
//! for real, and the server on the Kubernetes platform against it.

use super::kube::{kubeconfig, operator_conf, start_with};
use pgo_kube_fake::FakeApi;
use pgo_kube_fake::pods::container::Image;
use pgo_kube_fake::pods::{Kubelet, PodRuntime};
use std::path::Path;

/// The instance image the operator names by default.
pub fn image() -> String {
    format!("pgo/postgres-instance:{}", env!("CARGO_PKG_VERSION"))
}

/// Another tag of the same build, for an image change.
pub const NEXT_IMAGE: &str = "pgo/postgres-instance:next";

/// The images the templates name, and what stands in for them here.
pub fn kubelet(api: &FakeApi, dir: &Path, restricted_uid: Option<u32>) -> Kubelet {
    api.run_pods(PodRuntime {
        dir: dir.join("kubelet"),
        image: Image {
            binary: super::SERVER.into(),
            env: vec![("PGO_PG_BIN_DIR".into(), super::pg_bin_dir().display().to_string())],
            uid: 999,
        },
        images: vec![image(), NEXT_IMAGE.to_string()],
        restricted_uid,
    })
    .unwrap()
}

/// Records what the operator asked of the API server when the test ends.
pub struct Requests(FakeApi);

impl Drop for Requests {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            super::kube::record_requests(&self.0);
        }
    }
}

/// The in-memory API server on two nodes, the stand-in kubelet running its
/// pods, and the server on the Kubernetes platform with `pgo_yaml`. Fields
/// drop in order: the server, then the pods, then the directory.
pub struct Cluster {
    pub server: super::Server,
    pub requests: Requests,
    pub kubelet: Kubelet,
    pub api: FakeApi,
    pub dir: tempfile::TempDir,
}

pub fn cluster_env(pgo_yaml: Option<&str>) -> Cluster {
    cluster_env_as(pgo_yaml, None)
}

/// As [`cluster_env`], with OpenShift's restricted policy giving every pod
/// `restricted_uid` when there is one.
pub fn cluster_env_as(pgo_yaml: Option<&str>, restricted_uid: Option<u32>) -> Cluster {
    let dir = super::reachable_tempdir();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    let api = FakeApi::new(&["node-a", "node-b"]);
    let port = api.serve_http();
    let kubelet = kubelet(&api, dir.path(), restricted_uid);
    let server = start_with(&conf, &kubeconfig(dir.path(), port), pgo_yaml);
    Cluster {
        server,
        requests: Requests(api.clone()),
        kubelet,
        api,
        dir,
    }
}

impl Cluster {
    /// Every pod's container log, the ended ones' (Jobs) too.
    pub fn pod_logs(&self) -> String {
        let mut dirs: Vec<_> = std::fs::read_dir(self.dir.path().join("kubelet/pods"))
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        dirs.sort_by_key(|d| d.file_name());
        dirs.iter()
            .map(|d| {
                let log = std::fs::read_to_string(d.path().join("container.log")).unwrap_or_default();
                format!("--- {} ---\n{log}", d.file_name().to_string_lossy())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs `pgo args`, which must succeed; else what it, the pods and the
    /// server said.
    pub fn pgo_ok(&self, args: &[&str]) -> String {
        let out = self.server.pgo(args);
        assert!(
            out.status.success(),
            "pgo {}: {}\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            self.pod_logs(),
            self.server.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
