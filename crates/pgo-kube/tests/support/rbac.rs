//! Checks requests against deploy/rbac.yaml: the operator's Role must grant
//! every verb the controllers used, on the resource they used it on. Each
//! test's requests are also recorded, for the reverse audit
//! (`tests/rbac_audit.rs`): every rule granted must have been used.

use std::collections::BTreeSet;

/// `(group, resource, verb)` the request "METHOD path" needs.
pub fn needs(line: &str) -> (String, String, String) {
    let (method, path) = line.split_once(' ').unwrap();
    let (path, watch) = match path.strip_suffix("?watch") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = if segs[0] == "api" {
        (String::new(), &segs[2..])
    } else {
        (segs[1].to_string(), &segs[3..])
    };
    let rest = if rest[0] == "namespaces" && rest.len() >= 3 {
        &rest[2..]
    } else {
        rest
    };
    let mut resource = rest[0].to_string();
    if let Some(sub) = rest.get(2) {
        resource = format!("{resource}/{sub}");
    }
    let named = rest.len() >= 2;
    let verb = match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (m, _) => panic!("unexpected method {m}"),
    };
    (group, resource, verb.to_string())
}

pub fn granted() -> BTreeSet<(String, String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rbac.yaml")).unwrap();
    let mut out = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = v["kind"].as_str().unwrap_or_default();
        if kind != "Role" && kind != "ClusterRole" {
            continue;
        }
        for rule in v["rules"].as_sequence().unwrap() {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            };
            for g in list("apiGroups") {
                for r in list("resources") {
                    for verb in list("verbs") {
                        out.insert((g.clone(), r.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

/// Where each test leaves the requests it made (a file per test).
pub fn audit_dir() -> std::path::PathBuf {
    // Set for tests; the benchmarks that share this module record to /tmp.
    option_env!("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("rbac-audit")
}

/// Leaves `log` for the reverse audit, under the running test's name.
pub fn record(log: &[String]) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    std::fs::create_dir_all(audit_dir()).unwrap();
    std::fs::write(audit_dir().join(format!("pgo-kube-{test}.log")), log.join("\n")).unwrap();
}

pub fn assert_granted(log: &[String]) {
    record(log);
    let granted = granted();
    let missing: BTreeSet<_> = log
        .iter()
        .map(|l| needs(l))
        .filter(|n| !granted.contains(n))
        .collect();
    assert!(missing.is_empty(), "deploy/rbac.yaml does not grant {missing:?}");
}
