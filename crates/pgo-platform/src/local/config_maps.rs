//! ConfigMaps on the local platform: a directory of files under the home
//! (`configmaps/<name>/<key>`), as a ConfigMap is mounted in a pod. A new
//! content is written beside the old and swapped in by renames, so a
//! reader sees the old files or the new, never half of each.

use super::files;
use super::layout::Layout;
use crate::PlatformError;
use std::collections::BTreeMap;
use std::path::Path;

pub fn put(layout: &Layout, name: &str, data: &BTreeMap<String, String>) -> Result<(), PlatformError> {
    let dir = layout.config_map(name);
    let new = layout.config_maps().join(format!(".{name}.new"));
    let old = layout.config_maps().join(format!(".{name}.old"));
    files::remove_dir(&new)?;
    files::private_dir(&new)?;
    for (key, text) in data {
        files::write_atomic(&new.join(key), text.as_bytes(), 0o600)?;
    }
    let io = |what: &str, e| PlatformError::io(format!("configmap {name}: cannot {what}"), e);
    files::remove_dir(&old)?;
    if dir.exists() {
        std::fs::rename(&dir, &old).map_err(|e| io("set the old content aside", e))?;
    }
    std::fs::rename(&new, &dir).map_err(|e| io("put the new content in place", e))?;
    files::remove_dir(&old)
}

pub fn get(layout: &Layout, name: &str) -> Result<Option<BTreeMap<String, String>>, PlatformError> {
    let dir = layout.config_map(name);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PlatformError::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut data = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| PlatformError::io(format!("cannot read {}", dir.display()), e))?;
        let path = entry.path();
        // Written whole beside it and renamed in: no partial file here.
        let Some(key) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
            continue;
        };
        data.insert(key, read(&path)?);
    }
    Ok(Some(data))
}

fn read(path: &Path) -> Result<String, PlatformError> {
    std::fs::read_to_string(path).map_err(|e| PlatformError::io(format!("cannot read {}", path.display()), e))
}

pub fn list(layout: &Layout) -> Result<Vec<String>, PlatformError> {
    let dir = layout.config_maps();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(PlatformError::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

pub fn remove(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    files::remove_dir(&layout.config_map(name))
}
