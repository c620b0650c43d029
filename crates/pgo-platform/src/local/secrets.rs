//! A secret is a private directory holding `username` and `password`, the
//! layout Kubernetes gives a mounted secret, so the instance manager reads
//! both the same way.

use super::{Layout, files};
use crate::{Credentials, PlatformError};
use pgo_core::desired::SecretSpec;

pub fn ensure(layout: &Layout, spec: &SecretSpec) -> Result<(), PlatformError> {
    let dir = layout.secret(&spec.name);
    if dir.join("password").exists() {
        return Ok(());
    }
    let password = match &spec.copy_from {
        Some(source) => {
            let copied = read(layout, source)?.ok_or_else(|| {
                PlatformError::Failed(format!(
                    "secret {source} is gone, so the password of {} in the restored data is unknown",
                    spec.username
                ))
            })?;
            copied.password
        }
        None => crate::password(24)
            .map_err(|_| PlatformError::Invalid("the system random source failed".into()))?,
    };
    files::private_dir(&dir)?;
    files::write_atomic(&dir.join("username"), spec.username.as_bytes(), 0o600)?;
    files::write_atomic(&dir.join("password"), password.as_bytes(), 0o600)
}

pub fn read(layout: &Layout, name: &str) -> Result<Option<Credentials>, PlatformError> {
    let dir = layout.secret(name);
    let read = |file: &str| -> Result<Option<String>, PlatformError> {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim_end().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PlatformError::io(format!("cannot read {}", path.display()), e)),
        }
    };
    match (read("username")?, read("password")?) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        _ => Ok(None),
    }
}
