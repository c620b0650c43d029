//! How one cluster reads on a terminal.

use crate::output::table;
use pgo_api::cluster::MemberRole;
use pgo_api::rest::ClusterView;

pub fn render(c: &ClusterView) -> String {
    let mut out = format!(
        "cluster {} ({})  primary {}  replicas {}  database {}  user {}  created {}\n",
        c.name,
        c.phase,
        c.primary.as_deref().unwrap_or("-"),
        c.replicas,
        c.database,
        c.user,
        c.created
    );
    if let Some(m) = &c.message {
        out.push_str(&format!("  message: {m}\n"));
    }
    if !c.labels.is_empty() {
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("  labels: {}\n", labels.join(" ")));
    }
    if let Some(cc) = &c.custom_config {
        out.push_str(&format!("  custom config: {cc}\n"));
    }
    for m in c.members.iter().filter(|m| !m.pending_restart.is_empty()) {
        out.push_str(&format!(
            "  pending restart: {} waits for a restart to take {} ('pgo restart {}')\n",
            m.name,
            m.pending_restart.join(", "),
            c.name
        ));
    }
    let members: Vec<Vec<String>> = c
        .members
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.role.to_string(),
                if m.ready { "yes".into() } else { "no".into() },
                m.node.clone(),
                if m.port == 0 {
                    "-".into()
                } else {
                    format!("{}:{}", m.host, m.port)
                },
                m.timeline.map_or("-".into(), |t| t.to_string()),
                m.wal_lsn.clone().unwrap_or_else(|| "-".into()),
                m.lag_bytes.map_or("-".into(), |l| l.to_string()),
                m.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "INSTANCE",
            "ROLE",
            "READY",
            "NODE",
            "HOST:PORT",
            "TIMELINE",
            "WAL",
            "LAG",
            "MESSAGE",
        ],
        &members,
        "  ",
    ));
    let services: Vec<Vec<String>> = c
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format!("{}:{}", s.host, s.port),
                if s.targets.is_empty() {
                    "-".into()
                } else {
                    s.targets.join(",")
                },
            ]
        })
        .collect();
    out.push_str(&table(&["SERVICE", "HOST:PORT", "TARGETS"], &services, "  "));
    if let Some(primary) = c.services.iter().find(|s| s.name == c.name) {
        out.push_str(&format!(
            "  connect: psql \"host={} port={} user={} dbname={}\"\n",
            primary.host, primary.port, c.user, c.database
        ));
    }
    out.push_str(&archive_line(c));
    for m in &c.members {
        if let Some(url) = &m.metrics {
            out.push_str(&format!("  metrics: {} {url}\n", m.name));
        }
    }
    if !c.failovers.is_empty() {
        let rows: Vec<Vec<String>> = c
            .failovers
            .iter()
            .map(|f| {
                vec![
                    f.at.clone(),
                    f.from.clone(),
                    f.to.clone(),
                    format!("{:.1}s", f.duration_ms as f64 / 1000.0),
                    f.outcome.clone(),
                    f.reason.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["FAILOVER AT", "FROM", "TO", "TOOK", "OUTCOME", "WHY"],
            &rows,
            "  ",
        ));
    }
    if !c.restores.is_empty() {
        let rows: Vec<Vec<String>> = c
            .restores
            .iter()
            .map(|r| vec![r.started.clone(), r.finished.clone(), r.target.clone()])
            .collect();
        out.push_str(&table(&["RESTORE STARTED", "FINISHED", "TO"], &rows, "  "));
    }
    if let Some(secrets) = &c.secrets {
        let rows: Vec<Vec<String>> = secrets
            .iter()
            .map(|s| vec![s.username.clone(), s.password.clone()])
            .collect();
        out.push_str(&table(&["USER", "PASSWORD"], &rows, "  "));
    }
    out
}

/// WAL archiving, as the primary reports it (`pg_stat_archiver`).
fn archive_line(c: &ClusterView) -> String {
    if !c.backrest {
        return "  archive: off (created with --pgbackrest=false)\n".into();
    }
    let primary = c
        .members
        .iter()
        .find(|m| Some(&m.name) == c.primary.as_ref() && m.role == MemberRole::Primary);
    let Some(a) = primary.and_then(|m| m.archive.as_ref()) else {
        return "  archive: pgBackRest (not reported yet)\n".into();
    };
    let mut line = format!(
        "  archive: pgBackRest, {} archived, last {} at {}",
        a.archived_count,
        a.last_archived_wal.as_deref().unwrap_or("-"),
        a.last_archived_time.as_deref().unwrap_or("-")
    );
    if a.failed_count > 0 {
        line.push_str(&format!(
            "; {} failed, last {} at {}",
            a.failed_count,
            a.last_failed_wal.as_deref().unwrap_or("-"),
            a.last_failed_time.as_deref().unwrap_or("-")
        ));
    }
    if a.failing() {
        line.push_str("; FAILING");
    }
    if let Some(e) = &a.repository_error {
        line.push_str(&format!(" ({e})"));
    }
    line.push('\n');
    line
}
