//! Storage that can be frozen for real: a small ext4 image, loop-mounted.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small ext4 filesystem, loop-mounted over a directory: storage that can
/// be frozen for real. Thawed and unmounted when dropped, so declare it after
/// the server (it must go first: the server's temporary home is removed
/// when the server goes, which would block on a frozen filesystem).
pub struct LoopFs {
    at: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl LoopFs {
    pub fn mount(image: &Path, at: &Path) -> LoopFs {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts a loop filesystem and freezes it: run it as root, as CI does"
        );
        run(Command::new("truncate").arg("-s").arg("256M").arg(image));
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image));
        std::fs::create_dir_all(at).unwrap();
        run(Command::new("mount").args(["-o", "loop"]).arg(image).arg(at));
        LoopFs { at: at.to_path_buf() }
    }

    pub fn freeze(&self) {
        run(Command::new("fsfreeze").arg("-f").arg(&self.at));
    }

    pub fn thaw(&self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.at).output();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        self.thaw();
        // Lazy: processes killed a moment ago may still hold it.
        let _ = Command::new("umount").arg("-l").arg(&self.at).output();
    }
}
