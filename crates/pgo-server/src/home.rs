//! The server's home directory and what the first start puts in it: the
//! store, the TLS files, the users and roles, and the CLI's client files.

use crate::ServerError;
use pgo_apiserver::auth::{default_roles_file, hash_password, user_line};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Home {
    pub root: PathBuf,
}

fn start_err(what: String) -> ServerError {
    ServerError::Start(what)
}

/// Writes a new file with `mode`; never replaces one.
pub fn create_file(path: &Path, contents: &str, mode: u32) -> Result<(), ServerError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| start_err(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(contents.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| start_err(format!("cannot write {}: {e}", path.display())))
}

impl Home {
    pub fn open(root: &Path) -> Result<Self, ServerError> {
        // Searchable but not listable by others, so PostgreSQL's OS user can
        // reach the volumes below it; everything secret is in 0700
        // directories or 0600 files.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(|e| {
                start_err(format!(
                    "cannot create the home directory {}: {e}",
                    root.display()
                ))
            })?;
        let root = root
            .canonicalize()
            .map_err(|e| start_err(format!("cannot resolve {}: {e}", root.display())))?;
        let home = Home { root };
        for dir in [home.tls_dir(), home.client_dir()] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| start_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(home)
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("store.db")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("server.lock")
    }
    pub fn users(&self) -> PathBuf {
        self.root.join("pgouser")
    }
    pub fn roles(&self) -> PathBuf {
        self.root.join("pgorole")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("pgo.yaml")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn client_dir(&self) -> PathBuf {
        self.root.join("client")
    }
    pub fn default_data_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// On first start: the role file, an `admin` user with a random
    /// password, and the client's copy of that password. Never replaces
    /// files that exist.
    pub fn ensure_auth(&self) -> Result<(), ServerError> {
        if !self.roles().exists() {
            create_file(&self.roles(), &default_roles_file(), 0o600)?;
        }
        if self.users().exists() {
            return Ok(());
        }
        let password =
            pgo_platform::password(24).map_err(|_| start_err("the system random source failed".into()))?;
        let hash =
            hash_password(&password).map_err(|_| start_err("the system random source failed".into()))?;
        let client = self.client_dir().join("pgouser");
        // The client file first: a crash between the two leaves no user
        // whose password nobody has.
        let _ = std::fs::remove_file(&client);
        create_file(&client, &format!("admin:{password}\n"), 0o600)?;
        create_file(&self.users(), &user_line("admin", &hash, "pgoadmin"), 0o600)?;
        tracing::info!(file = %self.users().display(), "created the admin user");
        Ok(())
    }

    /// The CA the CLI trusts, and an env file with the three settings.
    pub fn write_client_files(&self, ca_cert: &Path, url: &str) -> Result<String, ServerError> {
        let client_ca = self.client_dir().join("ca.crt");
        std::fs::copy(ca_cert, &client_ca)
            .map_err(|e| start_err(format!("cannot copy the CA to {}: {e}", client_ca.display())))?;
        let _ = std::fs::set_permissions(&client_ca, std::fs::Permissions::from_mode(0o644));
        let exports = format!(
            "export PGO_APISERVER_URL={url}\nexport PGOUSER={}\nexport PGO_CA_CERT={}\n",
            self.client_dir().join("pgouser").display(),
            client_ca.display()
        );
        let env = self.client_dir().join("env");
        let tmp = env.with_extension("tmp");
        std::fs::write(&tmp, &exports)
            .and_then(|()| std::fs::rename(&tmp, &env))
            .map_err(|e| start_err(format!("cannot write {}: {e}", env.display())))?;
        Ok(exports)
    }
}
