use ring::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A random password of `len` characters from an alphabet that needs no
/// quoting in a shell, a connection string or SQL.
pub fn password(len: usize) -> Result<String, ring::error::Unspecified> {
    random(ALPHABET, len)
}

/// A random suffix for a name (lowercase letters and digits).
pub fn suffix(len: usize) -> Result<String, ring::error::Unspecified> {
    random(LOWER, len)
}

fn random(alphabet: &[u8], len: usize) -> Result<String, ring::error::Unspecified> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 64];
        rng.fill(&mut buf)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.len();
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_long_distinct_and_plain() {
        let a = super::password(24).unwrap();
        let b = super::password(24).unwrap();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        let s = super::suffix(4).unwrap();
        assert!(s.len() == 4 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
