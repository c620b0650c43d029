//! Custom PostgreSQL configurations (the spec's `pgo-custom-pg-config`): a
//! ConfigMap whose `postgresql.conf`, `pg_hba.conf` and `setup.sql` a
//! cluster takes at create and at `pgo reload`. What a cluster took is kept
//! in its spec ([`CustomFiles`]), so an instance restarted later runs what
//! was checked, not what the ConfigMap says since.
//!
//! Only parsing lives here; the check against PostgreSQL itself runs its
//! binaries (`pgo_instance::conf_check`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The ConfigMap every new cluster takes when it names none.
pub const DEFAULT_NAME: &str = "pgo-custom-pg-config";
pub const POSTGRESQL_CONF: &str = "postgresql.conf";
pub const PG_HBA_CONF: &str = "pg_hba.conf";
pub const SETUP_SQL: &str = "setup.sql";
/// Required by the spec in a custom config used with pgBackRest.
pub const PGBACKREST_CONF: &str = "pgbackrest.conf";
/// The most a ConfigMap holds (Kubernetes' own bound).
pub const MAX_BYTES: usize = 1024 * 1024;

/// The files of a custom configuration, as the cluster took them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomFiles {
    /// The ConfigMap they came from.
    pub config_map: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_conf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_hba_conf: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_sql: Option<String>,
}

impl CustomFiles {
    /// The files a ConfigMap's keys hold (other keys are not PostgreSQL's).
    pub fn from_data(config_map: &str, data: &BTreeMap<String, String>) -> CustomFiles {
        CustomFiles {
            config_map: config_map.to_string(),
            postgresql_conf: data.get(POSTGRESQL_CONF).cloned(),
            pg_hba_conf: data.get(PG_HBA_CONF).cloned(),
            setup_sql: data.get(SETUP_SQL).cloned(),
        }
    }

    /// What a user should know of these files, for the cluster's message:
    /// settings pgo keeps as it needs them, and `trust` lines.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(conf) = &self.postgresql_conf {
            let owned: Vec<String> = settings(conf)
                .into_iter()
                .filter(|s| is_owned(&s.name))
                .map(|s| s.name)
                .collect();
            if !owned.is_empty() {
                out.push(format!(
                    "{POSTGRESQL_CONF} of {}: pgo keeps {} as it needs them; those lines are not used",
                    self.config_map,
                    dedup(owned).join(", ")
                ));
            }
        }
        if let Some(hba) = &self.pg_hba_conf {
            let trust: Vec<String> = hba_rules(hba)
                .into_iter()
                .filter(|r| r.method == "trust")
                .map(|r| r.line.to_string())
                .collect();
            if !trust.is_empty() {
                out.push(format!(
                    "WARNING: {PG_HBA_CONF} of {} lets connections in without a password (trust) on line {}",
                    self.config_map,
                    trust.join(", ")
                ));
            }
        }
        out
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The settings pgo owns: a custom postgresql.conf cannot change them, for
/// the instance manager, replication, failover and archiving depend on them.
pub const OWNED: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "unix_socket_group",
    "unix_socket_permissions",
    "password_encryption",
    "wal_level",
    "hot_standby",
    "wal_log_hints",
    "logging_collector",
    "archive_mode",
    "archive_command",
    "archive_library",
    "archive_timeout",
    "restore_command",
    "recovery_target",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_timeline",
    "recovery_target_xid",
    "primary_conninfo",
    "primary_slot_name",
    "synchronous_standby_names",
    "ssl",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_min_protocol_version",
    "hba_file",
    "ident_file",
    "data_directory",
    "config_file",
    "external_pid_file",
];

pub fn is_owned(name: &str) -> bool {
    OWNED.contains(&name)
}

/// One `name = value` line of a postgresql.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Lower case, as PostgreSQL matches it.
    pub name: String,
    pub value: String,
    /// 1-based.
    pub line: usize,
}

