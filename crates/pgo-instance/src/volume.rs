//! How much a volume holds and how much is free where it is: the same
//! figures on every platform (`pgo df`).

use std::path::Path;

/// Bytes the files under `dir` take.
pub fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// `(used, free, total)` bytes of the volume at `dir`.
pub fn usage(dir: &Path) -> Result<(u64, u64, u64), std::io::Error> {
    let fs = nix::sys::statvfs::statvfs(dir)?;
    let block = fs.fragment_size();
    Ok((size(dir), fs.blocks_available() * block, fs.blocks() * block))
}
