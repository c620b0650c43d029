//! `postgres-operator user add`: a new apiserver user, its password hashed;
//! `user hash`: a 3.4 pgouser file's plaintext passwords hashed in place.

use crate::ServerError;
use crate::home::Home;
use pgo_apiserver::auth::{Roles, hash_password, hash_plaintext, user_line};
use std::io::{BufRead, Write};
use std::path::Path;

pub fn add(home: &Path, name: &str, role: &str, password_stdin: bool) -> Result<(), ServerError> {
    let err = |s: String| ServerError::Start(s);
    // The pgouser file skips lines starting with '#', so such a user could
    // never log in; ':' separates its fields.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@');
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(err(format!(
            "invalid user name {name:?}: use 1 to 64 letters, digits, '_', '-', '.' or '@'"
        )));
    }
    let home = Home::open(home)?;
    home.ensure_auth()?;
    let roles = Roles::read(&home.roles()).map_err(|e| err(e.to_string()))?;
    if !roles.has(role) {
        return Err(err(format!("role {role:?} is not in {}", home.roles().display())));
    }
    let users_text = std::fs::read_to_string(home.users())
        .map_err(|e| err(format!("cannot read {}: {e}", home.users().display())))?;
    if users_text.lines().any(|l| l.split(':').next() == Some(name)) {
        return Err(err(format!(
            "user {name} already exists in {}",
            home.users().display()
        )));
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| err(format!("cannot read the password: {e}")))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err(err("the password read from standard input is empty".into()));
        }
        p
    } else {
        pgo_platform::password(24).map_err(|_| err("the system random source failed".into()))?
    };
    let hash = hash_password(&password).map_err(|_| err("the system random source failed".into()))?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.users())
        .map_err(|e| err(format!("cannot open {}: {e}", home.users().display())))?;
    f.write_all(user_line(name, &hash, role).as_bytes())
        .map_err(|e| err(format!("cannot write {}: {e}", home.users().display())))?;
    if !password_stdin {
        println!("{name}:{password}");
    }
    Ok(())
}

/// Hashes the plaintext passwords of `<home>/pgouser` in place: written
/// aside and renamed, so the server never reads half a file.
pub fn hash(home: &Path) -> Result<(), ServerError> {
    let err = |s: String| ServerError::Start(s);
    let path = Home::open(home)?.users();
    let text =
        std::fs::read_to_string(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let (hashed, converted) = hash_plaintext(&text, |p| {
        hash_password(p).map_err(|_| "the system random source failed".to_string())
    })
    .map_err(err)?;
    if converted.is_empty() {
        println!("{}: no plaintext password", path.display());
        return Ok(());
    }
    let scratch = path.with_extension("new");
    let mode = std::fs::metadata(&path).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    std::fs::write(&scratch, hashed).map_err(|e| err(format!("cannot write {}: {e}", scratch.display())))?;
    if let Ok(mode) = mode {
        let perms = std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777);
        std::fs::set_permissions(&scratch, perms)
            .map_err(|e| err(format!("cannot keep the mode of {}: {e}", path.display())))?;
    }
    std::fs::rename(&scratch, &path).map_err(|e| err(format!("cannot replace {}: {e}", path.display())))?;
    println!(
        "{}: hashed the passwords of {}",
        path.display(),
        converted.join(", ")
    );
    Ok(())
}
