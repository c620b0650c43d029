//! Can PostgreSQL's OS user reach a directory? Every directory on the way
//! must let it search (x). A home under a 0700 /root does not.

use nix::unistd::{Gid, Uid};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `Err` names the first directory on the way that stops the user, and why.
pub fn check(path: &Path, uid: Uid, gid: Gid) -> Result<(), String> {
    let mut walked = std::path::PathBuf::new();
    for part in path.components() {
        walked.push(part);
        let meta = match std::fs::metadata(&walked) {
            Ok(m) => m,
            // Not made yet: it will be made by us, with a searchable mode.
            Err(_) => return Ok(()),
        };
        let mode = meta.mode();
        let allowed = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !allowed {
            return Err(format!(
                "{} is mode {:04o}, owner uid {}",
                walked.display(),
                mode & 0o7777,
                meta.uid()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_closed_directory_on_the_way_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        let inner = closed.join("data");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Someone who is neither owner nor group.
        let stranger = (Uid::from_raw(54321), Gid::from_raw(54321));
        let err = check(&inner, stranger.0, stranger.1).unwrap_err();
        assert!(err.contains("closed") && err.contains("0700"), "{err}");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(check(&inner, stranger.0, stranger.1), Ok(()));
    }
}
