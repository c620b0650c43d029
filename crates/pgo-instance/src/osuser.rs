//! Which OS user PostgreSQL runs as. PostgreSQL refuses to run as root, so a
//! manager started as root runs it as `postgres`.

use crate::InstanceError;
use nix::unistd::{Gid, Uid, User, chown, geteuid};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// The manager runs as someone else (root) and must switch.
    switch: bool,
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
            None => User::from_uid(me)
                .map_err(|e| InstanceError::Environment(format!("cannot look up the current user: {e}")))?
                .ok_or_else(|| InstanceError::Environment("the current user has no passwd entry".into()))?,
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
        })
    }

    /// Makes `cmd` run as this user.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        if self.switch {
            cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
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
