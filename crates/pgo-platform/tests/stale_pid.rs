#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A stale `postmaster.pid` whose pid now belongs to another process (pid
//! reuse) must never get that process signalled.

use pgo_api::cluster::MemberRole;
use pgo_api::instance::InstanceConfig;
use pgo_platform::Platform;
use pgo_platform::local::{LocalPlatform, LocalSettings, is_alive};
use std::os::unix::process::CommandExt;
use std::path::Path;

struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(dir: &Path, volume: &Path) -> InstanceConfig {
    InstanceConfig {
        name: "db".into(),
        cluster: "db".into(),
        role: MemberRole::Primary,
        volume_dir: volume.to_path_buf(),
        listen_address: "127.0.0.1".into(),
        port: 1,
        http_address: "127.0.0.1".into(),
        http_port: 1,
        allowed_cidrs: vec!["127.0.0.1/32".into()],
        database: "userdb".into(),
        app_user: "testuser".into(),
        superuser_secret: dir.join("s"),
        replication_secret: dir.join("r"),
        app_secret: dir.join("a"),
        token_file: dir.join("token"),
        pg_bin_dir: None,
        primary: None,
        sync_standbys: vec![],
        synchronous: false,
        run_as: None,
        probe: Default::default(),
        isolation: None,
        tls: None,
        postgres_log: None,
        postgres_tls: None,
        backrest: None,
        restore: None,
        seed: None,
        custom: None,
        reloads: 0,
        restarts: 0,
        exporter: None,
    }
}

#[tokio::test]
async fn removing_an_instance_spares_a_process_that_merely_looks_like_postgres() {
    let home = tempfile::tempdir().unwrap();
    let platform = LocalPlatform::new(LocalSettings {
        home: home.path().to_path_buf(),
        data_dir: home.path().join("volumes"),
        exe: "/bin/false".into(),
        pg_bin_dir: None,
        probe: Default::default(),
        port_range: pgo_platform::local::ports::DEFAULT_RANGE,
    })
    .unwrap();
    // Another cluster's "postgres", by its command line, not ours.
    let other = Reaped(
        std::process::Command::new("sleep")
            .arg0("postgres")
            .arg("60")
            .spawn()
            .unwrap(),
    );
    let pid = other.0.id();
    let instance = home.path().join("instances/db");
    let volume = home.path().join("volumes/db");
    std::fs::create_dir_all(&instance).unwrap();
    std::fs::create_dir_all(volume.join("pgdata")).unwrap();
    std::fs::write(
        instance.join("instance.json"),
        serde_json::to_vec(&config(&instance, &volume)).unwrap(),
    )
    .unwrap();
    std::fs::write(volume.join("pgdata/postmaster.pid"), format!("{pid}\n")).unwrap();

    platform.remove_instance("db").await.unwrap();
    assert!(!instance.exists(), "the instance record goes");
    assert!(
        is_alive(pid),
        "a process not serving this data directory was signalled"
    );
}
