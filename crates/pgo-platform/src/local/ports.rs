//! Ports for instances and services, from a range of their own.
//!
//! A port found by binding to 0 comes from the kernel's ephemeral range,
//! where any outgoing connection can take it a moment later: 100 clusters
//! made at once left one whose PostgreSQL port a service proxy had bound.
//! So ports come from a range outside `ip_local_port_range` (pgo.yaml
//! `Pgo.LocalPortRange`), and every one handed out is recorded with its
//! owner in `ports.json`, so no two objects ever share one, across restarts.
//! Servers with other homes on the same machine draw from the same range:
//! each port is also claimed machine-wide by creating a file named after it
//! in a shared directory ([`claims_dir`]), which only one can create. A claim
//! whose home is gone is taken over.

use super::files;
use crate::PlatformError;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Mutex;

/// The range used when pgo.yaml names none: below Linux's default
/// ephemeral range (32768–60999) and above most well-known services.
pub const DEFAULT_RANGE: RangeInclusive<u16> = 20000..=29999;

pub struct Ports {
    range: RangeInclusive<u16>,
    /// `ports.json`.
    file: PathBuf,
    /// This server's home, written into its claims.
    home: PathBuf,
    claims: PathBuf,
    record: Mutex<Record>,
}

/// `ports.json`.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Record {
    /// Where the next search starts: ports are handed out in turn, so one
    /// just given back (a fenced primary's) is the last to be used again,
    /// and a client still pointed at it never reaches another instance.
    next: u16,
    /// Port → owner (`instance/<name>/postgres`, `service/<name>/`, …).
    taken: BTreeMap<u16, String>,
    /// Ports given back, with when (seconds since the epoch). They stay
    /// claimed for [`QUARANTINE`], so no server, this one or another, hands
    /// them out while clients may still be pointed at them.
    #[serde(default)]
    released: BTreeMap<u16, u64>,
}

/// How long a port given back stays out of use.
pub const QUARANTINE: std::time::Duration = std::time::Duration::from_secs(600);

fn epoch_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where ports are claimed machine-wide: `/tmp/pgo-ports` (sticky and open
/// to all, as `/tmp` is, so servers of different users share it).
pub fn claims_dir() -> PathBuf {
    std::env::temp_dir().join("pgo-ports")
}

fn open_claims(dir: &std::path::Path) -> Result<(), PlatformError> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| PlatformError::io(format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| PlatformError::io(format!("cannot open up {}", dir.display()), e))?;
    }
    Ok(())
}

/// Parses `FROM-TO`.
pub fn parse_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not a port range (FROM-TO)"))?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| format!("{a:?} is not a port"))?,
        b.trim().parse().map_err(|_| format!("{b:?} is not a port"))?,
    );
    if a < 1024 || a > b {
        return Err(format!(
            "{s:?}: the range must be FROM-TO with 1024 <= FROM <= TO"
        ));
    }
    Ok(a..=b)
}

/// The kernel's ephemeral range, where outgoing connections take ports.
pub fn ephemeral_range() -> Option<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().filter_map(|p| p.parse::<u16>().ok());
    Some(it.next()?..=it.next()?)
}

/// Refuses a range that overlaps the ephemeral one.
pub fn check_range(
    range: &RangeInclusive<u16>,
    ephemeral: Option<RangeInclusive<u16>>,
) -> Result<(), String> {
    match ephemeral {
        Some(e) if range.start() <= e.end() && e.start() <= range.end() => Err(format!(
            "Pgo.LocalPortRange {}-{} overlaps the kernel's ephemeral ports {}-{} (net.ipv4.ip_local_port_range), where outgoing connections take ports; choose a range outside it",
            range.start(),
            range.end(),
            e.start(),
            e.end()
        )),
        _ => Ok(()),
    }
}

impl Ports {
    /// Loads the record; `existing` are ports objects made before it
    /// (by an older version) already use, with their owners.
    pub fn open(
        range: RangeInclusive<u16>,
        home: PathBuf,
        claims: PathBuf,
        existing: impl IntoIterator<Item = (u16, String)>,
    ) -> Result<Self, PlatformError> {
        open_claims(&claims)?;
        let file = home.join("ports.json");
        let mut record: Record = files::read_json(&file)?.unwrap_or_default();
        for (port, owner) in existing {
            record.taken.entry(port).or_insert(owner);
        }
        let held: Vec<u16> = record
            .taken
            .keys()
            .chain(record.released.keys())
            .copied()
            .collect();
        let ports = Ports {
            range,
            file,
            home,
            claims,
            record: Mutex::new(record),
        };
        // What this home holds stays claimed (a claim lost by a reboot
        // that emptied /tmp is made again).
        for port in held {
            if !ports.claim(port) {
                tracing::warn!(port, "a port this home records is claimed by another pgo home");
            }
        }
        Ok(ports)
    }

