//! Where the PostgreSQL server binaries are.

use crate::InstanceError;
use std::path::{Path, PathBuf};

/// The configured directory, else `$PGO_PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `PATH`.
pub fn find(configured: Option<&Path>) -> Result<PathBuf, InstanceError> {
    let has_server = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = configured {
        return if has_server(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(InstanceError::Environment(format!(
                "{} holds no PostgreSQL server (postgres and initdb)",
                dir.display()
            )))
        };
    }
    if let Some(dir) = std::env::var_os("PGO_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(InstanceError::Environment(
        "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin and PATH): install the postgresql package or set PGO_PG_BIN_DIR".into(),
    ))
}
