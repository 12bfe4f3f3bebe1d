//! Secrets Portcullis mints (refresh and access tokens): 256 random bits behind a recognisable
//! prefix, shown once, stored only as a SHA-256 digest, found again by that digest.

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// Prefix of refresh tokens (what `docker login` stores as `identitytoken`).
pub const REFRESH_TOKEN_PREFIX: &str = "pcrt_";
/// Prefix of personal and robot access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "pcat_";
/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Random bytes in a public token id.
const ID_BYTES: usize = 8;

/// The random source failed (it does not on a working system).
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomError;

/// A freshly minted secret: the text to show once, its digest to store, and its public id.
pub struct Minted {
    pub secret: SecretString,
    pub sha256: String,
    pub id: String,
}

/// Mints a secret with `prefix`.
pub fn mint(prefix: &str) -> Result<Minted, RandomError> {
    let rng = SystemRandom::new();
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill(&mut bytes).map_err(|_| RandomError)?;
    let secret = SecretString::from(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)));
    let mut id = [0u8; ID_BYTES];
    rng.fill(&mut id).map_err(|_| RandomError)?;
    Ok(Minted {
        sha256: sha256_hex(&secret),
        secret,
        id: data_encoding::HEXLOWER.encode(&id),
    })
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn sha256_hex(secret: &SecretString) -> String {
    data_encoding::HEXLOWER.encode(digest(&SHA256, secret.expose_secret().as_bytes()).as_ref())
}

/// True when `text` has the shape of a secret we mint with `prefix` (checked before any lookup).
pub fn looks_like(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == (SECRET_BYTES * 4).div_ceil(3)
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_are_prefixed_random_and_hashed() {
        let a = mint(REFRESH_TOKEN_PREFIX).unwrap();
        let b = mint(REFRESH_TOKEN_PREFIX).unwrap();
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert_ne!(a.id, b.id);
        assert!(looks_like(a.secret.expose_secret(), REFRESH_TOKEN_PREFIX));
        assert!(!looks_like(a.secret.expose_secret(), ACCESS_TOKEN_PREFIX));
        assert_eq!(a.sha256, sha256_hex(&a.secret));
        assert_eq!(a.sha256.len(), 64);
        assert!(!a.sha256.contains(a.secret.expose_secret()));
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like("pcrt_short", REFRESH_TOKEN_PREFIX));
        assert!(!looks_like("password", REFRESH_TOKEN_PREFIX));
        let bad = format!("{REFRESH_TOKEN_PREFIX}{}", "*".repeat(43));
        assert!(!looks_like(&bad, REFRESH_TOKEN_PREFIX));
        let good = format!("{REFRESH_TOKEN_PREFIX}{}", "a".repeat(43));
        assert!(looks_like(&good, REFRESH_TOKEN_PREFIX));
    }
}
