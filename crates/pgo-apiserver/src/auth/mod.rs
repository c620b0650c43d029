//! Who is asking, and may they. Users come from the pgouser file
//! (`user:password-hash:role` per line), roles from the pgorole file
//! (`role: Permission, …`). Both are read again when they change on disk.

mod hash;
mod roles;
mod throttle;
mod users;

pub use hash::{hash_password, verify_password};
pub use roles::{Permission, Roles, default_roles_file};
pub use throttle::Throttle;
pub use users::{Users, hash_plaintext, user_line};

use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct AuthFileError {
    pub path: String,
    pub reason: String,
}

/// The users and roles, reloaded when either file's mtime changes.
pub struct Auth {
    users_path: PathBuf,
    roles_path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    stamp: (Option<SystemTime>, Option<SystemTime>),
    users: Users,
    roles: Roles,
    /// Credentials already checked against the current hash, so PBKDF2's
    /// deliberate slowness is paid once per user, not per request.
    verified: HashMap<String, [u8; 32]>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Auth {
    /// Reads both files; an unreadable or corrupt one is an error naming it.
    pub fn load(users_path: &Path, roles_path: &Path) -> Result<Self, AuthFileError> {
        let roles = Roles::read(roles_path)?;
        let users = Users::read(users_path, &roles)?;
        warn_of_plaintext(users_path, &users);
        Ok(Auth {
            users_path: users_path.to_path_buf(),
            roles_path: roles_path.to_path_buf(),
            state: Mutex::new(Loaded {
                stamp: (mtime(users_path), mtime(roles_path)),
                users,
                roles,
                verified: HashMap::new(),
            }),
        })
    }

    fn refresh(&self, loaded: &mut Loaded) {
        let stamp = (mtime(&self.users_path), mtime(&self.roles_path));
        if stamp == loaded.stamp {
            return;
        }
        let fresh =
            Roles::read(&self.roles_path).and_then(|r| Users::read(&self.users_path, &r).map(|u| (u, r)));
        match fresh {
            Ok((users, roles)) => {
                warn_of_plaintext(&self.users_path, &users);
                loaded.users = users;
                loaded.roles = roles;
                loaded.verified.clear();
                tracing::info!("reloaded the pgouser and pgorole files");
            }
            // Keep serving with what was good; say what is wrong.
            Err(e) => tracing::error!(error = %e, "not reloading the auth files"),
        }
        loaded.stamp = stamp;
    }

    /// What is known of `user` without hashing: a caller whose credentials
    /// were verified before, or what verifying them needs. Cheap: the lock
    /// is never held across PBKDF2.
    fn lookup(&self, user: &str, key: &[u8; 32]) -> Lookup {
        let Ok(mut loaded) = self.state.lock() else {
            return Lookup::Unknown;
        };
        self.refresh(&mut loaded);
        let Some(entry) = loaded.users.get(user).cloned() else {
            return Lookup::Unknown;
        };
        let permissions = loaded.roles.permissions(&entry.role).cloned().unwrap_or_default();
        let caller = Caller {
            user: user.to_string(),
            role: entry.role,
            permissions,
        };
        if loaded.verified.get(user) == Some(key) {
            Lookup::Verified(caller)
        } else if entry.plaintext {
            Lookup::Compare(caller, entry.hash)
        } else {
            Lookup::Verify(caller, entry.hash)
        }
    }

    fn remember(&self, user: &str, key: [u8; 32]) {
        if let Ok(mut loaded) = self.state.lock() {
            loaded.verified.insert(user.to_string(), key);
        }
    }

    /// The caller, if `user` and `password` are right. An unknown user costs
    /// the same hashing as a known one, so timing does not tell users apart.
    pub fn authenticate(&self, user: &str, password: &str) -> Option<Caller> {
        let key = digest(user, password);
        match self.lookup(user, &key) {
            Lookup::Verified(caller) => Some(caller),
            Lookup::Verify(caller, hash) => verify_password(password, &hash).then(|| {
                self.remember(user, key);
                caller
            }),
            // A 3.4 file's plaintext password: compared by digest, so the
            // time taken says nothing of it, after the same hashing cost.
            Lookup::Compare(caller, stored) => {
                let _ = verify_password(password, dummy_hash());
                (digest(user, password) == digest(user, &stored)).then(|| {
                    self.remember(user, key);
                    caller
                })
            }
            Lookup::Unknown => {
                let _ = verify_password(password, dummy_hash());
                None
            }
        }
    }

    /// True when `user:password` was verified before: no hashing needed.
    pub fn known(&self, user: &str, password: &str) -> Option<Caller> {
        match self.lookup(user, &digest(user, password)) {
            Lookup::Verified(caller) => Some(caller),
            _ => None,
        }
    }
}

enum Lookup {
    Verified(Caller),
    Verify(Caller, String),
    Compare(Caller, String),
    Unknown,
}

/// Said at every load: a pgouser file from 3.4 holds passwords in
/// plaintext, which works, and how to hash them in place.
fn warn_of_plaintext(path: &Path, users: &Users) {
    let plain = users.in_plaintext();
    if !plain.is_empty() {
        tracing::warn!(
            file = %path.display(),
            users = %plain.join(", "),
            "the pgouser file holds plaintext passwords (3.4's form); hash them in place with 'postgres-operator user hash --home <home>'"
        );
    }
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{user}\0{password}").as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// A hash of nothing anyone knows, made once, with the same cost as a real one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no user has this password").unwrap_or_default())
}

/// An authenticated user and what their role allows.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub role: String,
    permissions: Vec<Permission>,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            tracing::warn!(target: "audit", user = %self.user, permission = permission.name(), "denied");
            Err(ApiError::Forbidden {
                user: self.user.clone(),
                role: self.role.clone(),
                permission: permission.name(),
            })
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// One line per mutation: who, with which permission, on what.
    pub fn audit(&self, permission: Permission, object: &str) {
        tracing::info!(target: "audit", user = %self.user, permission = permission.name(), object, "allowed");
    }
}

fn basic(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (user, password) = basic(parts).ok_or(ApiError::Unauthenticated)?;
        // Verified before: no hashing, no throttle, so a flood of wrong
        // passwords never slows or locks out a user who is logged in.
        if let Some(caller) = state.auth.known(&user, &password) {
            return Ok(caller);
        }
        let peer = parts
            .extensions
            .get::<Peer>()
            .map(|p| p.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if let Some(wait) = state.throttle.blocked(peer) {
            return Err(ApiError::Throttled(wait.as_secs().max(1)));
        }
        // PBKDF2 is slow on purpose: off the async workers, and only a few at
        // a time, so failed logins cannot take every core.
        let _permit = state
            .hashing
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let auth = state.clone();
        let name = user.clone();
        let caller = tokio::task::spawn_blocking(move || auth.auth.authenticate(&name, &password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        match caller {
            Some(c) => {
                state.throttle.succeeded(peer);
                Ok(c)
            }
            None => {
                let failures = state.throttle.failed(peer);
                tracing::warn!(target: "audit", user = %user, %peer, failures, "login failed");
                Err(ApiError::Unauthenticated)
            }
        }
    }
}

/// The address a request came from, put on each request by the server.
pub use pgo_instance::https::Peer;
