//! Users (the pgouser file): `user:password-hash:role` per line. A 3.4
//! file holds plaintext passwords instead: accepted, said at load, and
//! converted in place by `postgres-operator user hash`.

use super::hash::is_hash;
use super::{AuthFileError, Roles};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct UserEntry {
    /// A salted hash, or, from a 3.4 file, the password itself.
    pub hash: String,
    pub role: String,
    pub plaintext: bool,
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
            if hash.is_empty() {
                return Err(format!("line {n}: the password of {user} is empty"));
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
                        plaintext: !is_hash(hash),
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

    /// The users whose password the file holds in plaintext (3.4's form).
    pub fn in_plaintext(&self) -> Vec<&str> {
        self.users
            .iter()
            .filter(|(_, e)| e.plaintext)
            .map(|(u, _)| u.as_str())
            .collect()
    }
}

/// `text` of a pgouser file with every plaintext password replaced by its
/// salted hash (`hash` makes one); comments and order are kept. Returns the
/// users converted.
pub fn hash_plaintext(
    text: &str,
    hash: impl Fn(&str) -> Result<String, String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let mut converted = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.trim().split(':').collect();
        match fields[..] {
            [user, secret, role]
                if !line.trim().starts_with('#') && !secret.is_empty() && !is_hash(secret) =>
            {
                out.push_str(&user_line(user, &hash(secret)?, role));
                converted.push(user.to_string());
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok((out, converted))
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

        // 3.4's file: plaintext, accepted and said so; converted in place.
        let plain = "# 3.4\nusername:password:pgoadmin\n";
        let users = Users::parse(plain, &roles).unwrap();
        assert_eq!(users.in_plaintext(), ["username"]);
        let (text, converted) =
            hash_plaintext(plain, |p| hash_password(p).map_err(|e| e.to_string())).unwrap();
        assert_eq!(converted, ["username"]);
        assert!(text.starts_with("# 3.4\n"), "{text}");
        let users = Users::parse(&text, &roles).unwrap();
        assert!(users.in_plaintext().is_empty());
        assert!(super::super::verify_password(
            "password",
            &users.get("username").unwrap().hash
        ));
        assert!(
            Users::parse("u::pgoadmin\n", &roles)
                .unwrap_err()
                .contains("empty")
        );

        let bad_role = format!("admin:{h}:pgoadmin\nx:{h}:nosuch\n");
        let err = Users::parse(&bad_role, &roles).unwrap_err();
        assert!(err.contains("line 2") && err.contains("nosuch"), "{err}");

        let garbage = format!("admin:{h}:pgoadmin\n\u{1}\u{2}garbage\n");
        assert!(Users::parse(&garbage, &roles).unwrap_err().contains("line 2"));
    }
}
