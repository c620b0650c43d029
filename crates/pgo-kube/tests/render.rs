#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What strategy 1 renders for a cluster, and the errors a bad strategy or
//! template gets.

mod common;

use common::cluster;
use pgo_api::{Pgcluster, Pgreplica, PgreplicaSpec, StorageSpec};
use pgo_kube::{
    CopyJob, RenderError, RenderOptions, Rendered, Templates, render_backup, render_cluster, render_rmdata,
};

fn replica(cluster: &str, name: &str) -> Pgreplica {
    Pgreplica::new(
        name,
        PgreplicaSpec {
            cluster_name: cluster.into(),
            storage: StorageSpec {
                size: "2G".into(),
                ..Default::default()
            },
            node_name: None,
        },
    )
}

fn render(c: &Pgcluster, r: &[Pgreplica]) -> Vec<Rendered> {
    render_cluster(c, r, &Templates::embedded(), &RenderOptions::default()).unwrap()
}

fn deployment<'a>(objects: &'a [Rendered], name: &str) -> &'a k8s_openapi::api::apps::v1::Deployment {
    objects
        .iter()
        .find_map(|o| match o {
            Rendered::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(&**d),
            _ => None,
        })
        .unwrap()
}

/// The pod template's spec of Deployment `name`.
fn pod_spec<'a>(objects: &'a [Rendered], name: &str) -> &'a k8s_openapi::api::core::v1::PodSpec {
    deployment(objects, name)
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

#[test]
fn a_cluster_is_a_pvc_configmap_and_deployment_per_instance_two_services_a_budget_and_a_policy() {
    let objects = render(&cluster("db"), &[replica("db", "db-a1b2")]);
    let kinds: Vec<(&str, String)> = objects.iter().map(|o| (o.kind(), o.name())).collect();
    assert_eq!(
        kinds,
        [
            ("PersistentVolumeClaim", "db".into()),
            ("PersistentVolumeClaim", "db-a1b2".into()),
            ("ConfigMap", "db-instance".into()),
            ("Deployment", "db".into()),
            ("ConfigMap", "db-a1b2-instance".into()),
            ("Deployment", "db-a1b2".into()),
            ("Service", "db".into()),
            ("Service", "db-replica".into()),
            ("PodDisruptionBudget", "db".into()),
            ("NetworkPolicy", "db".into()),
        ]
    );
    // A drain takes one instance of the cluster at a time, and never
    // blocks for good on a cluster of one.
    let Rendered::PodDisruptionBudget(pdb) = &objects[8] else {
        panic!()
    };
    let spec = pdb.spec.as_ref().unwrap();
    assert_eq!(
        spec.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    assert!(spec.min_available.is_none());
    assert_eq!(
        spec.selector.as_ref().unwrap().match_labels.as_ref().unwrap()["pg-cluster"],
        "db"
    );
    assert_eq!(
        pdb.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Pgcluster"
    );
    let primary = deployment(&objects, "db");
    let labels = primary.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["pg-cluster"], "db");
    assert_eq!(labels["role"], "primary");
    assert_eq!(primary.spec.as_ref().unwrap().replicas, Some(1));
    let pod = primary.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.args.as_ref().unwrap()[0], "instance");
    assert!(container.readiness_probe.is_some());
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_ref().unwrap(), &["ALL"]);
    assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    // No node asked for: no node affinity; instances of a cluster prefer
    // other hosts, and spread over zones where they can.
    let affinity = pod.affinity.as_ref().unwrap();
    assert!(affinity.node_affinity.is_none(), "no node asked for");
    let anti = affinity.pod_anti_affinity.as_ref().unwrap();
    let term = &anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0]
        .pod_affinity_term;
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    assert!(
        anti.required_during_scheduling_ignored_during_execution.is_none(),
        "a preference, so one node still runs a cluster"
    );
    let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
    assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
    assert_eq!(spread.when_unsatisfiable, "ScheduleAnyway");
    // Services select by labels, so a failover repoints them by relabelling.
    let Rendered::Service(replica_service) = &objects[7] else {
        panic!()
    };
    let selector = replica_service.spec.as_ref().unwrap().selector.as_ref().unwrap();
    assert_eq!(selector["role"], "replica");
    // The primary Service selects the primary instance by its own label,
    // which its pods carry from their template: no relabel in the path.
    let Rendered::Service(primary_service) = &objects[6] else {
        panic!()
    };
    let selector = primary_service.spec.as_ref().unwrap().selector.as_ref().unwrap();
    assert_eq!(selector.get("pgo-instance").map(String::as_str), Some("db"));
    assert!(!selector.contains_key("role"), "{selector:?}");
    let template_labels = primary
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(template_labels["pgo-instance"], "db");
    // PVCs have no owner (they stay); Deployments and Services do.
    let Rendered::PersistentVolumeClaim(pvc) = &objects[1] else {
        panic!()
    };
    assert!(pvc.metadata.owner_references.is_none());
    assert_eq!(
        pvc.spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "2G"
    );
    assert_eq!(
        primary.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Pgcluster"
    );
}

