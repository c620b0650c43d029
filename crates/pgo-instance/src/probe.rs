//! Readiness: PostgreSQL answers a query over TCP. The same query reports
//! the role, the timeline and the WAL position.

use crate::bootstrap;
use pgo_api::cluster::MemberRole;
use pgo_api::instance::InstanceConfig;
use std::time::Duration;

pub struct Probe {
    pub role: MemberRole,
    pub timeline: Option<u32>,
    pub wal_lsn: Option<String>,
    pub received_lsn: Option<String>,
}

const QUERY: &str = "SELECT pg_is_in_recovery(),
    (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
    CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                                                (SELECT timeline_id FROM pg_control_checkpoint()))
         ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
    pg_last_wal_receive_lsn()::text";

/// Keeps one connection open between probes.
#[derive(Default)]
pub struct Prober {
    client: Option<tokio_postgres::Client>,
}

impl Prober {
    pub async fn client(&mut self, config: &InstanceConfig) -> Result<&tokio_postgres::Client, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(bootstrap::connect(config).await?);
        }
        self.client.as_ref().ok_or_else(|| "no connection".to_string())
    }

    pub async fn probe(&mut self, config: &InstanceConfig) -> Result<Probe, String> {
        let result = async {
            let client = self.client(config).await?;
            let row = tokio::time::timeout(Duration::from_secs(2), client.query_one(QUERY, &[]))
                .await
                .map_err(|_| "the readiness query timed out".to_string())?
                .map_err(|e| bootstrap::describe(&e))?;
            let in_recovery: bool = row.get(0);
            let lsn: Option<String> = row.get(1);
            let timeline: Option<i32> = row.get(2);
            let received: Option<String> = row.get(3);
            Ok(Probe {
                received_lsn: received,
                role: if in_recovery {
                    MemberRole::Replica
                } else {
                    MemberRole::Primary
                },
                timeline: timeline.and_then(|t| u32::try_from(t).ok()),
                wal_lsn: lsn,
            })
        }
        .await;
        if result.is_err() {
            self.client = None;
        }
        result
    }
}
