//! Kubernetes: what the first start of the apiserver makes and every later
//! one must find again — its CA, its users and roles, and the admin's
//! password — kept in Secret `pgo-apiserver`. The operator's home is an
//! emptyDir: without this, every restart of its pod minted a new CA (every
//! client's copy stopped working) and a new admin password.

use crate::ServerError;
use crate::home::Home;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

pub const SECRET: &str = "pgo-apiserver";

/// The Secret's keys and where each lives in the home, with its mode.
fn files(home: &Home) -> [(&'static str, PathBuf, u32); 5] {
    [
        ("ca.crt", home.tls_dir().join("ca.crt"), 0o644),
        ("ca.key", home.tls_dir().join("ca.key"), 0o600),
        ("pgouser", home.users(), 0o600),
        ("pgorole", home.roles(), 0o600),
        ("client-pgouser", home.client_dir().join("pgouser"), 0o600),
    ]
}

fn err(what: String) -> ServerError {
    ServerError::Start(what)
}

pub struct Keeper {
    api: Api<Secret>,
}

/// How [`Keeper::keep`] went.
#[derive(Debug, PartialEq)]
pub enum Kept {
    /// This start made them and keeps them now.
    Made,
    /// They were kept already, and the home holds them.
    Found,
    /// The API server could not be reached: kept at a later start.
    Unreachable,
    /// Another operator kept its own first: the home now holds those, and
    /// the server certificate must be made again from that CA.
    Replaced,
}

impl Keeper {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Keeper {
            api: Api::namespaced(client, namespace),
        }
    }

    async fn get(&self) -> Result<Option<Secret>, ServerError> {
        self.api
            .get_opt(SECRET)
            .await
            .map_err(|e| err(format!("cannot read Secret {SECRET}: {e}")))
    }

    /// Before anything is made: what was kept goes into the home. `None`
    /// when the API server cannot be reached: the server still starts (and
    /// says so on every request), with what its home has, kept next time.
    pub async fn restore(&self, home: &Home) -> Result<Option<bool>, ServerError> {
        match self.api.get_opt(SECRET).await {
            Ok(Some(secret)) => {
                write_home(home, &secret)?;
                Ok(Some(true))
            }
            Ok(None) => Ok(Some(false)),
            Err(kube::Error::Api(s)) => Err(err(format!("cannot read Secret {SECRET}: {s}"))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the API server to read Secret {SECRET}; the CA and users in the home are used, and kept at the next start");
                Ok(None)
            }
        }
    }

    /// After the home has everything: it is kept, unless it was already
    /// (`restored`) or the API server could not be reached (`None`).
    pub async fn keep(&self, home: &Home, restored: Option<bool>) -> Result<Kept, ServerError> {
        match restored {
            Some(true) => return Ok(Kept::Found),
            None => return Ok(Kept::Unreachable),
            Some(false) => {}
        }
        let mut data = BTreeMap::new();
        for (key, path, _) in files(home) {
            let bytes =
                std::fs::read(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
            data.insert(key.to_string(), ByteString(bytes));
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(SECRET.into()),
                labels: Some(BTreeMap::from([(
                    pgo_api::labels::MANAGED_BY.to_string(),
                    pgo_api::labels::MANAGER.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(secret = SECRET, "kept the apiserver's CA, users and roles");
                Ok(Kept::Made)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let theirs = self
                    .get()
                    .await?
                    .ok_or_else(|| err(format!("Secret {SECRET} exists and does not")))?;
                write_home(home, &theirs)?;
                Ok(Kept::Replaced)
            }
            Err(e) => Err(err(format!("cannot keep Secret {SECRET}: {e}"))),
        }
    }
}

fn write_home(home: &Home, secret: &Secret) -> Result<(), ServerError> {
    let data = secret.data.clone().unwrap_or_default();
    // All there, or nothing written: half a CA is worse than none.
    for (key, _, _) in files(home) {
        if !data.contains_key(key) {
            return Err(err(format!(
                "Secret {SECRET} has no key {key}: delete it to start afresh (a new CA and admin password)"
            )));
        }
    }
    for (key, path, mode) in files(home) {
        let Some(bytes) = data.get(key) else {
            continue;
        };
        // Replaced whole: a rename, so no reader sees half a file.
        let tmp = path.with_extension("kept");
        std::fs::write(&tmp, &bytes.0)
            .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}
