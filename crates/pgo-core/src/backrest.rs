//! What pgBackRest's `info --output=json` says of a repository, read into
//! pgo's types, and the moments a restore from it can reach.

use pgo_api::backup::{RepoBackup, RepoInfo};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Stanza {
    #[serde(default)]
    archive: Vec<Archive>,
    #[serde(default)]
    backup: Vec<Backup>,
}

#[derive(Deserialize, Serialize)]
struct Archive {
    min: Option<String>,
    max: Option<String>,
}

/// Everything but the label may be left out (a brief entry, see
/// [`compact_info`]).
#[derive(Deserialize, Serialize)]
struct Backup {
    label: String,
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    timestamp: Span,
    #[serde(default)]
    info: Sizes,
    #[serde(default)]
    archive: WalSpan,
    #[serde(default)]
    prior: Option<String>,
}

#[derive(Deserialize, Serialize, Default)]
struct Span {
    start: i64,
    stop: i64,
}

#[derive(Deserialize, Serialize, Default)]
struct Sizes {
    size: u64,
    repository: RepoSize,
}

#[derive(Deserialize, Serialize, Default)]
struct RepoSize {
    delta: u64,
}

#[derive(Deserialize, Serialize, Default)]
struct WalSpan {
    start: Option<String>,
    stop: Option<String>,
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |t| t.to_string())
}

#[derive(Deserialize, Serialize)]
struct Named {
    name: String,
    #[serde(flatten)]
    stanza: Stanza,
}

fn read_info(json: &str) -> Result<Vec<Named>, String> {
    serde_json::from_str(json).map_err(|e| format!("pgbackrest info is not what pgo reads: {e}"))
}

/// Set on a stanza whose oldest backups [`compact_info`] left out.
const TRUNCATED: &str = "pgoTruncated";

/// `pgbackrest info --output=json` cut to one stanza and what
/// [`parse_info`] reads, in at most `budget` bytes (a Job's termination
/// message holds 4 KiB): in full while it fits; else every backup but the
/// newest by its label, type and times, then by its label alone (what
/// tells a backup expired); else the newest that fit, marked as
/// truncated, so nothing is taken for expired ([`lists_every_backup`]).
pub fn compact_info(json: &str, stanza: &str, budget: usize) -> Result<String, String> {
    let kept: Vec<Named> = read_info(json)?
        .into_iter()
        .filter(|s| s.name == stanza)
        .collect();
    let mut value = serde_json::to_value(&kept).map_err(|e| e.to_string())?;
    let fits = |v: &serde_json::Value| serde_json::to_string(v).map(|t| (t.len() <= budget, t));
    let (ok, text) = fits(&value).map_err(|e| e.to_string())?;
    if ok {
        return Ok(text);
    }
    for keys in [&["label", "type", "timestamp"][..], &["label"][..]] {
        for s in value.as_array_mut().into_iter().flatten() {
            let backups = s["backup"].as_array_mut().map(std::mem::take).unwrap_or_default();
            let n = backups.len();
            let brief: Vec<serde_json::Value> = backups
                .into_iter()
                .enumerate()
                .map(|(i, mut b)| {
                    if i + 1 < n
                        && let Some(o) = b.as_object_mut()
                    {
                        o.retain(|k, _| keys.contains(&k.as_str()));
                    }
                    b
                })
                .collect();
            s["backup"] = serde_json::Value::Array(brief);
        }
        let (ok, text) = fits(&value).map_err(|e| e.to_string())?;
        if ok {
            return Ok(text);
        }
    }
    for s in value.as_array_mut().into_iter().flatten() {
        s[TRUNCATED] = serde_json::Value::Bool(true);
    }
    loop {
        let (ok, text) = fits(&value).map_err(|e| e.to_string())?;
        let dropped = value
            .as_array_mut()
            .and_then(|a| a.first_mut())
            .and_then(|s| s["backup"].as_array_mut())
            .filter(|b| b.len() > 1)
            .map(|b| b.remove(0))
            .is_some();
        if ok || !dropped {
            return Ok(text);
        }
    }
}

/// False when [`compact_info`] had to leave backups out: the list then
/// says nothing of what expired.
pub fn lists_every_backup(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .is_none_or(|all| all.iter().all(|s| s[TRUNCATED] != true))
}