/// The settings of a postgresql.conf, in order (`include` lines among
/// them, named `include`, `include_if_exists`, `include_dir`).
pub fn settings(text: &str) -> Vec<Setting> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = strip_comment(line).trim();
            if line.is_empty() {
                return None;
            }
            let end = line
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(line.len());
            let (name, rest) = line.split_at(end);
            let value = rest.trim_start().strip_prefix('=').unwrap_or(rest).trim();
            Some(Setting {
                name: name.to_ascii_lowercase(),
                value: value.to_string(),
                line: i + 1,
            })
        })
        .collect()
}

/// The line with what follows `#` outside a quoted value removed.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The custom postgresql.conf as an instance uses it: lines that set what
/// pgo owns turned into comments that say so.
pub fn without_owned(text: &str) -> String {
    let owned: Vec<usize> = settings(text)
        .into_iter()
        .filter(|s| is_owned(&s.name))
        .map(|s| s.line)
        .collect();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if owned.contains(&(i + 1)) {
            out.push_str("# pgo owns this setting: ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What in a custom postgresql.conf cannot be used, before PostgreSQL is
/// asked: names that are not names, and includes of files an instance
/// does not have.
pub fn check_postgresql_conf(text: &str) -> Result<(), String> {
    for s in settings(text) {
        if s.name.is_empty() {
            return Err(format!(
                "{POSTGRESQL_CONF} line {}: not a setting (name = value)",
                s.line
            ));
        }
        if matches!(s.name.as_str(), "include" | "include_if_exists" | "include_dir") {
            return Err(format!(
                "{POSTGRESQL_CONF} line {}: {} names a file the instances do not have; put its settings in {POSTGRESQL_CONF} itself",
                s.line, s.name
            ));
        }
    }
    Ok(())
}

/// One rule of a pg_hba.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HbaRule<'a> {
    pub line: usize,
    pub kind: &'a str,
    pub method: &'a str,
}

const HBA_KINDS: &[&str] = &[
    "local",
    "host",
    "hostssl",
    "hostnossl",
    "hostgssenc",
    "hostnogssenc",
];
const HBA_METHODS: &[&str] = &[
    "trust",
    "reject",
    "scram-sha-256",
    "md5",
    "password",
    "gss",
    "sspi",
    "ident",
    "peer",
    "ldap",
    "radius",
    "cert",
    "pam",
    "bsd",
];

fn hba_rules(text: &str) -> Vec<HbaRule<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or_default();
            let fields: Vec<&str> = line.split_whitespace().collect();
            let kind = *fields.first()?;
            // local DATABASE USER METHOD; host… DATABASE USER ADDRESS METHOD
            // (or ADDRESS MASK METHOD).
            let method_at = if kind == "local" {
                3
            } else if fields.get(4).is_some_and(|f| f.contains('.') && !f.contains('/')) {
                5
            } else {
                4
            };
            Some(HbaRule {
                line: i + 1,
                kind,
                method: fields.get(method_at).copied().unwrap_or_default(),
            })
        })
        .collect()
}

