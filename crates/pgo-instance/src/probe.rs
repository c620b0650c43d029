//! Readiness: what a client needs, proved afresh on every probe.
//!
//! - **A new connection is accepted.** A connection kept open between probes
//!   hides a postmaster that no longer forks backends (SIGSTOP, a full
//!   process table): its old backend keeps answering while every new client
//!   hangs. So each probe connects anew, with a timeout.
//! - **Its storage takes writes.** A query answers from shared buffers even
//!   when the disk under it is gone or frozen. The manager writes and fsyncs
//!   a small file on the data volume ([`StorageCheck`]), with a timeout. A
//!   file rather than a heartbeat row: a row would make every idle cluster
//!   write WAL, and so archive a segment every `archive_timeout`. Nothing
//!   here commits a transaction, so waiting for a synchronous replica can
//!   never be taken for a failure.
//!
//! The same query reports the role, the timeline and the WAL position.

use crate::bootstrap;
use pgo_api::cluster::MemberRole;
use pgo_api::instance::InstanceConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Probe {
    pub role: MemberRole,
    pub timeline: Option<u32>,
    pub wal_lsn: Option<String>,
    pub received_lsn: Option<String>,
    /// `pg_stat_archiver` (its failure fields as PostgreSQL keeps them).
    pub archive: pgo_api::cluster::ArchiveStatus,
    /// Settings a reload read that wait for a restart.
    pub pending_restart: Vec<String>,
    /// Of those, the ones a replica must have at least as high as its
    /// primary, and that the files lower.
    pub pending_lower: Vec<String>,
}

// `pending` is read from pg_settings once per probe; pg_file_settings
// (which parses the config files) only for a pending setting, and only
// for the five a replica must have at least as high as its primary.
const QUERY: &str = r#"WITH pending AS (SELECT name, setting FROM pg_settings WHERE pending_restart)
  SELECT pg_is_in_recovery(),
    (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
    CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                                                (SELECT timeline_id FROM pg_control_checkpoint()))
         ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
    pg_last_wal_receive_lsn()::text,
    a.archived_count, a.last_archived_wal,
    to_char(a.last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    a.failed_count, a.last_failed_wal,
    to_char(a.last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    (SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pending),
    (SELECT coalesce(string_agg(p.name, ',' ORDER BY p.name), '')
       FROM pending p,
            LATERAL (SELECT f.setting FROM pg_file_settings f WHERE f.name = p.name
                      ORDER BY f.seqno DESC LIMIT 1) f
      WHERE p.name IN ('max_connections', 'max_worker_processes', 'max_wal_senders',
                       'max_prepared_transactions', 'max_locks_per_transaction')
        AND f.setting ~ '^[0-9]+$' AND f.setting::bigint < p.setting::bigint)
  FROM pg_stat_archiver a"#;

/// The file the storage check writes, on the volume but outside PGDATA so
/// no PostgreSQL tool copies or complains about it.
pub fn storage_check_file(config: &InstanceConfig) -> PathBuf {
    config.volume_dir.join(".pgo-storage-check")
}

/// How long a new connection, the query, and a storage write may each take.
pub fn timeout(config: &InstanceConfig) -> Duration {
    Duration::from_millis(config.probe.timeout_ms)
}

/// Connects anew, runs the readiness query on that connection, and closes it.
pub async fn probe(config: &InstanceConfig) -> Result<Probe, String> {
    let timeout = timeout(config);
    let client = tokio::time::timeout(timeout, bootstrap::connect(config))
        .await
        .map_err(|_| {
            format!(
                "PostgreSQL accepted no new connection within {}ms",
                timeout.as_millis()
            )
        })??;
    let row = tokio::time::timeout(timeout, client.query_one(QUERY, &[]))
        .await
        .map_err(|_| "the readiness query timed out".to_string())?
        .map_err(|e| bootstrap::describe(&e))?;
    let in_recovery: bool = row.get(0);
    let lsn: Option<String> = row.get(1);
    let timeline: Option<i32> = row.get(2);
    let received: Option<String> = row.get(3);
    let archive = pgo_api::cluster::ArchiveStatus {
        archived_count: row.get(4),
        last_archived_wal: row.get(5),
        last_archived_time: row.get(6),
        failed_count: row.get(7),
        last_failed_wal: row.get(8),
        last_failed_time: row.get(9),
        repository_error: None,
        stanza_ready: false,
    };
    let pending: String = row.get(10);
    let lower: String = row.get(11);
    let list =
        |s: &str| -> Vec<String> { s.split(',').filter(|s| !s.is_empty()).map(String::from).collect() };
    Ok(Probe {
        archive,
        pending_restart: list(&pending),
        pending_lower: list(&lower),
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

/// Writes and fsyncs a small file on a plain thread. A write to frozen or
/// lost storage blocks in the kernel and cannot be cancelled, so at most
/// one write is outstanding: while it has not returned, every check fails
/// at once, saying for how long.
#[derive(Default)]
pub struct StorageCheck {
    pending: Option<(Instant, mpsc::Receiver<Result<(), String>>)>,
}

impl StorageCheck {
    /// When the write still outstanding was issued.
    pub fn pending_since(&self) -> Option<Instant> {
        self.pending.as_ref().map(|(since, _)| *since)
    }

    pub async fn check(&mut self, path: &Path, timeout: Duration) -> Result<(), String> {
        let (since, rx) = match self.pending.take() {
            Some(p) => p,
            None => {
                let (tx, rx) = mpsc::channel();
                let path = path.to_path_buf();
                let spawned = std::thread::Builder::new()
                    .name("storage-check".into())
                    .spawn(move || {
                        let _ = tx.send(write_and_sync(&path));
                    });
                if let Err(e) = spawned {
                    return Err(format!("cannot start the storage check: {e}"));
                }
                (Instant::now(), rx)
            }
        };
        let deadline = since + timeout;
        loop {
            match rx.try_recv() {
                Ok(result) => return result,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the storage check ended without an answer".into());
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if Instant::now() >= deadline {
                let waited = since.elapsed().as_secs_f32();
                self.pending = Some((since, rx));
                return Err(format!(
                    "the data volume has not taken a write for {waited:.1}s (storage lost or frozen)"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn write_and_sync(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("the data volume does not take writes: {}: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    f.write_all(format!("{stamp}\n").as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writable_directory_passes_and_a_missing_one_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut check = StorageCheck::default();
        let file = dir.path().join("check");
        let timeout = Duration::from_secs(2);
        assert_eq!(check.check(&file, timeout).await, Ok(()));
        assert!(file.exists());
        let gone = dir.path().join("no/such/dir/check");
        let err = check.check(&gone, timeout).await.unwrap_err();
        assert!(
            err.contains("does not take writes") && err.contains("no/such/dir"),
            "{err}"
        );
    }
}
