//! Salted password hashes: PBKDF2-HMAC-SHA256, stored as
//! `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64, no ':' so it fits the
//! pgouser line format).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use std::num::NonZeroU32;

const SCHEME: &str = "pbkdf2-sha256";
const ITERATIONS: u32 = 100_000;

pub fn hash_password(password: &str) -> Result<String, ring::error::Unspecified> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt)?;
    let iterations = NonZeroU32::new(ITERATIONS).ok_or(ring::error::Unspecified)?;
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{SCHEME}${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// True when `hash` is well formed and `password` matches it.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let mut parts = hash.split('$');
    let (Some(SCHEME), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(expected)) = (
        iter.parse().ok().and_then(NonZeroU32::new),
        B64.decode(salt),
        B64.decode(expected),
    ) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &expected,
    )
    .is_ok()
}

pub fn is_hash(s: &str) -> bool {
    s.starts_with(&format!("{SCHEME}$")) && s.split('$').count() == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("s3cret").unwrap();
        assert!(is_hash(&h));
        assert!(!h.contains("s3cret"));
        assert!(!h.contains(':'));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret!", &h));
        assert!(!verify_password("s3cret", "s3cret"));
        assert_ne!(h, hash_password("s3cret").unwrap(), "salted");
    }
}