/// Reads `pgbackrest info --output=json` for one stanza.
pub fn parse_info(json: &str, stanza: &str) -> Result<RepoInfo, String> {
    let all = read_info(json)?;
    let Some(found) = all.into_iter().find(|s| s.name == stanza) else {
        return Ok(RepoInfo::default());
    };
    let s = found.stanza;
    let backups = s
        .backup
        .into_iter()
        .map(|b| RepoBackup {
            label: b.label,
            type_: b.type_,
            start: rfc3339(b.timestamp.start),
            stop: rfc3339(b.timestamp.stop),
            size_bytes: b.info.size,
            repo_size_bytes: b.info.repository.delta,
            wal_start: b.archive.start.unwrap_or_default(),
            wal_stop: b.archive.stop.unwrap_or_default(),
            prior: b.prior,
        })
        .collect();
    // One entry per database history (a major upgrade adds one); the
    // newest holds the WAL written now.
    let wal_min = s.archive.iter().find_map(|a| a.min.clone());
    let wal_max = s.archive.iter().rev().find_map(|a| a.max.clone());
    Ok(RepoInfo {
        backups,
        wal_min,
        wal_max,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// As pgBackRest 2.45 prints it (trimmed to one backup).
    const INFO: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000003","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":22992367,"repository":{"delta":3043603,"size":3043603},"size":22992367},"label":"20261124-165208F","lsn":{"start":"0/2000028","stop":"0/3000050"},"prior":null,"reference":null,"timestamp":{"start":1795539128,"stop":1795539130},"type":"full"}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7711781822268932792,"version":"15"}],"name":"db","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    #[test]
    fn reads_backups_and_the_archived_wal() {
        let info = parse_info(INFO, "db").unwrap();
        assert_eq!(info.wal_min.as_deref(), Some("000000010000000000000001"));
        assert_eq!(info.wal_max.as_deref(), Some("000000010000000000000003"));
        let b = &info.backups[0];
        assert_eq!(b.label, "20261124-165208F");
        assert_eq!(b.type_, "full");
        assert_eq!(b.start, "2026-11-24T16:52:08Z");
        assert_eq!(b.stop, "2026-11-24T16:52:10Z");
        assert_eq!((b.size_bytes, b.repo_size_bytes), (22992367, 3043603));
        assert_eq!(b.wal_start, "000000010000000000000002");
        assert_eq!(b.prior, None);
    }

    #[test]
    fn the_compact_form_reads_the_same_and_is_smaller() {
        let compact = compact_info(INFO, "db", 4000).unwrap();
        assert!(compact.len() * 2 < INFO.len(), "{compact}");
        assert_eq!(
            parse_info(&compact, "db").unwrap(),
            parse_info(INFO, "db").unwrap()
        );
        assert_eq!(compact_info(INFO, "other", 4000).unwrap(), "[]");
        assert!(lists_every_backup(&compact));
    }

    /// `INFO` with `n` backups, the newest last.
    fn many(n: usize) -> String {
        let mut v: serde_json::Value = serde_json::from_str(INFO).unwrap();
        let one = v[0]["backup"][0].clone();
        v[0]["backup"] = (0..n)
            .map(|i| {
                let mut b = one.clone();
                b["label"] = format!("20261124-{i:06}F").into();
                b
            })
            .collect();
        v.to_string()
    }

    #[test]
    fn a_long_list_is_cut_to_fit_keeping_the_newest_whole_and_every_label_while_it_can() {
        let labels = |json: &str| -> Vec<String> {
            parse_info(json, "db")
                .unwrap()
                .backups
                .into_iter()
                .map(|b| b.label)
                .collect()
        };
        let full = many(40);
        // Briefer entries: every label, and the newest one whole.
        let brief = compact_info(&full, "db", 4000).unwrap();
        assert!(brief.len() <= 4000, "{}", brief.len());
        assert_eq!(labels(&brief), labels(&full));
        let newest = parse_info(&brief, "db").unwrap().backups.pop().unwrap();
        assert_eq!(newest, parse_info(&full, "db").unwrap().backups.pop().unwrap());
        assert!(lists_every_backup(&brief));
        // Past that: the newest ones that fit, marked as not all.
        let cut = compact_info(&many(400), "db", 4000).unwrap();
        assert!(cut.len() <= 4000, "{}", cut.len());
        assert!(!lists_every_backup(&cut));
        assert_eq!(labels(&cut).last().map(String::as_str), Some("20261124-000399F"));
    }

    #[test]
    fn another_stanza_or_garbage() {
        assert_eq!(parse_info(INFO, "other").unwrap(), RepoInfo::default());
        assert_eq!(parse_info("[]", "db").unwrap(), RepoInfo::default());
        assert!(
            parse_info("not json", "db")
                .unwrap_err()
                .contains("pgbackrest info")
        );
    }
}
