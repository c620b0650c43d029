//! A volume is a directory under the data dir, marked with a small record
//! that says which cluster it belongs to. A storage config with a `Path`
//! puts the directory there (another disk) and a symbolic link to it in
//! the data dir, so every volume is found by its name in one place.

use super::{Layout, files};
use crate::{PlatformError, VolumeInfo};
use pgo_api::rest::VolumeUsage;
use pgo_core::desired::VolumeSpec;
use serde::{Deserialize, Serialize};

const RECORD: &str = ".pgo-volume.json";

#[derive(Serialize, Deserialize)]
struct VolumeRecord {
    name: String,
    cluster: String,
    size: String,
}

pub fn ensure(layout: &Layout, spec: &VolumeSpec) -> Result<(), PlatformError> {
    let dir = layout.volume(&spec.name);
    let record = dir.join(RECORD);
    if let Some(existing) = files::read_json_cached::<VolumeRecord>(&record)? {
        if existing.cluster != spec.cluster {
            return Err(PlatformError::Invalid(format!(
                "volume {} belongs to cluster {}, not {}",
                spec.name, existing.cluster, spec.cluster
            )));
        }
        return Ok(());
    }
    match &spec.storage.path {
        Some(elsewhere) if std::fs::symlink_metadata(&dir).is_err() => {
            let target = std::path::Path::new(elsewhere).join(&spec.name);
            std::fs::create_dir_all(&target)
                .map_err(|e| PlatformError::io(format!("cannot create volume {}", target.display()), e))?;
            std::os::unix::fs::symlink(&target, &dir).map_err(|e| {
                PlatformError::io(
                    format!("cannot link volume {} to {}", dir.display(), target.display()),
                    e,
                )
            })?;
        }
        _ => std::fs::create_dir_all(&dir)
            .map_err(|e| PlatformError::io(format!("cannot create volume {}", dir.display()), e))?,
    }
    files::write_json(
        &record,
        &VolumeRecord {
            name: spec.name.clone(),
            cluster: spec.cluster.clone(),
            size: spec.storage.size.clone(),
        },
    )
}

pub fn list(layout: &Layout) -> Result<Vec<VolumeInfo>, PlatformError> {
    let dir = layout.volumes();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(PlatformError::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(record) = files::read_json::<VolumeRecord>(&path.join(RECORD))? {
            // Where it is: through the link, for one made elsewhere.
            let location = std::fs::canonicalize(&path).unwrap_or(path);
            out.push(VolumeInfo {
                name: record.name,
                cluster: record.cluster,
                location: location.display().to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a volume and all its data (where a link points too).
pub fn remove(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    let dir = layout.volume(name);
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
        if let Ok(target) = std::fs::read_link(&dir) {
            files::remove_dir(&target)?;
        }
        return std::fs::remove_file(&dir)
            .map_err(|e| PlatformError::io(format!("cannot remove {}", dir.display()), e));
    }
    files::remove_dir(&dir)
}

/// What a volume holds and what is free where it is.
pub fn usage(layout: &Layout, name: &str) -> Result<Option<VolumeUsage>, PlatformError> {
    let dir = layout.volume(name);
    let Some(record) = files::read_json::<VolumeRecord>(&dir.join(RECORD))? else {
        return Ok(None);
    };
    let (used_bytes, free_bytes, total_bytes) = pgo_instance::volume::usage(&dir)
        .map_err(|e| PlatformError::io(format!("cannot stat the filesystem of {}", dir.display()), e))?;
    Ok(Some(VolumeUsage {
        name: record.name,
        instance: String::new(),
        path: dir.display().to_string(),
        used_bytes,
        free_bytes,
        total_bytes,
    }))
}
