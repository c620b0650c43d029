//! Which OS user PostgreSQL runs as. PostgreSQL refuses to run as root, so a
//! manager started as root runs it as `postgres`.
//!
//! A container may run as a uid its image has never heard of (OpenShift's
//! restricted policy picks one per namespace). PostgreSQL's server does not
//! care, but `initdb` looks its user up and stops when there is no passwd
//! entry. Then, as the official postgres image does, the tools run under
//! nss_wrapper with a passwd file that names the uid.

use crate::InstanceError;
use nix::unistd::{Gid, Uid, User, chown, getegid, geteuid};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where distributions put nss_wrapper (Debian's libnss-wrapper, and
/// others'), in the order tried.
const NSS_WRAPPER: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
    "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
    "/usr/lib64/libnss_wrapper.so",
    "/usr/lib/libnss_wrapper.so",
];

#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// The manager runs as someone else (root) and must switch.
    switch: bool,
    /// Set when the uid has no passwd entry: what PostgreSQL's tools run
    /// under so that they find one.
    nss: Option<NssWrapper>,
}

/// nss_wrapper's library and the passwd and group files it serves.
#[derive(Clone, Debug)]
struct NssWrapper {
    library: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
}

impl NssWrapper {
    /// The environment that has a program resolve users through it.
    fn envs(&self) -> [(&'static str, &Path); 3] {
        [
            ("LD_PRELOAD", &self.library),
            ("NSS_WRAPPER_PASSWD", &self.passwd),
            ("NSS_WRAPPER_GROUP", &self.group),
        ]
    }

    /// Writes passwd and group files under `dir` that add `uid` (as
    /// `postgres`) and `gid` to the system's own.
    fn make(uid: Uid, gid: Gid, dir: &Path) -> Result<Self, InstanceError> {
        let env_err = |e: String| InstanceError::Environment(e);
        let library = NSS_WRAPPER.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
            env_err(format!(
                "uid {uid} has no passwd entry, and initdb needs one: install nss_wrapper (Debian's libnss-wrapper; pgo's instance image has it) or run as a user /etc/passwd names"
            ))
        })?;
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let mut passwd = read("/etc/passwd");
        passwd.push_str(&format!(
            "postgres:x:{uid}:{gid}:PostgreSQL:{}:/bin/false\n",
            dir.display()
        ));
        let mut group = read("/etc/group");
        if !group
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&gid.to_string()))
        {
            group.push_str(&format!("postgres:x:{gid}:\n"));
        }
        std::fs::create_dir_all(dir).map_err(|e| env_err(format!("cannot create {}: {e}", dir.display())))?;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map(|()| path.clone())
                .map_err(|e| env_err(format!("cannot write {}: {e}", path.display())))
        };
        Ok(NssWrapper {
            library,
            passwd: write("passwd", &passwd)?,
            group: write("group", &group)?,
        })
    }
}

impl RunAs {
    pub fn resolve(configured: Option<&str>) -> Result<Self, InstanceError> {
        let me = geteuid();
        let wanted = match configured {
            Some(name) => Some(name.to_string()),
            None if me.is_root() => Some("postgres".to_string()),
            None => None,
        };
        let user = match wanted {
            Some(name) => User::from_name(&name)
                .map_err(|e| InstanceError::Environment(format!("cannot look up OS user {name}: {e}")))?
                .ok_or_else(|| {
                    InstanceError::Environment(format!(
                        "there is no OS user {name:?} to run PostgreSQL as (PostgreSQL refuses to run as root): install the postgresql package or create the user"
                    ))
                })?,
            None => match User::from_uid(me)
                .map_err(|e| InstanceError::Environment(format!("cannot look up the current user: {e}")))?
            {
                Some(user) => user,
                None => return Self::unlisted(me, getegid()),
            },
        };
        if user.uid.is_root() {
            return Err(InstanceError::Environment(
                "PostgreSQL cannot run as root; name another OS user".into(),
            ));
        }
        Ok(RunAs {
            switch: user.uid != me,
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            nss: None,
        })
    }

    /// This process's own uid, which no passwd entry names.
    fn unlisted(uid: Uid, gid: Gid) -> Result<Self, InstanceError> {
        let dir = std::env::temp_dir().join(format!("pgo-nss-{uid}"));
        Ok(RunAs {
            name: format!("uid {uid}"),
            uid,
            gid,
            switch: false,
            nss: Some(NssWrapper::make(uid, gid, &dir)?),
        })
    }

    /// Makes `cmd` run as this user.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        if self.switch {
            cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
        }
        if let Some(nss) = &self.nss {
            cmd.envs(nss.envs());
        }
    }

    /// Gives `path` to this user with `mode`.
    pub fn own(&self, path: &Path, mode: u32) -> Result<(), String> {
        if self.switch {
            chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| format!("cannot give {} to {}: {e}", path.display(), self.name))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
    }

    /// Writes a file this user owns.
    pub fn write(&self, path: &Path, contents: &str) -> Result<(), String> {
        std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.own(path, 0o600)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// A uid no passwd entry names, as OpenShift assigns them.
    const ASSIGNED: u32 = 1_000_650_000;

    /// initdb as `ASSIGNED` with group 0, in a directory it owns, with
    /// `nss` or without.
    fn initdb_as_assigned(nss: Option<&NssWrapper>, dir: &Path) -> std::process::Output {
        let bin = crate::pgbin::find(None).unwrap();
        let pgdata = dir.join("pgdata");
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={ASSIGNED}"))
            .args(["--regid=0", "--clear-groups"])
            .arg(bin.join("initdb"))
            .args(["--no-sync", "--no-instructions", "--username=postgres", "-D"])
            .arg(&pgdata)
            .current_dir(dir);
        if let Some(nss) = nss {
            cmd.envs(nss.envs());
        }
        cmd.output().unwrap()
    }

    /// Needs root, to run as a uid nobody has (CI runs as root).
    #[test]
    fn initdb_runs_as_a_uid_without_a_passwd_entry_under_nss_wrapper() {
        if !geteuid().is_root() {
            eprintln!("skipped: needs root to take on an unknown uid");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        // Without a passwd entry, initdb stops: the failure this exists for.
        let bare = initdb_as_assigned(None, dir.path());
        assert!(!bare.status.success());
        assert!(
            String::from_utf8_lossy(&bare.stderr).contains("could not look up effective user ID"),
            "{}",
            String::from_utf8_lossy(&bare.stderr)
        );
        let nss =
            NssWrapper::make(Uid::from_raw(ASSIGNED), Gid::from_raw(0), &dir.path().join("nss")).unwrap();
        let out = initdb_as_assigned(Some(&nss), dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.path().join("pgdata/PG_VERSION").is_file());
        let passwd = std::fs::read_to_string(&nss.passwd).unwrap();
        assert!(passwd.ends_with(&format!(
            "postgres:x:{ASSIGNED}:0:PostgreSQL:{}:/bin/false\n",
            dir.path().join("nss").display()
        )));
        // Group 0 is the system's; nothing is added for it.
        let group = std::fs::read_to_string(&nss.group).unwrap();
        assert_eq!(group, std::fs::read_to_string("/etc/group").unwrap());
    }
}