#[test]
fn the_replicas_config_follows_the_primary_service() {
    let objects = render(&cluster("db"), &[replica("db", "db-a1b2")]);
    let Rendered::ConfigMap(cm) = &objects[4] else {
        panic!()
    };
    let config: pgo_api::instance::InstanceConfig =
        serde_json::from_str(&cm.data.as_ref().unwrap()["instance.json"]).unwrap();
    let up = config.primary.unwrap();
    assert_eq!(up.host, "db.pgo.svc");
    assert_eq!(up.slot, "db_a1b2");
    assert_eq!(config.listen_address, "0.0.0.0");
}

#[test]
fn node_name_is_a_preferred_affinity_and_replicas_prefer_other_nodes() {
    let mut c = cluster("db");
    c.spec.node_name = Some("kubeadm-node2".into());
    let objects = render(&c, &[replica("db", "db-a1b2")]);
    let affinity = |d: &str| {
        let na = pod_spec(&objects, d)
            .affinity
            .clone()
            .unwrap()
            .node_affinity
            .unwrap();
        assert!(
            na.required_during_scheduling_ignored_during_execution.is_none(),
            "preferred only"
        );
        let term = &na.preferred_during_scheduling_ignored_during_execution.unwrap()[0];
        let expr = &term.preference.match_expressions.as_ref().unwrap()[0];
        (
            expr.key.clone(),
            expr.operator.clone(),
            expr.values.clone().unwrap(),
        )
    };
    assert_eq!(
        affinity("db"),
        (
            "kubernetes.io/hostname".into(),
            "In".into(),
            vec!["kubeadm-node2".into()]
        )
    );
    assert_eq!(
        affinity("db-a1b2"),
        (
            "kubernetes.io/hostname".into(),
            "NotIn".into(),
            vec!["kubeadm-node2".into()]
        )
    );
}

#[test]
fn a_shared_volume_is_used_and_custom_config_labels_the_primary_and_metrics_adds_a_container() {
    let mut c = cluster("db");
    c.spec.pvc_name = Some("shared".into());
    c.spec.custom_config = Some("olap".into());
    c.spec.metrics = true;
    let objects = render(&c, &[]);
    assert!(!objects.iter().any(|o| o.kind() == "PersistentVolumeClaim"));
    let primary = deployment(&objects, "db");
    assert_eq!(primary.metadata.labels.as_ref().unwrap()["custom-config"], "olap");
    let pod = primary.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 2);
    // The exporter connects as its own pg_monitor user, from its secret,
    // and runs pgo's queries from the instance's ConfigMap.
    let sidecar = &pod.containers[1];
    let env: std::collections::BTreeMap<_, _> = sidecar
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.as_str(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["DATA_SOURCE_USER_FILE"], "/etc/pgo/secrets/exporter/username");
    assert_eq!(env["DATA_SOURCE_PASS_FILE"], "/etc/pgo/secrets/exporter/password");
    assert!(!env.values().any(|v| v.contains("superuser")), "{env:?}");
    assert_eq!(
        sidecar.args.as_deref(),
        Some(&["--extend.query-path=/etc/pgo/instance/queries.yaml".to_string()][..])
    );
    let projected = serde_json::to_string(&pod.volumes).unwrap();
    assert!(projected.contains("db-exporter-secret"), "{projected}");
    let map = objects
        .iter()
        .find_map(|o| match o {
            Rendered::ConfigMap(m) if o.name() == "db-instance" => Some(m),
            _ => None,
        })
        .unwrap();
    assert!(map.data.as_ref().unwrap()["queries.yaml"].contains("pg_replication:"));
    let claim = pod.volumes.as_ref().unwrap()[0]
        .persistent_volume_claim
        .as_ref()
        .unwrap();
    assert_eq!(claim.claim_name, "shared");
}

