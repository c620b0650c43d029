//! Where the local platform keeps things.

use crate::PlatformError;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Layout {
    home: PathBuf,
    data_dir: PathBuf,
}

impl Layout {
    pub fn new(home: &Path, data_dir: &Path) -> Self {
        Layout {
            home: home.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn create(&self) -> Result<(), PlatformError> {
        for dir in [
            self.instances(),
            self.secrets(),
            self.services(),
            self.jobs(),
            self.config_maps(),
        ] {
            super::files::private_dir(&dir)?;
        }
        // Each volume below is owned by PostgreSQL's user, mode 0700; the
        // directory that holds them only needs to be searchable.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.data_dir)
            .map_err(|e| PlatformError::io(format!("cannot create {}", self.data_dir.display()), e))
    }

    pub fn instances(&self) -> PathBuf {
        self.home.join("instances")
    }
    pub fn instance(&self, name: &str) -> PathBuf {
        self.instances().join(name)
    }
    pub fn secrets(&self) -> PathBuf {
        self.home.join("secrets")
    }
    pub fn secret(&self, name: &str) -> PathBuf {
        self.secrets().join(name)
    }
    pub fn services(&self) -> PathBuf {
        self.home.join("services")
    }
    pub fn service(&self, name: &str) -> PathBuf {
        self.services().join(format!("{name}.json"))
    }
    pub fn config_maps(&self) -> PathBuf {
        self.home.join("configmaps")
    }
    pub fn config_map(&self, name: &str) -> PathBuf {
        self.config_maps().join(name)
    }
    pub fn jobs(&self) -> PathBuf {
        self.home.join("jobs")
    }
    pub fn job(&self, name: &str) -> PathBuf {
        self.jobs().join(name)
    }
    pub fn volumes(&self) -> &Path {
        &self.data_dir
    }
    pub fn volume(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }
}
