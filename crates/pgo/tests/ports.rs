#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Ports on the local platform come from a range of their own, are never
//! shared, and a port taken anyway is named in the status with its holder.

mod support;

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use support::{Server, fast_server, members, signal_all};

#[test]
fn ports_come_from_their_range_and_no_two_objects_share_one() {
    let server = Server::start_prepared(&[], |home| {
        std::fs::write(
            home.join("pgo.yaml"),
            "Pgo:\n  ProbePeriodMs: 200\n  LocalPortRange: 21000-21999\n",
        )
        .unwrap();
    });
    let names: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    for name in &names {
        server.pgo_ok(&["create", "cluster", name, "--replica-count=1", "--no-wait"]);
    }
    let mut ports = Vec::new();
    for name in &names {
        server.wait_until(120, "every cluster to be ready with its replica", || {
            let v = server.show_json(name);
            v["phase"] == "Ready"
                && members(&v, "Replica").len() == 1
                && v["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|m| m["ready"] == true)
        });
        let v = server.show_json(name);
        for m in v["members"].as_array().unwrap() {
            ports.push(m["port"].as_u64().unwrap() as u16);
            let config: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(
                    server
                        .instance_dir(m["name"].as_str().unwrap())
                        .join("instance.json"),
                )
                .unwrap(),
            )
            .unwrap();
            ports.push(config["httpPort"].as_u64().unwrap() as u16);
        }
        for s in v["services"].as_array().unwrap() {
            ports.push(s["port"].as_u64().unwrap() as u16);
        }
    }
    assert_eq!(ports.len(), 6 * (2 * 2 + 2));
    assert!(ports.iter().all(|p| (21000..=21999).contains(p)), "{ports:?}");
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port is shared: {ports:?}");
}

#[test]
fn a_range_among_the_ephemeral_ports_stops_the_server_naming_both() {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let low: u16 = text.split_whitespace().next().unwrap().parse().unwrap();
    let err = support::refused_start(&format!("Pgo:\n  LocalPortRange: {}-{}\n", low, low + 100));
    assert!(
        err.contains("LocalPortRange") && err.contains("ephemeral") && err.contains(&low.to_string()),
        "{err}"
    );
}

#[test]
fn a_port_taken_by_another_process_is_named_with_its_holder() {
    let server = fast_server();
    server.pgo_ok(&["create", "cluster", "taken"]);
    let port = server.show_json("taken")["members"][0]["port"].as_u64().unwrap() as u16;
    let processes = server.processes_of("taken");
    signal_all(&processes, Signal::SIGKILL);
    // Someone else binds PostgreSQL's port the moment it is free.
    let squatter = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    };
    let me = format!("pid {}", std::process::id());
    server.wait_until(60, "the status to name who holds the port", || {
        let v = server.show_json("taken");
        let said = format!("{} {}", v["message"], v["members"][0]["message"]);
        said.contains(&format!("port {port}")) && said.contains(&me)
    });
    drop(squatter);
    server.wait_until(90, "the cluster to be ready once the port is free", || {
        server.show_json("taken")["phase"] == "Ready"
    });
}