#[test]
fn an_unknown_strategy_is_an_error_naming_it() {
    let mut c = cluster("db");
    c.spec.strategy = "7".into();
    let err = render_cluster(&c, &[], &Templates::embedded(), &RenderOptions::default()).unwrap_err();
    assert!(matches!(err, RenderError::UnknownStrategy { .. }));
    assert!(err.to_string().contains("\"7\""), "{err}");
}

#[test]
fn a_broken_or_wrong_template_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster-service-1.json"),
        "{ \"kind\": \"Service\", oops }",
    )
    .unwrap();
    let t = Templates::with_overrides(dir.path()).unwrap();
    let err = render_cluster(&cluster("db"), &[], &t, &RenderOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("cluster-service-1.json") && err.to_string().contains("invalid JSON"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("cluster-service-1.json"),
        "{ \"apiVersion\": \"v1\", \"kind\": \"ConfigMap\" }",
    )
    .unwrap();
    let t = Templates::with_overrides(dir.path()).unwrap();
    let err = render_cluster(&cluster("db"), &[], &t, &RenderOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("renders a ConfigMap, not a Service"),
        "{err}"
    );

    std::fs::write(dir.path().join("cluster-service-1.json"), "{{ unclosed").unwrap();
    let t = Templates::with_overrides(dir.path()).unwrap();
    let err = render_cluster(&cluster("db"), &[], &t, &RenderOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not render"), "{err}");
}

#[test]
fn a_strategy_added_by_override_is_used() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in Templates::embedded().files() {
        if let Some(stem) = name.strip_suffix("-1.json") {
            std::fs::write(
                dir.path().join(format!("{stem}-2.json")),
                text.replace(
                    "\"strategy\": { \"type\": \"Recreate\" }",
                    "\"strategy\": { \"type\": \"Recreate\" }, \"minReadySeconds\": 5",
                ),
            )
            .unwrap();
        }
    }
    let t = Templates::with_overrides(dir.path()).unwrap();
    assert_eq!(t.strategies(), ["1", "2"]);
    let opts = RenderOptions {
        strategy: Some("2".into()),
        ..RenderOptions::default()
    };
    let objects = render_cluster(&cluster("db"), &[], &t, &opts).unwrap();
    assert_eq!(
        deployment(&objects, "db")
            .spec
            .as_ref()
            .unwrap()
            .min_ready_seconds,
        Some(5)
    );
}

