//! Checks of user input. Each error names the rule that was broken.

use pgo_api::cluster::{
    BackrestSpec, CopyFrom, PgclusterSpec, PitrTarget, PitrType, RestoreFrom, StorageSpec,
};
use pgo_api::config::PgoConfig;
use pgo_api::rest::CreateClusterRequest;

/// Strategies whose templates pgo ships.
pub const KNOWN_STRATEGIES: &[&str] = &["1"];
/// The most replicas one request may ask for.
pub const MAX_REPLICAS: u32 = 15;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error(
        "invalid name {name:?}: {rule} (a DNS-1035 label: at most 63 characters of a-z, 0-9 and '-', starting with a letter and ending with a letter or digit)"
    )]
    Name { name: String, rule: &'static str },
    #[error("{0} replicas is over the limit of {MAX_REPLICAS} for one cluster")]
    TooManyReplicas(u32),
    #[error("unknown strategy {0:?} (CLUSTER.STRATEGY): known strategies are {1}")]
    UnknownStrategy(String, String),
    #[error("invalid storage size {0:?}: expected a Kubernetes quantity such as 1G or 500Mi")]
    StorageSize(String),
    #[error(
        "access mode {0:?} is refused: two postmasters must never share a data directory, so a volume is ReadWriteOnce or ReadWriteOncePod"
    )]
    AccessMode(String),
    #[error("invalid {what} {value:?}: expected a Kubernetes quantity such as {example}")]
    Quantity {
        what: &'static str,
        value: String,
        example: &'static str,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// A CPU quantity in millicores: `500m`, `0.1`, `2`.
pub fn cpu_millis(cpu: &str) -> Option<u64> {
    if let Some(m) = cpu.strip_suffix('m') {
        return m
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| m.parse().ok())
            .flatten();
    }
    let (whole, frac) = cpu.split_once('.').unwrap_or((cpu, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: u64 = format!("{frac:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(frac)
}

/// Requests and limits that a Kubernetes API server takes: quantities it
/// reads, none zero, and no request above its limit.
pub fn resources(r: &pgo_api::cluster::Resources) -> Result<(), ValidationError> {
    let cpu = |what, value: &str| {
        cpu_millis(value)
            .filter(|m| *m > 0)
            .ok_or(ValidationError::Quantity {
                what,
                value: value.to_string(),
                example: "500m or 0.5",
            })
    };
    let memory = |what, value: &str| {
        size_bytes(value)
            .filter(|b| *b > 0)
            .ok_or(ValidationError::Quantity {
                what,
                value: value.to_string(),
                example: "512Mi or 1Gi",
            })
    };
    let (rc, lc) = (
        cpu("CPU request", &r.requests.cpu)?,
        cpu("CPU limit", &r.limits.cpu)?,
    );
    let (rm, lm) = (
        memory("memory request", &r.requests.memory)?,
        memory("memory limit", &r.limits.memory)?,
    );
    if rc > lc || rm > lm {
        return Err(ValidationError::Unsupported(format!(
            "requests ({} CPU, {} memory) must not exceed limits ({} CPU, {} memory)",
            r.requests.cpu, r.requests.memory, r.limits.cpu, r.limits.memory
        )));
    }
    Ok(())
}

/// What pgo.yaml says that a create would trip over later: each
/// ContainerResources entry is one an API server takes, and the default
/// names one of them.
pub fn config(config: &PgoConfig) -> Result<(), ValidationError> {
    for (name, entry) in &config.container_resources {
        entry_resources(name, entry)?;
    }
    if let Some(class) = &config.cluster.priority_class_name
        && !dns1123_subdomain(class)
    {
        return Err(ValidationError::Unsupported(format!(
            "Cluster.PriorityClassName {class:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.')"
        )));
    }
    if let Some(name) = &config.default_container_resources
        && !config.container_resources.contains_key(name)
    {
        return Err(ValidationError::Unsupported(format!(
            "DefaultContainerResources names {name:?}, which ContainerResources does not have"
        )));
    }
    config.check_storage().map_err(ValidationError::Unsupported)
}

/// The resources a new cluster gets: the entry of pgo.yaml it names, else
/// `DefaultContainerResources`, else none (the Guaranteed default).
fn resources_of(
    req: &CreateClusterRequest,
    config: &PgoConfig,
) -> Result<Option<pgo_api::cluster::Resources>, ValidationError> {
    match req
        .resources_config
        .as_ref()
        .or(config.default_container_resources.as_ref())
    {
        Some(name) => named_resources(config, name).map(Some),
        None => Ok(None),
    }
}

/// The ContainerResources entry `name` of pgo.yaml (`--resources-config`
/// of create and scale); an error names the ones there are.
pub fn named_resources(
    config: &PgoConfig,
    name: &str,
) -> Result<pgo_api::cluster::Resources, ValidationError> {
    let Some(entry) = config.container_resources.get(name) else {
        let known: Vec<&str> = config.container_resources.keys().map(String::as_str).collect();
        return Err(ValidationError::Unsupported(format!(
            "no ContainerResources named {name:?} in pgo.yaml (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    entry_resources(name, entry)
}

/// A ContainerResources entry of pgo.yaml, checked; an error names it.
fn entry_resources(
    name: &str,
    entry: &pgo_api::config::ContainerResources,
) -> Result<pgo_api::cluster::Resources, ValidationError> {
    let r = entry.resources();
    resources(&r).map_err(|e| ValidationError::Unsupported(format!("ContainerResources {name:?}: {e}")))?;
    Ok(r)
}

/// A DNS-1123 subdomain: what Kubernetes requires of most object names.
fn dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS-1123 label: what Kubernetes requires of a namespace's name.
pub fn dns1123_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && dns1123_subdomain(name)
}

/// The access modes a data volume may have: one node (or one pod) at a time.
pub fn access_mode(mode: Option<&str>) -> Result<(), ValidationError> {
    match mode {
        None | Some("ReadWriteOnce" | "ReadWriteOncePod") => Ok(()),
        Some(other) => Err(ValidationError::AccessMode(other.to_string())),
    }
}

/// A DNS-1035 label: what Kubernetes requires of Service names, and what
/// keeps a cluster name safe as a directory name on the local platform.
pub fn dns1035_label(name: &str) -> Result<(), ValidationError> {
    let fail = |rule| {
        Err(ValidationError::Name {
            name: name.to_string(),
            rule,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > 63 {
        return fail("it is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("it has a character other than a-z, 0-9 and '-'");
    }
    if !name.as_bytes()[0].is_ascii_lowercase() {
        return fail("it does not start with a letter");
    }
    if name.ends_with('-') {
        return fail("it ends with '-'");
    }
    Ok(())
}

/// A cluster name leaves room for the suffixes pgo adds (`-replica`,
/// `-xxxx` of replicas, `-primaryuser-secret`) within 63 characters.
pub fn cluster_name(name: &str) -> Result<(), ValidationError> {
    dns1035_label(name)?;
    if name.len() > 40 {
        return Err(ValidationError::Name {
            name: name.to_string(),
            rule: "a cluster name is at most 40 characters, so the names derived from it stay within 63",
        });
    }
    Ok(())
}

/// The bytes a storage size names (`1G`, `500Mi`, `1073741824`), in the
/// forms [`storage_size`] accepts and `k`, the thousand the API server
/// writes when it gives a quantity back in its canonical form.
pub fn size_bytes(size: &str) -> Option<u128> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u128 = digits.parse().ok()?;
    let factor: u128 = match &size[digits.len()..] {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A Kubernetes quantity in the forms people write for volumes.
pub fn storage_size(size: &str) -> Result<(), ValidationError> {
    match size_bytes(size) {
        Some(_) if !size.ends_with('k') => Ok(()),
        _ => Err(ValidationError::StorageSize(size.to_string())),
    }
}

/// What of backups and restores a platform has built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupSupport {
    /// WAL archiving and pgBackRest backups.
    pub backrest: bool,
    /// Restores in place, and clusters made from a repository
    /// (`--restore-from`).
    pub restores: bool,
    /// Restores into a new volume (`pgo restore --to-pvc`).
    pub restores_to_volumes: bool,
    /// Clusters made from pg_basebackup copies (`--backup-pvc`).
    pub seeds: bool,
    /// pgBackRest backups read from a replica.
    pub standby_backups: bool,
}

impl BackupSupport {
    pub const ALL: BackupSupport = BackupSupport {
        backrest: true,
        restores: true,
        restores_to_volumes: true,
        seeds: true,
        standby_backups: true,
    };
    pub const NONE: BackupSupport = BackupSupport {
        backrest: false,
        restores: false,
        restores_to_volumes: false,
        seeds: false,
        standby_backups: false,
    };
}

/// Turns a create request into the spec of a new Pgcluster, filling what the
/// request leaves out from `pgo.yaml`. Where the platform cannot archive
/// and back up (`support`), pgo.yaml's default does not apply and asking
/// for it is refused.
pub fn create_request(
    req: &CreateClusterRequest,
    config: &PgoConfig,
    strategies: &[String],
    support: BackupSupport,
) -> Result<PgclusterSpec, ValidationError> {
    cluster_name(&req.name)?;
    let replicas = req.replica_count.unwrap_or(config.cluster.replica_count);
    if replicas > MAX_REPLICAS {
        return Err(ValidationError::TooManyReplicas(replicas));
    }
    let strategy = config.cluster.strategy.clone();
    known_strategy(&strategy, strategies)?;
    let size = req
        .storage_size
        .clone()
        .unwrap_or_else(|| config.cluster.storage_size.clone());
    storage_size(&size)?;
    if let Some(pvc) = req.pvc_name.as_ref().or(config.cluster.pvc_name.as_ref()) {
        dns1035_label(pvc)?;
    }
    if let Some(node) = &req.node_name
        && node.is_empty()
    {
        return Err(ValidationError::Unsupported("--node-name is empty".into()));
    }
    if req.sync_replication && replicas == 0 {
        return Err(ValidationError::Unsupported(
            "--sync-replication needs --replica-count of at least 1: with no replica every commit would wait"
                .into(),
        ));
    }
    if let Some(cc) = &req.custom_config {
        dns1035_label(cc)?;
    }
    let resources = resources_of(req, config)?;
    let backrest = match backrest_of(req, config)? {
        Some(_) if !support.backrest && req.pgbackrest == Some(true) => {
            return Err(ValidationError::Unsupported(
                "--pgbackrest: this platform cannot archive WAL or take backups yet".into(),
            ));
        }
        Some(_) if !support.backrest => None,
        b => b,
    };
    let restore_from = restore_of(req)?;
    if restore_from.is_some() && !support.restores {
        return Err(ValidationError::Unsupported(
            "--restore-from: this platform cannot restore from pgBackRest yet".into(),
        ));
    }
    let copy_from = copy_of(req)?;
    if copy_from.is_some() && !support.seeds {
        return Err(ValidationError::Unsupported(
            "--backup-pvc: this platform cannot start a cluster from a pg_basebackup copy yet".into(),
        ));
    }
    if let Some(s) = &req.secret_from {
        cluster_name(s)?;
    }
    let named = |flag: &str, name: &str| {
        config
            .storage_spec(name)
            .map_err(|e| ValidationError::Unsupported(format!("{flag}: {e}")))
    };
    let named_data = |flag: &str, name: &str| named(flag, name).map(StorageSpec::for_data);
    let storage = match req.storage_config.as_ref().or(config.primary_storage.as_ref()) {
        Some(name) => {
            let mut s = named_data("--storage-config", name)?;
            if let Some(size) = &req.storage_size {
                s.size = size.clone();
            }
            s
        }
        None => StorageSpec {
            size,
            ..Default::default()
        },
    };
    let replica_storage = match req
        .replica_storage_config
        .as_ref()
        .or(config.replica_storage.as_ref())
    {
        Some(name) => named_data("--replica-storage-config", name)?,
        None => storage.clone(),
    };
    let backup_storage = match &config.backup_storage {
        Some(name) => Some(named("BackupStorage", name)?),
        None => None,
    };
    Ok(PgclusterSpec {
        replicas,
        port: config.cluster.port,
        strategy,
        database: config.cluster.database.clone(),
        user: config.cluster.user.clone(),
        primary_storage: storage,
        replica_storage,
        backup_storage,
        pvc_name: req.pvc_name.clone().or(config.cluster.pvc_name.clone()),
        node_name: req.node_name.clone(),
        custom_config: req.custom_config.clone(),
        custom_config_files: None,
        reloads: 0,
        restarts: 0,
        metrics: req.metrics || config.cluster.metrics,
        autofail: req.autofail.unwrap_or(config.cluster.autofail),
        sync_replication: req.sync_replication,
        user_labels: Default::default(),
        resources,
        backrest,
        restore_from,
        copy_from,
        secret_from: req.secret_from.clone(),
    })
}

/// `--backup-pvc` and `--backup-path`, as 3.4 took them: both or neither,
/// not with `--restore-from`, and with `--secret-from` naming the cluster
/// whose users the copy holds.
fn copy_of(req: &CreateClusterRequest) -> Result<Option<CopyFrom>, ValidationError> {
    let unsupported = |m: &str| Err(ValidationError::Unsupported(m.to_string()));
    let (volume, path) = match (&req.backup_pvc, &req.backup_path) {
        (None, None) => return Ok(None),
        (Some(v), Some(p)) => (v, p),
        _ => {
            return unsupported(
                "--backup-pvc and --backup-path go together: the volume and the copy's path in it",
            );
        }
    };
    if req.restore_from.is_some() {
        return unsupported(
            "--backup-pvc starts from a pg_basebackup copy, --restore-from from pgBackRest: choose one",
        );
    }
    if req.secret_from.is_none() {
        return unsupported(
            "--backup-pvc needs --secret-from=CLUSTER, the cluster the copy was taken from: its users keep that cluster's passwords",
        );
    }
    if pgo_api::backup::inside(std::path::Path::new(""), path).is_err() {
        return unsupported(
            "--backup-path: a path inside the backup volume (relative, no ..), as 'pgo show backup' lists it",
        );
    }
    Ok(Some(CopyFrom {
        volume: volume.clone(),
        path: path.clone(),
    }))
}

/// `--restore-from` with its target and options, checked; the target
/// normalised (a time as RFC 3339 in UTC).
fn restore_of(req: &CreateClusterRequest) -> Result<Option<RestoreFrom>, ValidationError> {
    let unsupported = |m: String| ValidationError::Unsupported(m);
    let Some(source) = &req.restore_from else {
        if req.pitr_target.is_some() || req.pitr_type.is_some() || req.backup_opts.is_some() {
            return Err(unsupported(
                "--pitr-target, --pitr-type and --backup-opts need --restore-from".into(),
            ));
        }
        return Ok(None);
    };
    cluster_name(source)?;
    if source == &req.name {
        return Err(unsupported(
            "--restore-from names the cluster being made; restore a cluster in place with pgo restore".into(),
        ));
    }
    let target = pitr_target(req.pitr_type.as_deref(), req.pitr_target.as_deref()).map_err(unsupported)?;
    let options = restore_opts(req.backup_opts.as_deref().unwrap_or("")).map_err(unsupported)?;
    Ok(Some(RestoreFrom {
        cluster: source.clone(),
        target,
        options,
    }))
}

/// A recovery target from `--pitr-type` (time by default) and
/// `--pitr-target`; none when neither is given (replay all archived WAL).
pub fn pitr_target(kind: Option<&str>, value: Option<&str>) -> Result<Option<PitrTarget>, String> {
    let type_ = match kind {
        None => PitrType::Time,
        Some(k) => PitrType::parse(k)
            .ok_or_else(|| format!("--pitr-type: {k:?} is not one of time, lsn, xid, name, immediate"))?,
    };
    let value = value.map(str::trim).unwrap_or("");
    if kind.is_none() && value.is_empty() {
        return Ok(None);
    }
    let need = |what: &str| format!("--pitr-type={}: --pitr-target must be {what}", type_.as_str());
    let value = match type_ {
        PitrType::Immediate if value.is_empty() => String::new(),
        PitrType::Immediate => return Err("--pitr-type=immediate takes no --pitr-target".into()),
        PitrType::Time => parse_time(value)
            .ok_or_else(|| need("a moment with its time zone, e.g. \"2026-11-24 10:00:00+00\""))?
            .to_string(),
        PitrType::Lsn => {
            let ok = value.split_once('/').is_some_and(|(hi, lo)| {
                !hi.is_empty()
                    && !lo.is_empty()
                    && hi.len() <= 8
                    && lo.len() <= 8
                    && (hi.bytes().chain(lo.bytes())).all(|b| b.is_ascii_hexdigit())
            });
            if !ok {
                return Err(need("a WAL position such as 0/3000060"));
            }
            value.to_string()
        }
        PitrType::Xid => {
            value
                .parse::<u64>()
                .map_err(|_| need("a transaction id (a number)"))?;
            value.to_string()
        }
        PitrType::Name => {
            if value.is_empty() || value.len() > 63 || value.contains(['\'', '"', '\\', '\n', '\r']) {
                return Err(need(
                    "a restore point name (pg_create_restore_point), without quotes",
                ));
            }
            value.to_string()
        }
    };
    Ok(Some(PitrTarget { type_, value }))
}

/// A moment as people write it for PostgreSQL: RFC 3339, or a space
/// instead of the `T`, with an offset (`+00`, `+01:00`, `Z`).
pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    // `+00` (hours only), as psql prints timestamps.
    let padded = match s.rfind(['+', '-']) {
        Some(i) if i > 10 && s.len() - i == 3 => format!("{s}:00"),
        _ => return None,
    };
    padded.parse::<jiff::Timestamp>().ok()
}

/// The pgBackRest restore options `--backup-opts` may carry with a restore.
const RESTORE_OPTS: &[&str] = &["--set", "--process-max"];

pub fn restore_opts(opts: &str) -> Result<Vec<String>, String> {
    crate::backup::allowed_opts(opts, "restore", RESTORE_OPTS)
}

/// pgBackRest as `--pgbackrest` or `Cluster.Backrest` asks, with the
/// archiving and retention of pgo.yaml.
fn backrest_of(
    req: &CreateClusterRequest,
    config: &PgoConfig,
) -> Result<Option<BackrestSpec>, ValidationError> {
    if !req.pgbackrest.unwrap_or(config.cluster.backrest) {
        return Ok(None);
    }
    let c = &config.cluster;
    if c.backrest_retention_full == 0 || c.backrest_retention_diff == Some(0) {
        return Err(ValidationError::Unsupported(
            "pgo.yaml: Cluster.BackrestRetentionFull and Cluster.BackrestRetentionDiff must be at least 1 (pgBackRest keeps at least one backup)".into(),
        ));
    }
    Ok(Some(BackrestSpec {
        archive_timeout_seconds: c.archive_timeout,
        retention_full: c.backrest_retention_full,
        retention_diff: c.backrest_retention_diff,
    }))
}

/// `pgo scale NAME --replica-count=N` adds N replicas to the `current` ones.
pub fn scale(current: u32, add: u32) -> Result<u32, ValidationError> {
    if add == 0 {
        return Err(ValidationError::Unsupported(
            "--replica-count must be at least 1: scale adds that many replicas".into(),
        ));
    }
    let total = current.saturating_add(add);
    if total > MAX_REPLICAS {
        return Err(ValidationError::TooManyReplicas(total));
    }
    Ok(total)
}

/// The strategies pgo ships templates for; a platform may know more (a
/// strategy added to the Kubernetes operator-conf).
pub fn shipped_strategies() -> Vec<String> {
    KNOWN_STRATEGIES.iter().map(|s| s.to_string()).collect()
}

fn known_strategy(strategy: &str, strategies: &[String]) -> Result<(), ValidationError> {
    if strategies.iter().any(|s| s == strategy) {
        Ok(())
    } else {
        Err(ValidationError::UnknownStrategy(
            strategy.to_string(),
            strategies.join(", "),
        ))
    }
}

/// Checks a stored spec, which may have been written by hand (`kubectl
/// apply`) rather than through the apiserver.
pub fn stored_spec(name: &str, spec: &PgclusterSpec, strategies: &[String]) -> Result<(), ValidationError> {
    cluster_name(name)?;
    known_strategy(&spec.strategy, strategies)?;
    if spec.replicas > MAX_REPLICAS {
        return Err(ValidationError::TooManyReplicas(spec.replicas));
    }
    if let Some(pvc) = &spec.pvc_name {
        dns1035_label(pvc)?;
    }
    access_mode(spec.primary_storage.access_mode.as_deref())?;
    access_mode(spec.replica_storage.access_mode.as_deref())?;
    if let Some(r) = &spec.resources {
        resources(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A create request with pgo.yaml's defaults, the shipped strategies
    /// and a platform that builds every backup.
    fn stock(req: &CreateClusterRequest) -> Result<PgclusterSpec, ValidationError> {
        create_request(
            req,
            &PgoConfig::default(),
            &shipped_strategies(),
            BackupSupport::ALL,
        )
    }

    #[test]
    fn a_priority_class_is_an_object_name() {
        let with = |class: &str| {
            let mut c = PgoConfig::default();
            c.cluster.priority_class_name = Some(class.into());
            config(&c)
        };
        for ok in ["critical-db", "db.critical", "x"] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for bad in ["Critical_DB", "", "-db", "db-", "a b"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("Cluster.PriorityClassName"), "{bad}: {err}");
        }
    }

    #[test]
    fn cpu_reads_as_millicores() {
        let cases = [
            ("500m", Some(500)),
            ("0.1", Some(100)),
            (".5", Some(500)),
            ("2", Some(2000)),
            ("1.25", Some(1250)),
            ("0.0001", None),
            ("1.5m", None),
            ("m", None),
            ("", None),
            ("two", None),
        ];
        for (text, want) in cases {
            assert_eq!(cpu_millis(text), want, "{text}");
        }
    }

    #[test]
    fn resources_are_named_in_pgo_yaml_and_requests_stay_under_limits() {
        let yaml = "ContainerResources:\n  small:\n    RequestsMemory: 512Mi\n    RequestsCPU: 0.1\n    LimitsMemory: 512Mi\n    LimitsCPU: 0.1\n  upside:\n    RequestsMemory: 2Gi\n    RequestsCPU: 1\n    LimitsMemory: 1Gi\n    LimitsCPU: 1\n  typo:\n    RequestsMemory: lots\n    RequestsCPU: 1\n    LimitsMemory: 1Gi\n    LimitsCPU: 1\n";
        let config = PgoConfig::from_yaml(yaml).unwrap();
        let strategies = shipped_strategies();
        let create = |name: Option<&str>| {
            let req = CreateClusterRequest {
                name: "db".into(),
                resources_config: name.map(str::to_string),
                ..Default::default()
            };
            create_request(&req, &config, &strategies, BackupSupport::ALL)
        };
        assert_eq!(create(None).unwrap().resources, None, "the Guaranteed default");
        let small = create(Some("small")).unwrap().resources.unwrap();
        assert_eq!(
            (small.requests.cpu.as_str(), small.limits.memory.as_str()),
            ("0.1", "512Mi")
        );
        let err = create(Some("large")).unwrap_err().to_string();
        assert!(
            err.contains("\"large\"") && err.contains("small, typo, upside"),
            "{err}"
        );
        let err = create(Some("upside")).unwrap_err().to_string();
        assert!(err.contains("must not exceed limits"), "{err}");
        let err = create(Some("typo")).unwrap_err().to_string();
        assert!(err.contains("memory request \"lots\""), "{err}");
        let mut with_default = config.clone();
        with_default.default_container_resources = Some("small".into());
        let req = CreateClusterRequest {
            name: "db".into(),
            ..Default::default()
        };
        let spec = create_request(&req, &with_default, &strategies, BackupSupport::ALL).unwrap();
        assert_eq!(spec.resources, Some(small));
    }

    #[test]
    fn sizes_compare_as_bytes() {
        let cases = [
            ("1G", Some(1_000_000_000)),
            ("1Gi", Some(1 << 30)),
            ("500Mi", Some(500 << 20)),
            ("2048", Some(2048)),
            ("1k", Some(1000)),
            ("1.5G", None),
            ("1g", None),
            ("G", None),
            ("", None),
        ];
        for (size, bytes) in cases {
            assert_eq!(size_bytes(size), bytes, "{size}");
        }
        assert!(size_bytes("2G") > size_bytes("1Gi"));
    }

    #[test]
    fn a_data_volume_is_for_one_node_or_one_pod() {
        let cases = [
            (None, true),
            (Some("ReadWriteOnce"), true),
            (Some("ReadWriteOncePod"), true),
            (Some("ReadWriteMany"), false),
            (Some("ReadOnlyMany"), false),
            (Some("readwriteonce"), false),
        ];
        for (mode, ok) in cases {
            assert_eq!(access_mode(mode).is_ok(), ok, "{mode:?}");
        }
        let err = access_mode(Some("ReadWriteMany")).unwrap_err().to_string();
        assert!(
            err.contains("ReadWriteMany") && err.contains("never share"),
            "{err}"
        );
    }

    #[test]
    fn a_namespace_name_is_a_dns1123_label() {
        for good in ["pgo", "pgo-apps", "1st", "a"] {
            assert!(dns1123_label(good), "{good}");
        }
        for bad in ["", "Apps_1", "a.b", "-a", "a-", "Bad&x=1", &"a".repeat(64)] {
            assert!(!dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_dns1035_labels() {
        for ok in ["a", "mycluster", "db-1", "x9"] {
            assert_eq!(dns1035_label(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else_naming_the_rule() {
        let cases = [
            ("", "empty"),
            ("My", "character"),
            ("a..b", "character"),
            ("a/b", "character"),
            ("a b", "character"),
            ("1db", "start with a letter"),
            ("db-", "ends with"),
        ];
        for (name, rule) in cases {
            let err = dns1035_label(name).unwrap_err().to_string();
            assert!(err.contains(rule), "{name:?}: {err}");
        }
        let long = "a".repeat(64);
        assert!(dns1035_label(&long).unwrap_err().to_string().contains("63"));
        assert!(cluster_name(&"a".repeat(41)).is_err());
    }

    #[test]
    fn create_fills_defaults_from_pgo_yaml() {
        let req = CreateClusterRequest {
            name: "db".into(),
            ..Default::default()
        };
        let spec = stock(&req).unwrap();
        assert_eq!(spec.replicas, 0);
        assert_eq!(spec.strategy, "1");
        assert_eq!(spec.database, "userdb");
        assert_eq!(spec.user, "testuser");
        assert_eq!(spec.primary_storage.size, "1G");
    }

    #[test]
    fn pitr_targets_are_checked_and_times_normalised() {
        let t = |kind: Option<&str>, value: Option<&str>| pitr_target(kind, value);
        assert_eq!(t(None, None), Ok(None));
        let at = t(None, Some("2026-11-24 10:00:00+00")).unwrap().unwrap();
        assert_eq!(
            (at.type_, at.value.as_str()),
            (PitrType::Time, "2026-11-24T10:00:00Z")
        );
        let at = t(Some("time"), Some("2026-11-24T11:00:00.5+01:00"))
            .unwrap()
            .unwrap();
        assert_eq!(at.value, "2026-11-24T10:00:00.5Z");
        assert!(
            t(None, Some("2026-11-24 10:00:00"))
                .unwrap_err()
                .contains("time zone")
        );
        assert!(t(None, Some("yesterday")).is_err());
        assert_eq!(
            t(Some("lsn"), Some("0/3000060")).unwrap().unwrap().value,
            "0/3000060"
        );
        assert!(
            t(Some("lsn"), Some("3000060"))
                .unwrap_err()
                .contains("WAL position")
        );
        assert!(
            t(Some("xid"), Some("12a"))
                .unwrap_err()
                .contains("transaction id")
        );
        assert!(
            t(Some("name"), Some("it's"))
                .unwrap_err()
                .contains("without quotes")
        );
        let imm = t(Some("immediate"), None).unwrap().unwrap();
        assert_eq!((imm.type_, imm.value.as_str()), (PitrType::Immediate, ""));
        assert!(t(Some("immediate"), Some("now")).is_err());
        assert!(t(Some("when"), Some("now")).unwrap_err().contains("not one of"));
    }

    #[test]
    fn restore_from_is_checked_before_anything_is_made() {
        let req = |from: Option<&str>, target: Option<&str>, opts: Option<&str>| CreateClusterRequest {
            name: "db".into(),
            restore_from: from.map(str::to_string),
            pitr_target: target.map(str::to_string),
            backup_opts: opts.map(str::to_string),
            ..Default::default()
        };
        let (c, s) = (PgoConfig::default(), shipped_strategies());
        let spec = create_request(
            &req(Some("old"), None, Some("--set=20260101-000000F")),
            &c,
            &s,
            BackupSupport::ALL,
        )
        .unwrap();
        let from = spec.restore_from.unwrap();
        assert_eq!((from.cluster.as_str(), from.target), ("old", None));
        assert_eq!(from.options, ["--set=20260101-000000F"]);
        let err = |r| {
            create_request(&r, &c, &s, BackupSupport::ALL)
                .unwrap_err()
                .to_string()
        };
        assert!(err(req(None, Some("2026-01-01 00:00:00+00"), None)).contains("need --restore-from"));
        assert!(err(req(Some("db"), None, None)).contains("names the cluster being made"));
        assert!(err(req(Some("old"), None, Some("--config=/x"))).contains("--config=/x"));
        assert!(err(req(Some("Old"), None, None)).contains("invalid name"));
        let refused = create_request(&req(Some("old"), None, None), &c, &s, BackupSupport::NONE).unwrap_err();
        assert!(refused.to_string().contains("--restore-from"), "{refused}");
    }

    #[test]
    fn a_copy_to_start_from_is_checked_before_anything_is_made() {
        let req = |pvc: Option<&str>, path: Option<&str>, secrets: Option<&str>, restore: Option<&str>| {
            CreateClusterRequest {
                name: "db".into(),
                backup_pvc: pvc.map(str::to_string),
                backup_path: path.map(str::to_string),
                secret_from: secrets.map(str::to_string),
                restore_from: restore.map(str::to_string),
                ..Default::default()
            }
        };
        let (c, s) = (PgoConfig::default(), shipped_strategies());
        let path = "old-backups/2026-01-01-00-00-00";
        let spec = create_request(
            &req(Some("old-backup"), Some(path), Some("old"), None),
            &c,
            &s,
            BackupSupport::ALL,
        )
        .unwrap();
        let copy = spec.copy_from.unwrap();
        assert_eq!((copy.volume.as_str(), copy.path.as_str()), ("old-backup", path));
        assert_eq!(spec.secret_from.as_deref(), Some("old"));
        let err = |r| {
            create_request(&r, &c, &s, BackupSupport::ALL)
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (req(Some("old-backup"), None, Some("old"), None), "go together"),
            (req(None, Some(path), Some("old"), None), "go together"),
            (req(Some("old-backup"), Some(path), None, None), "--secret-from"),
            (
                req(Some("old-backup"), Some(path), Some("old"), Some("old")),
                "choose one",
            ),
            (
                req(Some("old-backup"), Some("../x"), Some("old"), None),
                "relative, no ..",
            ),
            (
                req(Some("old-backup"), Some("/etc"), Some("old"), None),
                "relative, no ..",
            ),
            (req(None, None, Some("Old"), None), "invalid name"),
        ];
        for (r, why) in cases {
            let e = err(r);
            assert!(e.contains(why), "{why}: {e}");
        }
        let refused = create_request(
            &req(Some("old-backup"), Some(path), Some("old"), None),
            &c,
            &s,
            BackupSupport::NONE,
        );
        assert!(refused.is_err(), "a platform without jobs cannot copy");
    }

    #[test]
    fn pgbackrest_is_on_by_default_where_the_platform_has_it() {
        let req = |pgbackrest| CreateClusterRequest {
            name: "db".into(),
            pgbackrest,
            ..Default::default()
        };
        let config = PgoConfig::default();
        let s = shipped_strategies();
        let on = create_request(&req(None), &config, &s, BackupSupport::ALL)
            .unwrap()
            .backrest
            .unwrap();
        assert_eq!((on.archive_timeout_seconds, on.retention_full), (60, 2));
        assert_eq!(
            create_request(&req(Some(false)), &config, &s, BackupSupport::ALL)
                .unwrap()
                .backrest,
            None
        );
        assert_eq!(
            create_request(&req(None), &config, &s, BackupSupport::NONE)
                .unwrap()
                .backrest,
            None
        );
        let err = create_request(&req(Some(true)), &config, &s, BackupSupport::NONE).unwrap_err();
        assert!(err.to_string().contains("--pgbackrest"), "{err}");
        let mut off = PgoConfig::default();
        off.cluster.backrest = false;
        assert_eq!(
            create_request(&req(None), &off, &s, BackupSupport::ALL)
                .unwrap()
                .backrest,
            None
        );
        let mut zero = PgoConfig::default();
        zero.cluster.backrest_retention_full = 0;
        let err = create_request(&req(None), &zero, &s, BackupSupport::ALL).unwrap_err();
        assert!(err.to_string().contains("BackrestRetentionFull"), "{err}");
    }

    #[test]
    fn create_refuses_an_unknown_strategy_and_too_many_replicas() {
        let mut config = PgoConfig::default();
        config.cluster.strategy = "7".into();
        let req = CreateClusterRequest {
            name: "db".into(),
            ..Default::default()
        };
        let err = create_request(&req, &config, &shipped_strategies(), BackupSupport::ALL).unwrap_err();
        assert_eq!(err, ValidationError::UnknownStrategy("7".into(), "1".into()));

        let req = CreateClusterRequest {
            name: "db".into(),
            replica_count: Some(16),
            ..Default::default()
        };
        let err = stock(&req).unwrap_err();
        assert!(err.to_string().contains("limit of 15"), "{err}");
    }

    #[test]
    fn sync_replication_needs_a_replica() {
        let req = CreateClusterRequest {
            name: "db".into(),
            sync_replication: true,
            ..Default::default()
        };
        let err = stock(&req).unwrap_err();
        assert!(err.to_string().contains("--replica-count of at least 1"), "{err}");
        let req = CreateClusterRequest {
            replica_count: Some(1),
            ..req
        };
        assert!(stock(&req).unwrap().sync_replication);
    }

    #[test]
    fn scale_adds_within_the_limit() {
        assert_eq!(scale(2, 1), Ok(3));
        assert!(scale(2, 0).is_err());
        assert!(scale(10, 6).unwrap_err().to_string().contains("limit of 15"));
    }

    #[test]
    fn storage_sizes() {
        for ok in ["1G", "500Mi", "10", "2Ti"] {
            assert!(storage_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "G", "1.5G", "1GB", "-1G"] {
            assert!(storage_size(bad).is_err(), "{bad}");
        }
    }
}
