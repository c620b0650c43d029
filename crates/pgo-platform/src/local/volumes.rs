//! A volume is a directory under the data dir, marked with a small record
//! that says which cluster it belongs to.

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
    std::fs::create_dir_all(&dir)
        .map_err(|e| PlatformError::io(format!("cannot create volume {}", dir.display()), e))?;
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
            out.push(VolumeInfo {
                name: record.name,
                cluster: record.cluster,
                location: path.display().to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a volume and all its data.
pub fn remove(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    files::remove_dir(&layout.volume(name))
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
