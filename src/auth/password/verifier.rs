//! argon2id hashing, and verification of stored hashes (argon2id, or imported bcrypt) off the
//! async workers, on the password threads: never more than the configured number at once, and
//! never more memory than one argon2 work area per thread. A missing user is checked against a
//! dummy hash of the same cost: same time, same answer. An imported bcrypt hash whose cost is above
//! [`MAX_COST`] is never computed: it is checked like a missing user and never matches.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::bcrypt::{self, MAX_COST};
use super::cache::VerifiedCache;
use super::pool::Pool;
use crate::config::PasswordSettings;

/// Hashing or verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password verification pool is shut down")]
    PoolClosed,
    #[error("a password check stopped without an answer")]
    Unfinished,
    #[error("too many password checks waiting")]
    Overloaded,
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

/// Verifies passwords off the async workers: at most `threads` at a time, at most `max_waiting`
/// queued behind them (more are refused at once with [`PasswordError::Overloaded`]), and not at all
/// for a (realm, user, password) verified within the cache lifetime against the same stored hash.
#[derive(Clone)]
pub struct Verifier {
    pool: Arc<Pool>,
    dummy_hash: Arc<str>,
    hasher: Hasher,
    cache: Arc<VerifiedCache>,
    /// The (realm, user) pairs whose too costly stored hash was already logged.
    costly_logged: Arc<Mutex<HashSet<(String, String)>>>,
}

/// Who a password is claimed for; with the password it keys the verified-credential cache.
pub struct Claim<'a> {
    pub realm: &'a str,
    pub username: &'a str,
}

impl Verifier {
    /// The dummy hash is made with the same parameters as real ones.
    pub fn new(
        hasher: Hasher,
        settings: &PasswordSettings,
        threads: usize,
    ) -> Result<Verifier, PasswordError> {
        let dummy = hasher.hash(&SecretString::from("portcullis dummy password"))?;
        Ok(Verifier {
            pool: Arc::new(Pool::start(threads, settings.max_queued_checks)?),
            dummy_hash: dummy.into(),
            hasher,
            cache: Arc::new(VerifiedCache::new(Duration::from_secs(
                settings.cache_ttl_secs,
            ))?),
            costly_logged: Arc::default(),
        })
    }

    /// True when `password` matches `phc`. With `phc = None` (no such user, no password set) the
    /// dummy hash is checked instead and the answer is false: the caller cannot tell the cases apart
    /// by time. A match is remembered for `claim`; the same claim against the same stored hash
    /// skips argon2 until the entry expires (a password change replaces the stored hash, so it
    /// invalidates the entry on every instance at once). A bcrypt hash of a cost above
    /// [`MAX_COST`] is treated as no hash: the dummy is checked and the answer is false.
    pub async fn verify(
        &self,
        claim: &Claim<'_>,
        phc: Option<String>,
        password: SecretString,
    ) -> Result<bool, PasswordError> {
        let phc = phc.filter(|phc| !self.too_costly(claim, phc));
        let cache_key = self.cache.key(claim, &password);
        if let Some(phc) = &phc {
            if self.cache.holds(&cache_key, phc) {
                return Ok(true);
            }
        }
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let checked = phc.clone();
        let matched = self
            .pool
            .run(move || verify_phc(&checked, &password))
            .await?;
        if known && matched {
            self.cache.insert(cache_key, &phc);
        }
        Ok(known && matched)
    }

    /// True when [`Verifier::verify`] would answer from the cache: `password` matched `phc` for
    /// `claim` within the cache lifetime. Not counted as a hit or a miss.
    pub fn is_cached(&self, claim: &Claim<'_>, password: &SecretString, phc: &str) -> bool {
        self.cache.peek(&self.cache.key(claim, password), phc)
    }

    /// Remembers that another backend (a directory) accepted `password` for `claim`: the same
    /// claim is then [`Verifier::is_cached`] against `marker` (the account's source, never a PHC
    /// string) until the entry expires.
    pub fn remember(&self, claim: &Claim<'_>, password: &SecretString, marker: &str) {
        self.cache.insert(self.cache.key(claim, password), marker);
    }

