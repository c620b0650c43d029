//! Instance managers for pods that do not exist: each pod IP answers
//! `/status` from a report the test controls, and every control call is
//! recorded with the token it carried.

use pgo_api::cluster::MemberRole;
use pgo_api::instance::InstanceReport;
use pgo_api::rest::VolumeUsage;
use pgo_kube::{ManagerAddr, Managers};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Call {
    pub host: String,
    pub instance: String,
    pub token: String,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
pub struct FakeManagers {
    pub reports: Mutex<BTreeMap<String, InstanceReport>>,
    /// Pod IPs whose manager answers nothing (stopped, deadlocked).
    pub hung: Mutex<std::collections::BTreeSet<String>>,
    /// Pod IPs whose manager never answers and never times out: a platform
    /// call that blocks for as long as the test runs.
    pub blocked: Mutex<std::collections::BTreeSet<String>>,
    /// Every `/status` reports a WAL position further on, as under writes.
    pub writing: std::sync::atomic::AtomicBool,
    lsn: std::sync::atomic::AtomicU64,
    /// `/status` requests answered, one per instance per pass.
    pub statuses: std::sync::atomic::AtomicU64,
    pub calls: Mutex<Vec<Call>>,
}

impl FakeManagers {
    pub fn calls(&self, path: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }
}

#[async_trait::async_trait]
impl Managers for FakeManagers {
    async fn status(&self, at: &ManagerAddr) -> Result<InstanceReport, String> {
        let host = at.ip.as_str();
        self.statuses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.blocked.lock().unwrap().contains(host) {
            std::future::pending::<()>().await;
        }
        if self.hung.lock().unwrap().contains(host) {
            return Err(format!("{host}: operation timed out"));
        }
        let mut report = self
            .reports
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or(InstanceReport {
                ready: true,
                ..Default::default()
            });
        if self.writing.load(std::sync::atomic::Ordering::Relaxed) {
            let n = self.lsn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            report.wal_lsn = Some(format!("0/{:X}", 0x3000000 + n * 0x100));
        }
        Ok(report)
    }

    async fn volume(&self, at: &ManagerAddr) -> Result<VolumeUsage, String> {
        let host = at.ip.as_str();
        Ok(VolumeUsage {
            name: String::new(),
            instance: host.into(),
            path: "/pgdata/data".into(),
            used_bytes: 40 << 20,
            free_bytes: 960 << 20,
            total_bytes: 1 << 30,
        })
    }

    async fn control(
        &self,
        at: &ManagerAddr,
        token: &str,
        path: &str,
        body: &Value,
        _: Duration,
    ) -> Result<(), String> {
        let host = at.ip.as_str();
        if self.blocked.lock().unwrap().contains(host) {
            std::future::pending::<()>().await;
        }
        if self.hung.lock().unwrap().contains(host) {
            return Err(format!("{host}: operation timed out"));
        }
        self.calls.lock().unwrap().push(Call {
            host: host.into(),
            instance: at.instance.clone(),
            token: token.into(),
            path: path.into(),
            body: body.clone(),
        });
        if path == "/control/promote" {
            let mut reports = self.reports.lock().unwrap();
            let r = reports.entry(host.into()).or_insert(InstanceReport {
                ready: true,
                ..Default::default()
            });
            r.role = Some(MemberRole::Primary);
        }
        Ok(())
    }
}