#[test]
fn rmdata_and_backup_jobs() {
    let Rendered::Job(j) = render_rmdata(
        "db",
        "db-a1b2",
        "data",
        &Templates::embedded(),
        &RenderOptions::default(),
    )
    .unwrap() else {
        panic!()
    };
    let spec = j.spec.unwrap();
    // A Job that hangs ends, and a finished one does not stay for good.
    assert!(spec.active_deadline_seconds.is_some());
    assert!(spec.ttl_seconds_after_finished.is_some());
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(args, ["job", "rmdata", "--path", "/pgdata/data"]);
    let Rendered::Job(b) =
        render_backup(&copy_job(), &Templates::embedded(), &RenderOptions::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(b.metadata.name.as_deref(), Some("db-backup-1"));
    let spec = b.spec.unwrap();
    assert!(spec.active_deadline_seconds.is_some() && spec.ttl_seconds_after_finished.is_some());
    assert_eq!(
        spec.backoff_limit,
        Some(0),
        "a failed copy is reported, not tried again"
    );
    let pod = spec.template.spec.unwrap();
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap();
    assert_eq!(args[..2], ["job", "basebackup"]);
    assert!(
        args.windows(2)
            .any(|w| w == ["--path", "db-backups/2026-11-24-10-00-00"]),
        "{args:?}"
    );
    // It writes its result where the kubelet reads the termination message.
    let result = args
        .iter()
        .position(|a| a == "--result")
        .map(|i| args[i + 1].clone());
    assert_eq!(result, c.termination_message_path.clone());
    // It verifies PostgreSQL's certificate with the CA, and only the CA of
    // the instance's manager secret is mounted (not its key or token).
    let env: Vec<_> = c
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(
        env.contains(&("PGSSLMODE".into(), "verify-full".into())),
        "{env:?}"
    );
    let ca = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "ca")
        .unwrap()
        .secret
        .unwrap();
    assert_eq!(ca.secret_name.as_deref(), Some("db-manager"));
    assert_eq!(
        ca.items
            .unwrap()
            .iter()
            .map(|i| i.key.as_str())
            .collect::<Vec<_>>(),
        ["ca.crt"]
    );
}

fn copy_job() -> CopyJob<'static> {
    CopyJob {
        name: "db-backup-1",
        cluster: "db",
        host: "db.pgo.svc".into(),
        port: 5432,
        pvc: "db-backup",
        path: "db-backups/2026-11-24-10-00-00",
        instance: "db",
    }
}

/// Every pod's securityContext, the Jobs' too.
fn pod_security_contexts(
    opts: &RenderOptions,
) -> Vec<(String, k8s_openapi::api::core::v1::PodSecurityContext)> {
    let templates = Templates::embedded();
    let objects = render_cluster(&cluster("db"), &[replica("db", "db-a1b2")], &templates, opts).unwrap();
    let mut out: Vec<_> = ["db", "db-a1b2"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                pod_spec(&objects, n).security_context.clone().unwrap(),
            )
        })
        .collect();
    for job in [
        render_rmdata("db", "db", "data", &templates, opts).unwrap(),
        render_backup(&copy_job(), &templates, opts).unwrap(),
    ] {
        let Rendered::Job(j) = job else { panic!() };
        let spec = j.spec.unwrap().template.spec.unwrap();
        assert!(
            spec.containers
                .iter()
                .all(|c| c.security_context.as_ref().unwrap().run_as_user.is_none())
        );
        out.push((j.metadata.name.unwrap(), spec.security_context.unwrap()));
    }
    out
}

#[test]
fn no_pod_names_its_uid_so_a_policy_may_assign_one() {
    for (name, sc) in pod_security_contexts(&RenderOptions::default()) {
        // The image's user runs; OpenShift's restricted policy puts its own
        // in, and refuses pods that name one outside its range.
        assert_eq!((sc.run_as_user, sc.run_as_group), (None, None), "{name}");
        assert_eq!(sc.run_as_non_root, Some(true), "{name}");
        assert_eq!(
            sc.fs_group,
            Some(i64::from(pgo_kube::render::IMAGE_GROUP)),
            "{name}"
        );
    }
    // `Cluster.DisableFSGroup`: the policy's fsGroup instead of the image's.
    let opts = RenderOptions {
        fs_group: None,
        ..RenderOptions::default()
    };
    for (name, sc) in pod_security_contexts(&opts) {
        assert_eq!((sc.run_as_user, sc.fs_group), (None, None), "{name}");
        assert_eq!(
            sc.fs_group_change_policy.as_deref(),
            Some("OnRootMismatch"),
            "{name}"
        );
    }
}

