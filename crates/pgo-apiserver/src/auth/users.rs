//! Users (the pgouser file): `user:password-hash:role` per line.

use super::hash::is_hash;
use super::{AuthFileError, Roles};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct UserEntry {
    pub hash: String,
    pub role: String,
}

#[derive(Clone, Debug, Default)]
pub struct Users {
    users: BTreeMap<String, UserEntry>,
}

/// One line of the pgouser file.
pub fn user_line(user: &str, hash: &str, role: &str) -> String {
    format!("{user}:{hash}:{role}\n")
}

impl Users {
    pub fn read(path: &Path, roles: &Roles) -> Result<Users, AuthFileError> {
        let err = |reason: String| AuthFileError {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Users::parse(&text, roles).map_err(err)
    }

    pub fn parse(text: &str, roles: &Roles) -> Result<Users, String> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let fields: Vec<&str> = line.split(':').collect();
            let [user, hash, role] = fields[..] else {
                return Err(format!("line {n}: expected user:password-hash:role"));
            };
            if user.is_empty() {
                return Err(format!("line {n}: the user name is empty"));
            }
            if !is_hash(hash) {
                return Err(format!(
                    "line {n}: the password of {user} is not a salted hash (add users with 'postgres-operator user add')"
                ));
            }
            if !roles.has(role) {
                return Err(format!(
                    "line {n}: role {role:?} of {user} is not in the pgorole file"
                ));
            }
            if users
                .insert(
                    user.to_string(),
                    UserEntry {
                        hash: hash.to_string(),
                        role: role.to_string(),
                    },
                )
                .is_some()
            {
                return Err(format!("line {n}: user {user} is listed twice"));
            }
        }
        if users.is_empty() {
            return Err("no users".into());
        }
        Ok(Users { users })
    }

    pub fn get(&self, user: &str) -> Option<&UserEntry> {
        self.users.get(user)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{default_roles_file, hash_password};
    use super::*;

    #[test]
    fn parses_and_names_bad_lines() {
        let roles = Roles::parse(&default_roles_file()).unwrap();
        let h = hash_password("pw").unwrap();
        let ok = format!("# users\nadmin:{h}:pgoadmin\nreader:{h}:pgoreader\n");
        let users = Users::parse(&ok, &roles).unwrap();
        assert_eq!(users.get("reader").unwrap().role, "pgoreader");

        let plain = "admin:password:pgoadmin\n";
        let err = Users::parse(plain, &roles).unwrap_err();
        assert!(err.contains("line 1") && err.contains("salted hash"), "{err}");

        let bad_role = format!("admin:{h}:pgoadmin\nx:{h}:nosuch\n");
        let err = Users::parse(&bad_role, &roles).unwrap_err();
        assert!(err.contains("line 2") && err.contains("nosuch"), "{err}");

        let garbage = format!("admin:{h}:pgoadmin\n\u{1}\u{2}garbage\n");
        assert!(Users::parse(&garbage, &roles).unwrap_err().contains("line 2"));
    }
}
