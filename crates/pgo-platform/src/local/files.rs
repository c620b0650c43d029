//! Small file helpers: private directories and files, JSON records written
//! atomically so a crash never leaves half a record.

use crate::PlatformError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

pub fn private_dir(dir: &Path) -> Result<(), PlatformError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| PlatformError::io(format!("cannot create {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| PlatformError::io(format!("cannot set the mode of {}", dir.display()), e))
}

/// Writes `bytes` to `path` with `mode`, through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PlatformError> {
    let tmp = path.with_extension("tmp");
    let err = |e| PlatformError::io(format!("cannot write {}", path.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), PlatformError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| PlatformError::Invalid(format!("cannot encode {}: {e}", path.display())))?;
    write_atomic(path, &bytes, 0o600)
}

/// `None` when the file does not exist; an error naming the file when it
/// does not parse.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PlatformError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PlatformError::Invalid(format!("{} does not parse: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PlatformError::io(format!("cannot read {}", path.display()), e)),
    }
}

/// A file as [`read_json`] parsed it, and the stat it had then.
type Parsed = ((u64, u64, i64, i64, u64), Arc<dyn Any + Send + Sync>);

/// Small records read every pass (an instance's config, a volume's record),
/// parsed once per version of the file: a pass then costs one `stat` each,
/// not an open, reads, a close and a parse.
static PARSED: LazyLock<Mutex<HashMap<PathBuf, Parsed>>> = LazyLock::new(Mutex::default);

/// As [`read_json`], shared from memory while the file's device, inode,
/// modification time and length are those it was parsed at. Every write
/// here is a rename of a new file, so any rewrite changes the inode.
pub fn read_json_cached<T>(path: &Path) -> Result<Option<Arc<T>>, PlatformError>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    let stamp = match std::fs::metadata(path) {
        Ok(m) => (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(mut memo) = PARSED.lock() {
                memo.remove(path);
            }
            return Ok(None);
        }
        Err(e) => return Err(PlatformError::io(format!("cannot stat {}", path.display()), e)),
    };
    let hit = PARSED.lock().ok().and_then(|memo| {
        let (at, parsed) = memo.get(path)?;
        (*at == stamp).then(|| parsed.clone().downcast::<T>().ok())?
    });
    if hit.is_some() {
        return Ok(hit);
    }
    let Some(parsed) = read_json::<T>(path)?.map(Arc::new) else {
        return Ok(None);
    };
    if let Ok(mut memo) = PARSED.lock() {
        memo.insert(path.to_path_buf(), (stamp, parsed.clone()));
    }
    Ok(Some(parsed))
}

/// Removes a directory and what it holds; one already gone is done.
pub fn remove_dir(dir: &Path) -> Result<(), PlatformError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PlatformError::io(format!("cannot remove {}", dir.display()), e)),
    }
}