/// Each rule of a custom pg_hba.conf has a connection type and a method
/// PostgreSQL knows; a rule that does not would stop PostgreSQL at start.
pub fn check_pg_hba_conf(text: &str) -> Result<(), String> {
    for r in hba_rules(text) {
        if !HBA_KINDS.contains(&r.kind) {
            return Err(format!(
                "{PG_HBA_CONF} line {}: {:?} is not a connection type ({})",
                r.line,
                r.kind,
                HBA_KINDS.join(", ")
            ));
        }
        if !HBA_METHODS.contains(&r.method) {
            return Err(format!(
                "{PG_HBA_CONF} line {}: {:?} is not an authentication method ({})",
                r.line,
                r.method,
                HBA_METHODS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The values the original's containers put in place of a setup.sql's
/// placeholders.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    pub user: String,
    pub password: String,
    pub database: String,
    pub primary_user: String,
    pub primary_password: String,
    pub root_password: String,
}

/// setup.sql with its placeholders replaced, as 3.4's containers did (by
/// name, wherever a whole word). Passwords sit inside quoted literals
/// there, so their quotes are doubled.
pub fn substitute(sql: &str, p: &Placeholders) -> String {
    let quoted = |s: &str| s.replace('\'', "''");
    let values: [(&str, String); 6] = [
        ("PG_PRIMARY_PASSWORD", quoted(&p.primary_password)),
        ("PG_PRIMARY_USER", p.primary_user.clone()),
        ("PG_ROOT_PASSWORD", quoted(&p.root_password)),
        ("PG_PASSWORD", quoted(&p.password)),
        ("PG_DATABASE", p.database.clone()),
        ("PG_USER", p.user.clone()),
    ];
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    'scan: while !rest.is_empty() {
        let at_word_start = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if at_word_start {
            for (name, value) in &values {
                if let Some(after) = rest.strip_prefix(name)
                    && after
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                {
                    out.push_str(value);
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_read_as_postgresql_reads_them() {
        let text = "# a comment\nshared_buffers = 128MB  # min 128kB\nwork_mem '4MB'\nlog_line_prefix = '%t # [%p]'\n  Port=5433\n";
        let s = settings(text);
        let names: Vec<(&str, &str, usize)> = s
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str(), s.line))
            .collect();
        assert_eq!(
            names,
            [
                ("shared_buffers", "128MB", 2),
                ("work_mem", "'4MB'", 3),
                ("log_line_prefix", "'%t # [%p]'", 4),
                ("port", "5433", 5),
            ]
        );
    }

    #[test]
    fn owned_settings_are_commented_out_and_named() {
        let text = "port = 5432\nmax_connections = 100\nwal_level = hot_standby\n";
        assert_eq!(
            without_owned(text),
            "# pgo owns this setting: port = 5432\nmax_connections = 100\n# pgo owns this setting: wal_level = hot_standby\n"
        );
        let files = CustomFiles {
            config_map: "olap".into(),
            postgresql_conf: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(
            files.warnings(),
            ["postgresql.conf of olap: pgo keeps port, wal_level as it needs them; those lines are not used"]
        );
    }

    #[test]
    fn includes_and_lines_that_are_not_settings_are_refused() {
        assert!(check_postgresql_conf("work_mem = 4MB\n").is_ok());
        let err = check_postgresql_conf("work_mem = 4MB\ninclude 'x.conf'\n").unwrap_err();
        assert!(err.starts_with("postgresql.conf line 2: include"), "{err}");
        let err = check_postgresql_conf("= 4\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn hba_rules_are_checked_and_trust_is_warned_of() {
        let stock = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all 0.0.0.0/0 md5\nhost replication primaryuser 10.0.0.0 255.0.0.0 md5\n";
        assert_eq!(check_pg_hba_conf(stock), Ok(()));
        let files = CustomFiles {
            config_map: "c".into(),
            pg_hba_conf: Some(stock.into()),
            ..Default::default()
        };
        assert_eq!(
            files.warnings(),
            ["WARNING: pg_hba.conf of c lets connections in without a password (trust) on line 1, 2"]
        );
        let err = check_pg_hba_conf("hots all all 0.0.0.0/0 md5\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("\"hots\""), "{err}");
        let err = check_pg_hba_conf("host all all 0.0.0.0/0 mdd5\n").unwrap_err();
        assert!(err.contains("\"mdd5\""), "{err}");
    }

    #[test]
    fn placeholders_are_replaced_as_whole_words() {
        let p = Placeholders {
            user: "testuser".into(),
            password: "it's".into(),
            database: "userdb".into(),
            primary_user: "primaryuser".into(),
            primary_password: "p".into(),
            root_password: "r".into(),
        };
        let sql = "create user PG_PRIMARY_USER with REPLICATION PASSWORD 'PG_PRIMARY_PASSWORD';\ncreate user PG_USER with password 'PG_PASSWORD';\n\\c PG_DATABASE PG_USER;\nselect 'PG_USERS', MY_PG_USER;";
        assert_eq!(
            substitute(sql, &p),
            "create user primaryuser with REPLICATION PASSWORD 'p';\ncreate user testuser with password 'it''s';\n\\c userdb testuser;\nselect 'PG_USERS', MY_PG_USER;"
        );
    }
}