    /// Whether the cache holds `password` for `claim` against `marker`, counted as a hit or miss
    /// as [`Verifier::verify`] counts its lookups.
    pub fn recall(&self, claim: &Claim<'_>, password: &SecretString, marker: &str) -> bool {
        self.cache.holds(&self.cache.key(claim, password), marker)
    }

    /// Whether `phc` is a bcrypt hash too costly to check; logged once per account.
    fn too_costly(&self, claim: &Claim<'_>, phc: &str) -> bool {
        let Some(cost) = bcrypt::cost_above_max(phc) else {
            return false;
        };
        let account = (claim.realm.to_owned(), claim.username.to_owned());
        let first = self
            .costly_logged
            .lock()
            .expect("costly hash log lock")
            .insert(account);
        if first {
            tracing::warn!(
                realm = claim.realm,
                user = claim.username,
                cost,
                "stored bcrypt hash has cost {cost}, above the maximum of {MAX_COST}: \
                 it never matches; set a new password with `portcullis user passwd`"
            );
        }
        true
    }

    /// A new argon2id hash, computed on the pool (to replace an imported bcrypt hash).
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let hasher = self.hasher.clone();
        self.pool.run(move || hasher.hash(&password)).await?
    }

    /// Password checks waiting for a thread now.
    pub fn queue_depth(&self) -> usize {
        self.pool.queued()
    }

    /// The verified-credential cache's hit and miss counts.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }
}

/// Checks a PHC string; an unparsable hash never matches.
fn verify_phc(phc: &str, password: &SecretString) -> bool {
    if bcrypt::is_bcrypt(phc) {
        return bcrypt::verify(phc, password.expose_secret());
    }
    let verdict = PasswordHash::new(phc)
        .ok()
        .and_then(|parsed| verify_argon2(&parsed, password.expose_secret().as_bytes()));
    verdict.unwrap_or_else(|| {
        tracing::warn!("stored password hash is not a valid argon2 PHC string");
        false
    })
}