    fn claim_path(&self, port: u16) -> PathBuf {
        self.claims.join(port.to_string())
    }

    /// Claims `port` machine-wide: true when it is now this home's. Under
    /// a lock shared by every server on the machine: two servers that both
    /// found a claim of a home gone must not both take it over (each would
    /// remove the file the other had just made).
    fn claim(&self, port: u16) -> bool {
        let path = self.claims.join(".lock");
        // Another user's server may have made it: read is enough to lock.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path));
        let Ok(file) = lock else {
            return false;
        };
        let Ok(_held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) else {
            return false;
        };
        self.claim_locked(port)
    }

    fn claim_locked(&self, port: u16) -> bool {
        use std::io::Write;
        let path = self.claim_path(port);
        let mine = self.home.to_string_lossy().to_string();
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => return f.write_all(mine.as_bytes()).is_ok(),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if holder == mine {
                        return true;
                    }
                    // A home that is gone holds nothing; a claim being
                    // written (empty) is left alone.
                    if holder.is_empty() || std::path::Path::new(&holder).exists() {
                        return false;
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => return false,
            }
        }
        false
    }

    fn unclaim(&self, port: u16) {
        let path = self.claim_path(port);
        if std::fs::read_to_string(&path).is_ok_and(|h| h == self.home.to_string_lossy()) {
            let _ = std::fs::remove_file(&path);
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Record>, PlatformError> {
        self.record
            .lock()
            .map_err(|_| PlatformError::Invalid("the port record's lock is poisoned".into()))
    }

    /// A port for `owner`: its own if it has one, else the next one in turn
    /// that nothing has and that can be bound now. Recorded before it is
    /// returned.
    pub fn allocate(&self, owner: &str) -> Result<u16, PlatformError> {
        let mut record = self.lock()?;
        if let Some((&port, _)) = record.taken.iter().find(|(_, o)| o.as_str() == owner) {
            return Ok(port);
        }
        // Ports out of quarantine go back to everyone.
        let now = epoch_secs();
        let expired: Vec<u16> = record
            .released
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) >= QUARANTINE.as_secs())
            .map(|(&p, _)| p)
            .collect();
        for port in expired {
            record.released.remove(&port);
            self.unclaim(port);
        }
        let (start, end) = (*self.range.start(), *self.range.end());
        let cursor = record.next.clamp(start, end);
        let free = (cursor..=end)
            .chain(start..cursor)
            .find(|p| {
                !record.taken.contains_key(p)
                    && !record.released.contains_key(p)
                    && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
                    && self.claim(*p)
            })
            .ok_or_else(|| {
                PlatformError::Invalid(format!(
                    "no free port left in Pgo.LocalPortRange {}-{} ({} recorded in {})",
                    self.range.start(),
                    self.range.end(),
                    record.taken.len(),
                    self.file.display()
                ))
            })?;
        record.taken.insert(free, owner.to_string());
        record.next = if free >= end { start } else { free + 1 };
        files::write_json(&self.file, &*record)?;
        Ok(free)
    }

    /// Gives back every port whose owner starts with `prefix`; it stays
    /// claimed, out of use, for [`QUARANTINE`].
    pub fn release(&self, prefix: &str) -> Result<(), PlatformError> {
        let mut record = self.lock()?;
        let gone: Vec<u16> = record
            .taken
            .iter()
            .filter(|(_, o)| o.starts_with(prefix))
            .map(|(&p, _)| p)
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        let now = epoch_secs();
        for port in gone {
            record.taken.remove(&port);
            record.released.insert(port, now);
        }
        files::write_json(&self.file, &*record)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The first of `len` ports in a row that are all free now, below the
    /// kernel's ephemeral range, where no outgoing connection takes them
    /// while the test runs (ports next to one the kernel handed out were not
    /// safe: a busy machine took them).
    fn free_run(len: u16) -> u16 {
        let seed = std::process::id() as u16
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u16)
                .unwrap_or(0));
        (0..900u16)
            .map(|i| 10_000 + (seed.wrapping_add(i.wrapping_mul(37)) % 900) * 10)
            .find(|start| {
                (*start..start + len).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
            })
            .expect("no run of free ports below 19000")
    }

    fn ports(dir: &std::path::Path, range: RangeInclusive<u16>) -> Ports {
        std::fs::create_dir_all(dir.join("home")).unwrap();
        Ports::open(range, dir.join("home"), dir.join("claims"), []).unwrap()
    }

    #[test]
    fn each_owner_gets_its_own_port_which_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        // A port in the range that something else holds is skipped.
        let start = free_run(4);
        let _held = std::net::TcpListener::bind(("127.0.0.1", start)).unwrap();
        let p = ports(dir.path(), start..=start.saturating_add(3));
        let a = p.allocate("instance/a/postgres").unwrap();
        let b = p.allocate("instance/a/http").unwrap();
        assert_ne!(a, start);
        assert_ne!(a, b);
        assert_eq!(
            p.allocate("instance/a/postgres").unwrap(),
            a,
            "the same owner, the same port"
        );
        let again = ports(dir.path(), start..=start.saturating_add(3));
        assert_eq!(again.allocate("instance/a/http").unwrap(), b);
        let c = again.allocate("service/a").unwrap();
        assert!(![a, b, start].contains(&c));
        let err = again.allocate("service/b").unwrap_err().to_string();
        assert!(err.contains("no free port left"), "{err}");
        again.release("instance/a/").unwrap();
        let err = again.allocate("service/b").unwrap_err().to_string();
        assert!(
            err.contains("no free port left"),
            "given back, but quarantined: {err}"
        );
    }

    #[test]
    fn a_port_given_back_is_the_last_to_be_used_again() {
        let dir = tempfile::tempdir().unwrap();
        let start = free_run(10);
        let p = ports(dir.path(), start..=start.saturating_add(9));
        let first = p.allocate("instance/old/postgres").unwrap();
        p.release("instance/old/").unwrap();
        let next = p.allocate("instance/new/postgres").unwrap();
        assert_ne!(
            next, first,
            "a fenced primary's port went straight to a new instance"
        );
        // Nor to another home on the machine while it is quarantined.
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        let other = Ports::open(
            start..=start.saturating_add(9),
            dir.path().join("other"),
            dir.path().join("claims"),
            [],
        )
        .unwrap();
        // Its search starts where `first` is: a claim is all that stops it.
        for i in 0..3 {
            assert_ne!(other.allocate(&format!("service/s{i}/")).unwrap(), first);
        }
    }

    #[test]
    fn two_homes_on_one_machine_never_share_a_port() {
        let dir = tempfile::tempdir().unwrap();
        let claims = dir.path().join("claims");
        std::fs::create_dir_all(dir.path().join("one")).unwrap();
        std::fs::create_dir_all(dir.path().join("two")).unwrap();
        let start = free_run(10);
        let range = start..=start.saturating_add(9);
        let one = Ports::open(range.clone(), dir.path().join("one"), claims.clone(), []).unwrap();
        let two = Ports::open(range.clone(), dir.path().join("two"), claims.clone(), []).unwrap();
        let a = one.allocate("service/x/").unwrap();
        let b = two.allocate("service/x/").unwrap();
        assert_ne!(a, b, "neither is bound yet: only the claim keeps them apart");
        // A home that is gone holds nothing.
        std::fs::remove_dir_all(dir.path().join("one")).unwrap();
        std::fs::create_dir_all(dir.path().join("two2")).unwrap();
        let three = Ports::open(range, dir.path().join("two2"), claims, []).unwrap();
        assert_eq!(three.allocate("service/y/").unwrap(), a);
    }

    #[test]
    fn a_range_is_parsed_and_must_avoid_the_ephemeral_ports() {
        assert_eq!(parse_range("20000-29999").unwrap(), 20000..=29999);
        for bad in ["20000", "x-2", "3000-2000", "80-90"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert!(check_range(&(20000..=29999), Some(32768..=60999)).is_ok());
        let err = check_range(&(30000..=40000), Some(32768..=60999)).unwrap_err();
        assert!(err.contains("32768-60999"), "{err}");
    }
}