#[test]
fn pods_start_on_read_only_config_mounts_and_keep_their_data_directory_private() {
    let objects = render(&cluster("db"), &[replica("db", "db-a1b2")]);
    for name in ["db", "db-a1b2"] {
        let pod = pod_spec(&objects, name);
        // Without it the kubelet opens PGDATA to the group (2770) at every
        // mount, and PostgreSQL refuses to start on it.
        let sc = pod.security_context.as_ref().unwrap();
        assert!(sc.fs_group.is_some(), "{name}");
        assert_eq!(
            sc.fs_group_change_policy.as_deref(),
            Some("OnRootMismatch"),
            "{name}"
        );
        // Every mount but the data volume and the scratch directories is
        // read-only, so the manager writes nothing under them.
        let writable: Vec<&str> = pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.read_only != Some(true))
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(
            writable,
            ["/pgdata", "/var/run/postgresql", "/tmp", "/dev/shm"],
            "{name}"
        );
        // PostgreSQL's dynamic shared memory: the pod's own, in memory and
        // sized, not the container runtime's 64 MB default.
        let shm = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "shm")
            .unwrap();
        let shm = shm.empty_dir.as_ref().unwrap();
        assert_eq!(shm.medium.as_deref(), Some("Memory"));
        assert!(shm.size_limit.is_some());
        // The kubelet never SIGKILLs a shutdown the manager still has
        // time for (a switchover's checkpoint).
        let grace = pod.termination_grace_period_seconds.unwrap();
        assert!(
            grace > pgo_api::instance::STOP_BUDGET_SECONDS as i64,
            "{name}: grace {grace} s"
        );
        // No token but the one the isolation check reads, where it reads
        // it; no Service environment variables.
        assert_eq!(pod.automount_service_account_token, Some(false), "{name}");
        assert_eq!(pod.enable_service_links, Some(false), "{name}");
        let api_access = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "api-access")
            .unwrap();
        let sources = api_access.projected.as_ref().unwrap().sources.as_ref().unwrap();
        assert!(
            sources.iter().any(|s| s.service_account_token.is_some()),
            "{name}"
        );
        // One slow answer does not drop an instance from its Services.
        let ready = pod.containers[0].readiness_probe.as_ref().unwrap();
        assert!(ready.failure_threshold.unwrap() >= 3, "{name}");
        assert!(ready.timeout_seconds.unwrap() >= 2, "{name}");
    }
    for o in &objects {
        if let Rendered::ConfigMap(cm) = o {
            let config: pgo_api::instance::InstanceConfig =
                serde_json::from_str(&cm.data.as_ref().unwrap()["instance.json"]).unwrap();
            // PostgreSQL logs to the container's output: the config's
            // directory is a ConfigMap mount, which is always read-only.
            assert_eq!(config.postgres_log, None, "{}", o.name());
        }
    }
}

#[test]
fn a_priority_class_is_set_on_every_postgres_pod_when_configured() {
    let opts = RenderOptions {
        priority_class: Some("postgres-critical".into()),
        ..RenderOptions::default()
    };
    let objects = render_cluster(
        &cluster("db"),
        &[replica("db", "db-a1b2")],
        &Templates::embedded(),
        &opts,
    )
    .unwrap();
    for name in ["db", "db-a1b2"] {
        let pod = pod_spec(&objects, name);
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("postgres-critical"),
            "{name}"
        );
    }
    let plain = render(&cluster("db"), &[]);
    let pod = pod_spec(&plain, "db");
    assert_eq!(pod.priority_class_name, None);
}

