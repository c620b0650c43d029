#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The control channel on Kubernetes: the operator reaches each instance
//! manager over HTTPS, trusts only the operator's CA and the instance's own
//! name, and authenticates with that instance's own token. The managers
//! here serve from the Secret their pod mounts, as a pod would.

mod support;

use pgo_api::rest::CreateClusterRequest;
use pgo_kube::platform::ca::CA_SECRET;
use pgo_kube::platform::{HttpManagers, MANAGER_PORT, ManagerAddr, Managers};
use serde_json::{Value, json};
use std::time::Duration;
use support::fake_api::SECRETS;
use support::{World, ready_with};

fn data(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let b64 = secret["data"][key].as_str().unwrap_or_else(|| panic!("no {key}"));
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

fn manager_secret(w: &World, instance: &str) -> Value {
    w.api
        .get(SECRETS, &format!("{instance}-manager"))
        .unwrap_or_else(|| panic!("no Secret {instance}-manager"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_manager_has_its_own_token_and_certificate_and_the_operator_checks_both() {
    let w = World::over_https();
    w.create(CreateClusterRequest {
        name: "db".into(),
        replica_count: Some(1),
        ..Default::default()
    })
    .await;
    let status = w.until("db", ready_with(1)).await;
    let replica = support::a_replica(&status);

    // A Secret per instance: its own token, a certificate from the CA.
    let (primary_secret, replica_secret) = (manager_secret(&w, "db"), manager_secret(&w, &replica));
    let ca = data(&w.api.get(SECRETS, CA_SECRET).unwrap(), "ca.crt");
    assert_eq!(data(&primary_secret, "ca.crt"), ca);
    assert_ne!(data(&primary_secret, "token"), data(&replica_secret, "token"));
    assert_ne!(data(&primary_secret, "tls.crt"), data(&replica_secret, "tls.crt"));
    assert_eq!(
        primary_secret["metadata"]["ownerReferences"][0]["kind"],
        "Pgcluster"
    );

    let ips = w.api.kubelet();
    let managers = HttpManagers::new(MANAGER_PORT, w.ca.clone()).unwrap();
    let at = |instance: &str, ip_of: &str| ManagerAddr {
        instance: instance.to_string(),
        ip: ips[ip_of].clone(),
    };
    assert!(managers.status(&at("db", "db")).await.is_ok());
    // Another pod answering at the IP the operator expects "db" at is refused:
    // its certificate names another instance.
    let err = managers.status(&at("db", &replica)).await.unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("certificate"),
        "{err}"
    );
    // One instance's token opens no other instance's manager.
    let reload = |token: String, instance: &str| {
        let (managers, at) = (&managers, at(instance, instance));
        async move {
            managers
                .control(&at, &token, "/control/reload", &json!({}), Duration::from_secs(5))
                .await
        }
    };
    let err = reload(data(&primary_secret, "token"), &replica)
        .await
        .unwrap_err();
    assert!(err.contains("401"), "{err}");
    reload(data(&replica_secret, "token"), &replica).await.unwrap();

    // A manual failover goes through HTTPS with the target's own token.
    let task = support::manual_failover("db", &replica, 1);
    pgo_store::Api::<pgo_api::Pgtask>::new(w.ctx.store.clone())
        .create(&task)
        .await
        .unwrap();
    let status = w
        .until("db", |s| {
            s.primary.as_deref() == Some(replica.as_str()) && s.failovers.len() == 1
        })
        .await;
    assert_eq!(status.failovers[0].outcome, "succeeded");
    let calls = w.api.manager_calls();
    assert!(calls.iter().any(|c| c.path == "/control/promote" && c.authorized));
    // The refused one above, and no other.
    assert_eq!(calls.iter().filter(|c| !c.authorized).count(), 1, "{calls:?}");
    // The fenced primary's Secret went with it.
    assert!(w.api.get(SECRETS, "db-manager").is_none());
    support::rbac::assert_granted(&w.api.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_is_due_or_from_another_ca_is_made_anew_and_the_token_kept() {
    let w = World::over_https();
    w.create(support::request("db")).await;
    w.until("db", ready_with(0)).await;
    let before = manager_secret(&w, "db");

    // Nothing due: kept as it is.
    w.pass("db").await.unwrap();
    assert_eq!(manager_secret(&w, "db")["data"], before["data"]);

    // Due within the renewal window: a new certificate, the same token.
    let soon = pgo_platform::pki::day(3).unwrap().to_string();
    w.api.patch(
        SECRETS,
        "db-manager",
        json!({ "metadata": { "annotations": { "pgo.dev/cert-expires": soon } } }),
    );
    w.pass("db").await.unwrap();
    let renewed = manager_secret(&w, "db");
    assert_ne!(data(&renewed, "tls.crt"), data(&before, "tls.crt"));
    assert_eq!(data(&renewed, "token"), data(&before, "token"));
    let expires = renewed["metadata"]["annotations"]["pgo.dev/cert-expires"]
        .as_str()
        .unwrap();
    assert!(expires > soon.as_str(), "{expires}");

    // Signed by a CA that is not the operator's: made anew.
    use base64::Engine;
    let foreign = base64::engine::general_purpose::STANDARD.encode("not the CA");
    w.api
        .patch(SECRETS, "db-manager", json!({ "data": { "ca.crt": foreign } }));
    w.pass("db").await.unwrap();
    let again = manager_secret(&w, "db");
    assert_eq!(
        data(&again, "ca.crt"),
        data(&w.api.get(SECRETS, CA_SECRET).unwrap(), "ca.crt")
    );
    assert_ne!(data(&again, "tls.crt"), data(&renewed, "tls.crt"));
    // And the operator still reaches the manager with it.
    let ip = w.api.kubelet()["db"].clone();
    let managers = HttpManagers::new(MANAGER_PORT, w.ca.clone()).unwrap();
    managers
        .status(&ManagerAddr {
            instance: "db".into(),
            ip,
        })
        .await
        .unwrap();
    support::rbac::assert_granted(&w.api.log());
}
