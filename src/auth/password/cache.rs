//! The verified-credential cache: a (realm, user, password) that matched a stored hash skips argon2
//! while the same hash is stored, until the entry expires. Keyed by an HMAC under a per-process
//! random key, so neither a password nor a plain hash of one is ever held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use secrecy::{ExposeSecret, SecretString};

use super::{Claim, PasswordError};

/// Most entries the verified-credential cache keeps; past that, expired ones are dropped and, if
/// it is still full, everything.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// HMAC-SHA256 of (realm, user, password) under the process's cache key.
type CacheKey = [u8; 32];

/// (realm, user, password) → the stored hash it matched, until a deadline. Keyed by an HMAC under a
/// per-process random key, so neither the password nor a plain hash of it is ever held.
pub(super) struct VerifiedCache {
    key: hmac::Key,
    ttl: Duration,
    pub(super) entries: Mutex<HashMap<CacheKey, (Arc<str>, Instant)>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VerifiedCache {
    /// The hit and miss counts so far.
    pub(super) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    pub(super) fn new(ttl: Duration) -> Result<VerifiedCache, PasswordError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| PasswordError::Hash("the system random source failed".into()))?;
        Ok(VerifiedCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub(super) fn key(&self, claim: &Claim<'_>, password: &SecretString) -> CacheKey {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [
            claim.realm.as_bytes(),
            claim.username.as_bytes(),
            password.expose_secret().as_bytes(),
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(context.sign().as_ref());
        key
    }

    pub(super) fn holds(&self, key: &CacheKey, phc: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let hit = self.peek(key, phc);
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Whether the entry for `key` is live and for `phc`, without counting.
    pub(super) fn peek(&self, key: &CacheKey, phc: &str) -> bool {
        let entries = self.entries.lock().expect("credential cache lock");
        entries
            .get(key)
            .is_some_and(|(stored, until)| **stored == *phc && *until > Instant::now())
    }

    pub(super) fn insert(&self, key: CacheKey, phc: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("credential cache lock");
        if entries.len() >= CACHE_MAX_ENTRIES {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (phc.into(), now + self.ttl));
    }
}
