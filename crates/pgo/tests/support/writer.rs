//! A writer that keeps every acknowledged commit, and the check that none
//! was lost.

use super::{Server, connect, password, service_port};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Inserts sequence numbers through the primary service until told to stop,
/// reconnecting after errors, and keeps every one whose commit was
/// acknowledged.
pub struct Writer {
    stop: Arc<AtomicBool>,
    pub acked: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    pub async fn start(port: u16, password: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let setup = connect(port, "testuser", &password, "userdb").await.unwrap();
        setup
            .batch_execute("CREATE TABLE IF NOT EXISTS seq (id bigint primary key)")
            .await
            .unwrap();
        let (s, a) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let mut next: i64 = 0;
            let mut client = None;
            while !s.load(Ordering::Relaxed) {
                if client.is_none() {
                    client = tokio::time::timeout(
                        Duration::from_secs(2),
                        connect(port, "testuser", &password, "userdb"),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok);
                    if client.is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
                next += 1;
                let c = client.as_ref().unwrap();
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&next];
                let insert = c.execute("INSERT INTO seq VALUES ($1)", &params);
                match tokio::time::timeout(Duration::from_secs(30), insert).await {
                    Ok(Ok(_)) => a.lock().unwrap().push(next),
                    _ => client = None,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Writer { stop, acked, task }
    }

    pub async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(40), self.task).await;
        self.acked.lock().unwrap().clone()
    }
}

/// Every acknowledged id is on the primary now serving.
pub async fn assert_all_present(server: &Server, cluster: &str, acked: &[i64]) {
    let view = server.show_json(cluster);
    let c = connect(
        service_port(&view, cluster),
        "testuser",
        &password(&view, "testuser"),
        "userdb",
    )
    .await
    .unwrap();
    let present: BTreeSet<i64> = c
        .query("SELECT id FROM seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<&i64> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged commits are missing: {missing:?}",
        missing.len()
    );
    assert!(!acked.is_empty());
}