#[test]
fn pods_are_guaranteed_by_default_and_take_a_clusters_resources() {
    use pgo_api::cluster::{Amounts, Resources};
    // (case, the cluster's resources, what the database container gets)
    let small = Resources {
        requests: Amounts {
            cpu: "100m".into(),
            memory: "256Mi".into(),
        },
        limits: Amounts {
            cpu: "1".into(),
            memory: "256Mi".into(),
        },
    };
    let cases = [
        ("nothing set", None, Resources::guaranteed_default()),
        ("a ContainerResources entry", Some(small.clone()), small),
    ];
    for (case, resources, want) in cases {
        let mut c = cluster("db");
        c.spec.metrics = true;
        c.spec.resources = resources;
        let objects = render(&c, &[replica("db", "db-a1b2")]);
        for name in ["db", "db-a1b2"] {
            let pod = pod_spec(&objects, name);
            let of = |container: usize, side: &str, what: &str| {
                let r = pod.containers[container].resources.clone().unwrap();
                let m = if side == "requests" { r.requests } else { r.limits };
                m.unwrap()[what].0.clone()
            };
            assert_eq!(of(0, "requests", "cpu"), want.requests.cpu, "{case} {name}");
            assert_eq!(of(0, "requests", "memory"), want.requests.memory, "{case}");
            assert_eq!(of(0, "limits", "cpu"), want.limits.cpu, "{case}");
            assert_eq!(of(0, "limits", "memory"), want.limits.memory, "{case}");
            // The exporter has its own, requests equal to limits, so it
            // never costs the pod its Guaranteed class.
            assert_eq!(pod.containers[1].name, "metrics");
            for what in ["cpu", "memory"] {
                assert_eq!(of(1, "requests", what), of(1, "limits", what), "{case} {what}");
            }
        }
    }
}

#[test]
fn a_network_policy_lets_through_what_each_port_needs() {
    for metrics in [false, true] {
        let mut c = cluster("db");
        c.spec.metrics = metrics;
        let objects = render(&c, &[replica("db", "db-a1b2")]);
        let policy = objects
            .iter()
            .find_map(|o| match o {
                Rendered::NetworkPolicy(p) => Some(p),
                _ => None,
            })
            .expect("no NetworkPolicy");
        let spec = policy.spec.clone().unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_labels.unwrap()["pg-cluster"],
            "db",
            "every pod of the cluster"
        );
        assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
        let rules: Vec<(i32, bool)> = spec
            .ingress
            .unwrap()
            .iter()
            .map(|r| {
                let port = match r.ports.as_ref().unwrap()[0].port.clone().unwrap() {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => p,
                    other => panic!("{other:?}"),
                };
                (port, r.from.is_some())
            })
            .collect();
        // PostgreSQL from anywhere; the manager from the operator only; the
        // exporter only when there is one.
        let mut want = vec![(5432, false), (8008, true)];
        if metrics {
            want.push((9187, false));
        }
        assert_eq!(rules, want, "metrics {metrics}");
    }
}

#[test]
fn storage_configs_make_the_claims_and_the_pods_groups() {
    let config = pgo_api::config::PgoConfig::from_yaml(
        "Storage:\n  nfs:\n    AccessMode: ReadWriteMany\n    Size: 3G\n    SupplementalGroups: 65534\n  ssd:\n    StorageClass: fast\n    Fsgroup: 26\n    Size: 2Gi\n",
    )
    .unwrap();
    let mut c = cluster("db");
    c.spec.primary_storage = config.storage_spec("nfs").unwrap().for_data();
    c.spec.replica_storage = config.storage_spec("ssd").unwrap();
    let mut r = replica("db", "db-abcd");
    r.spec.storage = c.spec.replica_storage.clone();
    let objects = render(&c, &[r]);
    let claim = |name: &str| {
        objects
            .iter()
            .find_map(|o| match o {
                Rendered::PersistentVolumeClaim(p) if o.name() == name => Some(p.spec.clone().unwrap()),
                _ => None,
            })
            .unwrap()
    };
    // A data volume is one node's at a time, whatever 3.4's NFS config said.
    let primary = claim("db");
    assert_eq!(primary.access_modes.unwrap(), ["ReadWriteOnce"]);
    assert_eq!(primary.resources.unwrap().requests.unwrap()["storage"].0, "3G");
    let replica_claim = claim("db-abcd");
    assert_eq!(replica_claim.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        replica_claim.resources.unwrap().requests.unwrap()["storage"].0,
        "2Gi"
    );
    // Every member's pod has the groups, so a failover changes no template.
    for name in ["db", "db-abcd"] {
        let sc = pod_spec(&objects, name).security_context.clone().unwrap();
        assert_eq!(sc.fs_group, Some(26), "{name}");
        assert_eq!(sc.supplemental_groups.as_deref(), Some(&[65534][..]), "{name}");
    }
}
