//! Password hashing (argon2id PHC strings) and verification on a bounded pool of blocking threads, so
//! memory-hard checks never stall the async workers nor run more than the configured number at once.
//! A missing user is checked against a dummy hash of the same cost: same time, same answer.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::PasswordSettings;

/// Longest password accepted; longer input is refused before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Hashing or verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password verification pool is shut down")]
    PoolClosed,
}

/// argon2id with the configured parameters.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
}

impl Hasher {
    /// Builds the hasher; the parameters were validated when the settings were loaded.
    pub fn new(settings: &PasswordSettings) -> Result<Hasher, PasswordError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(Hasher { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string for `password` with a fresh salt.
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

/// Verifies passwords off the async workers, at most `slots` at a time.
#[derive(Clone)]
pub struct Verifier {
    slots: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl Verifier {
    /// `slots` concurrent checks; the dummy hash is made with the same parameters as real ones.
    pub fn new(hasher: &Hasher, slots: usize) -> Result<Verifier, PasswordError> {
        let dummy = hasher.hash(&SecretString::from("portcullis dummy password"))?;
        Ok(Verifier {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// True when `password` matches `phc`. With `phc = None` (no such user, no password set) the
    /// dummy hash is checked instead and the answer is false: the caller cannot tell the cases apart
    /// by time.
    pub async fn verify(
        &self,
        phc: Option<String>,
        password: SecretString,
    ) -> Result<bool, PasswordError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| PasswordError::PoolClosed)?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let span = tracing::Span::current();
        let matched =
            tokio::task::spawn_blocking(move || span.in_scope(|| verify_phc(&phc, &password)))
                .await
                .map_err(|_| PasswordError::PoolClosed)?;
        Ok(known && matched)
    }
}

/// Checks a PHC string; an unparsable hash never matches.
fn verify_phc(phc: &str, password: &SecretString) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::warn!("stored password hash is not a valid PHC string");
        return false;
    };
    Argon2::default()
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordSettings {
        PasswordSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_checks: 1,
        }
    }

    #[test]
    fn hashes_are_argon2id_phc_with_configured_parameters() {
        let hasher = Hasher::new(&cheap()).unwrap();
        let phc = hasher.hash(&SecretString::from("pw")).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert_ne!(
            phc,
            hasher.hash(&SecretString::from("pw")).unwrap(),
            "salted"
        );
        let default = Hasher::new(&PasswordSettings::default()).unwrap();
        assert_eq!(default.params.m_cost(), 19_456);
    }

    #[tokio::test]
    async fn verifies_right_wrong_and_unknown() {
        let hasher = Hasher::new(&cheap()).unwrap();
        let verifier = Verifier::new(&hasher, 1).unwrap();
        let phc = hasher.hash(&SecretString::from("correct horse")).unwrap();
        assert!(verifier
            .verify(Some(phc.clone()), "correct horse".into())
            .await
            .unwrap());
        assert!(!verifier.verify(Some(phc), "wrong".into()).await.unwrap());
        assert!(!verifier
            .verify(None, "portcullis dummy password".into())
            .await
            .unwrap());
        assert!(!verifier
            .verify(Some("garbage".into()), "x".into())
            .await
            .unwrap());
    }
}
