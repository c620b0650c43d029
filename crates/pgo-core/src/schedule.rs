//! Backup schedules: when a schedule fires, decided without I/O. A schedule
//! is a Pgtask (`<cluster>-<schedule-type>-<backup-type>` by default, as 3.4
//! named them) whose status records the last occurrence it ran. Times are
//! evaluated in UTC.

use crate::names;
use pgo_api::backup::BackupType;
use pgo_api::task::SCHEDULE;
use pgo_api::{Pgtask, PgtaskSpec, labels};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

pub const PATTERN: &str = "schedule";
pub const SCHEDULE_TYPE: &str = "scheduleType";
pub const BACKUP_TYPE: &str = "backupType";

/// The most a schedule waits before it looks at the clock again (a clock
/// that jumped is noticed within this).
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A cron pattern, checked: five fields (minute granularity), or six with
/// seconds first, and the `@daily` kind of alias.
pub fn parse(pattern: &str) -> Result<croner::Cron, String> {
    croner::Cron::from_str(pattern.trim())
        .map_err(|e| format!("--schedule {pattern:?} is not a cron pattern: {e}"))
}

/// What a schedule asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub cluster: String,
    pub name: String,
    pub pattern: String,
    pub tool: BackupType,
    /// `full`, `diff` or `incr` (pgBackRest's); empty for a pg_basebackup
    /// copy.
    pub backup_type: String,
}

pub fn default_name(cluster: &str, tool: BackupType, backup_type: &str) -> String {
    match tool {
        BackupType::Pgbackrest => format!("{cluster}-pgbackrest-{backup_type}"),
        BackupType::Pgbasebackup => format!("{cluster}-pgbasebackup"),
    }
}

/// The tool a schedule's backups are taken with (`scheduleType`).
pub fn tool_of(t: &Pgtask) -> Result<BackupType, String> {
    match t.spec.parameters.get(SCHEDULE_TYPE).map(String::as_str) {
        Some("pgbackrest") | None => Ok(BackupType::Pgbackrest),
        Some("pgbasebackup") => Ok(BackupType::Pgbasebackup),
        Some(other) => Err(format!(
            "schedule type {other:?} is not pgbackrest or pgbasebackup"
        )),
    }
}

pub fn task(order: &Order) -> Pgtask {
    let mut t = Pgtask::new(
        &order.name,
        PgtaskSpec {
            cluster_name: order.cluster.clone(),
            task_type: SCHEDULE.to_string(),
            parameters: BTreeMap::from([
                (PATTERN.to_string(), order.pattern.clone()),
                (SCHEDULE_TYPE.to_string(), order.tool.to_string()),
                (BACKUP_TYPE.to_string(), order.backup_type.clone()),
            ]),
        },
    );
    t.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), order.cluster.clone()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    t
}

/// What to do now.
#[derive(Debug, PartialEq)]
pub struct Turn {
    /// The occurrence to run now, if one is due: the latest one since the
    /// last run, however many were missed (a server down over several
    /// runs one backup when it starts, not one per missed occurrence).
    pub fire: Option<jiff::Timestamp>,
    /// When to look again.
    pub next: Duration,
}

/// `last`: the occurrence that last ran, or when the schedule was made.
pub fn turn(cron: &croner::Cron, last: jiff::Timestamp, now: jiff::Timestamp) -> Result<Turn, String> {
    let utc = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC);
    let due = cron
        .find_previous_occurrence(&utc(now), true)
        .map_err(|e| e.to_string())?
        .timestamp();
    let fire = (due > last).then_some(due);
    let upcoming = cron
        .find_next_occurrence(&utc(now), false)
        .map_err(|e| e.to_string())?
        .timestamp();
    let wait = Duration::try_from(now.duration_until(upcoming)).unwrap_or(Duration::ZERO);
    Ok(Turn {
        fire,
        next: wait.clamp(Duration::from_millis(200), LONGEST_WAIT),
    })
}

/// The Pgbackup a firing makes: named after the schedule and the
/// occurrence, so a turn cut short and run again finds it made.
pub fn backup_name(schedule: &str, at: jiff::Timestamp) -> String {
    let stamp = at.strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{schedule}-{stamp}");
    if base.len() <= 63 {
        base
    } else {
        format!("{}-{stamp}", names::short_hash(schedule))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_schedule_fires_once_for_what_it_missed_and_waits_for_the_next() {
        let daily = parse("0 1 * * *").unwrap();
        let cases = [
            // (last run, now, fires at, next look in seconds)
            ("2026-11-24T01:00:00Z", "2026-11-24T12:00:00Z", None, 30),
            (
                "2026-11-23T01:00:00Z",
                "2026-11-24T01:00:00Z",
                Some("2026-11-24T01:00:00Z"),
                30,
            ),
            // Down for three days: one backup, for the last occurrence.
            (
                "2026-11-20T01:00:00Z",
                "2026-11-24T09:30:00Z",
                Some("2026-11-24T01:00:00Z"),
                30,
            ),
            // Made after today's occurrence: nothing until tomorrow's.
            ("2026-11-24T02:00:00Z", "2026-11-24T02:00:01Z", None, 30),
        ];
        for (last, now, fire, next) in cases {
            let t = turn(&daily, at(last), at(now)).unwrap();
            assert_eq!(t.fire, fire.map(at), "{last} {now}");
            assert_eq!(t.next, Duration::from_secs(next), "{last} {now}");
        }
        let often = parse("*/5 * * * * *").unwrap();
        let t = turn(&often, at("2026-11-24T00:00:00Z"), at("2026-11-24T00:00:07Z")).unwrap();
        assert_eq!(t.fire, Some(at("2026-11-24T00:00:05Z")));
        assert_eq!(t.next, Duration::from_secs(3));
    }

    #[test]
    fn a_pattern_that_is_not_cron_is_refused_naming_it() {
        assert!(parse("0 1 * * *").is_ok());
        assert!(parse("@daily").is_ok());
        let e = parse("every day").unwrap_err();
        assert!(e.contains("\"every day\" is not a cron pattern"), "{e}");
        assert!(parse("61 * * * *").is_err());
    }

    #[test]
    fn backup_names_are_per_occurrence_and_fit() {
        assert_eq!(
            backup_name("db-pgbackrest-full", at("2026-11-24T01:00:00Z")),
            "db-pgbackrest-full-20261124-010000"
        );
        let long = "a".repeat(60);
        assert!(backup_name(&long, at("2026-11-24T01:00:00Z")).len() <= 63);
    }
}