thread_local! {
    /// Each blocking thread keeps one argon2 work area and reuses it: memory stays at (threads that
    /// ever checked a password) × (largest memory cost), instead of growing with freed 19 MiB
    /// buffers that the allocator keeps in per-thread arenas.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Recomputes an argon2 hash with the parameters and salt of `parsed` in this thread's work area
/// and compares in constant time; `None` when the PHC string is not a usable argon2 hash.
fn verify_argon2(parsed: &PasswordHash<'_>, password: &[u8]) -> Option<bool> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let params = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; Salt::MAX_LENGTH];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut computed = vec![0u8; expected.len()];
    let block_count = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    WORK_AREA.with_borrow_mut(|blocks| {
        if blocks.len() < block_count {
            blocks.resize(block_count, Block::default());
        }
        argon2
            .hash_password_into_with_memory(password, salt, &mut computed, &mut blocks[..])
            .ok()
    })?;
    Some(computed.ct_eq(expected.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    fn cheap() -> PasswordSettings {
        PasswordSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_checks: 1,
            ..PasswordSettings::default()
        }
    }

    const ALICE: Claim<'static> = Claim {
        realm: "default",
        username: "alice",
    };

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
        let verifier = Verifier::new(hasher.clone(), &cheap(), 1).unwrap();
        let phc = hasher.hash(&SecretString::from("correct horse")).unwrap();
        let verify =
            |phc: Option<String>, password: &str| verifier.verify(&ALICE, phc, password.into());
        assert!(verify(Some(phc.clone()), "correct horse").await.unwrap());
        assert!(!verify(Some(phc), "wrong").await.unwrap());
        assert!(!verify(None, "portcullis dummy password").await.unwrap());
        assert!(!verify(Some("garbage".into()), "x").await.unwrap());
    }

    #[tokio::test]
    async fn the_cache_skips_argon2_until_the_stored_hash_changes() {
        // Spaces and `!` never occur in a PHC string, so finding this in the cache means it holds
        // the password (a two-letter password turned up by chance in a random salt's base64).
        const PASSWORD: &str = "pass word!";
        let hasher = Hasher::new(&cheap()).unwrap();
        let verifier = Verifier::new(hasher.clone(), &cheap(), 1).unwrap();
        let old = hasher.hash(&SecretString::from(PASSWORD)).unwrap();
        assert!(verifier
            .verify(&ALICE, Some(old.clone()), PASSWORD.into())
            .await
            .unwrap());
        assert!(verifier
            .verify(&ALICE, Some(old.clone()), PASSWORD.into())
            .await
            .unwrap());
        assert_eq!(verifier.cache_stats(), (1, 1), "the second check was a hit");
        assert!(!verifier
            .verify(&ALICE, Some(old.clone()), "other".into())
            .await
            .unwrap());
        let bob = Claim {
            realm: "default",
            username: "bob",
        };
        assert!(verifier
            .verify(&bob, Some(old.clone()), PASSWORD.into())
            .await
            .unwrap());
        let new = hasher.hash(&SecretString::from("new")).unwrap();
        assert!(
            !verifier
                .verify(&ALICE, Some(new), PASSWORD.into())
                .await
                .unwrap(),
            "a new hash is not the cached one"
        );
        let entries = verifier.cache.entries.lock().unwrap();
        assert!(entries.values().all(|(phc, _)| !phc.contains(PASSWORD)));
    }

    /// Occupies a password thread until the returned sender is dropped.
    async fn occupy(verifier: &Verifier) -> std::sync::mpsc::Sender<()> {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let pool = Arc::clone(&verifier.pool);
        tokio::spawn(async move {
            pool.run(move || {
                let _ = started.send(());
                let _ = hold.recv();
            })
            .await
        });
        running.await.unwrap();
        release
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let settings = PasswordSettings {
            max_queued_checks: 1,
            ..cheap()
        };
        let verifier = Verifier::new(Hasher::new(&settings).unwrap(), &settings, 1).unwrap();
        let release = occupy(&verifier).await;
        let waiting = tokio::spawn({
            let verifier = verifier.clone();
            async move { verifier.verify(&ALICE, None, "x".into()).await }
        });
        while verifier.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = verifier.verify(&ALICE, None, "x".into()).await;
        assert!(matches!(refused, Err(PasswordError::Overloaded)));
        assert_eq!(verifier.queue_depth(), 1, "the queued check still waits");
        drop(release);
        assert!(!waiting.await.unwrap().unwrap(), "and then runs");
        assert_eq!(verifier.queue_depth(), 0);
        assert!(verifier.verify(&ALICE, None, "x".into()).await.is_ok());
    }

    #[tokio::test]
    async fn a_check_that_panics_fails_alone() {
        let verifier = Verifier::new(Hasher::new(&cheap()).unwrap(), &cheap(), 1).unwrap();
        let failed = verifier.pool.run(|| panic!("a broken check")).await;
        assert!(matches!(failed, Err(PasswordError::Unfinished)));
        assert!(
            verifier.verify(&ALICE, None, "x".into()).await.is_ok(),
            "the only thread still serves"
        );
    }

    #[tokio::test]
    async fn work_for_a_caller_that_left_is_skipped() {
        let verifier = Verifier::new(Hasher::new(&cheap()).unwrap(), &cheap(), 1).unwrap();
        let release = occupy(&verifier).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let abandoned = tokio::spawn({
            let pool = Arc::clone(&verifier.pool);
            let ran = Arc::clone(&ran);
            async move { pool.run(move || ran.fetch_add(1, Ordering::SeqCst)).await }
        });
        while verifier.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        drop(release);
        assert!(verifier.verify(&ALICE, None, "x".into()).await.is_ok());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    /// A cost-31 hash would take days; it is answered at the cost of a missing user instead.
    #[tokio::test]
    async fn a_too_costly_bcrypt_hash_never_matches_and_costs_a_normal_check() {
        let hasher = Hasher::new(&cheap()).unwrap();
        let verifier = Verifier::new(hasher, &cheap(), 1).unwrap();
        let matching = ::bcrypt::hash("secret", 4).unwrap();
        let costly = format!("$2b$31{}", &matching[6..]);
        for _ in 0..2 {
            assert!(!verifier
                .verify(&ALICE, Some(costly.clone()), "secret".into())
                .await
                .unwrap());
        }
        assert!(verifier
            .verify(&ALICE, Some(matching), "secret".into())
            .await
            .unwrap());
    }

    #[test]
    fn imported_bcrypt_hashes_verify() {
        let hash = ::bcrypt::hash("secret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        assert!(verify_phc(&hash, &SecretString::from("secret")));
        assert!(!verify_phc(&hash, &SecretString::from("wrong")));
    }
}
