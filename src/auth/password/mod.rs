//! Password hashing (argon2id PHC strings) and verification on a fixed pool of dedicated threads, so
//! memory-hard checks never stall the async workers, never run more than the configured number at
//! once, and never hold more memory than one argon2 work area per thread. The threads run at a lower
//! CPU priority than the request workers: a flood of password guesses slows other password checks,
//! not the requests that carry tokens or cached credentials.
//! A missing user is checked against a dummy hash of the same cost: same time, same answer.
//! Imported bcrypt hashes are verified too (the caller replaces them with argon2id); one whose cost
//! is above [`MAX_BCRYPT_COST`] is never computed: it is checked like a missing user and never
//! matches.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::config::PasswordSettings;
use crate::import::{bcrypt_cost_above_max, verify_bcrypt, BCRYPT_PREFIXES, MAX_BCRYPT_COST};

/// Longest password accepted; longer input is refused before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;

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
    /// [`MAX_BCRYPT_COST`] is treated as no hash: the dummy is checked and the answer is false.
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

    /// Whether `phc` is a bcrypt hash too costly to check; logged once per account.
    fn too_costly(&self, claim: &Claim<'_>, phc: &str) -> bool {
        let Some(cost) = bcrypt_cost_above_max(phc) else {
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
                "stored bcrypt hash has cost {cost}, above the maximum of {MAX_BCRYPT_COST}: \
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
        self.pool.queued.load(Ordering::Relaxed)
    }

    /// The verified-credential cache's hit and miss counts.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.cache.hits.load(Ordering::Relaxed),
            self.cache.misses.load(Ordering::Relaxed),
        )
    }
}

/// How much lower than the request workers the password threads run (Linux `nice`: 0 is normal, 19
/// the lowest). At +10 a busy password thread gets about a tenth of a CPU that a request worker
/// wants, and all of it when the workers are idle.
const PASSWORD_THREAD_NICE: i32 = 10;

/// A unit of work for a password thread; it reports its own result.
type Job = Box<dyn FnOnce() + Send>;

/// The password threads and their queue. Admission is counted here, so the queue itself can be an
/// unbounded channel: no more than `threads + max_waiting` jobs are ever in it or running.
struct Pool {
    jobs: mpsc::Sender<Job>,
    capacity: usize,
    admitted: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts `threads` (at least one) password threads; they stop when the pool is dropped.
    fn start(threads: usize, max_waiting: usize) -> Result<Pool, PasswordError> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name(format!("password-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = receiver.lock().expect("password queue lock").recv();
                        let Ok(job) = next else { return };
                        queued.fetch_sub(1, Ordering::SeqCst);
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a password check panicked; its request got 503");
                        }
                    }
                })
                .map_err(|e| PasswordError::Hash(format!("cannot start a password thread: {e}")))?;
        }
        Ok(Pool {
            jobs: sender,
            capacity: threads + max_waiting,
            admitted: Arc::new(AtomicUsize::new(0)),
            queued,
        })
    }

    /// Runs `work` on a password thread; refuses at once when every thread is busy and the queue is
    /// full. Work whose caller has gone away (the client hung up) by the time a thread is free is
    /// skipped; work that panics answers [`PasswordError::Unfinished`] and the thread goes on.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let admission = Admission::enter(&self.admitted, self.capacity)?;
        let (reply, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _admission = admission;
            if !reply.is_closed() {
                let _ = reply.send(span.in_scope(work));
            }
        });
        self.queued.fetch_add(1, Ordering::SeqCst);
        let sent = self.jobs.send(job);
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(PasswordError::PoolClosed);
        }
        result.await.map_err(|_| PasswordError::Unfinished)
    }
}

/// One admitted job; leaving (finished, skipped or never sent) frees its place.
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn enter(admitted: &Arc<AtomicUsize>, capacity: usize) -> Result<Admission, PasswordError> {
        admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < capacity).then_some(n + 1)
            })
            .map_err(|_| PasswordError::Overloaded)?;
        Ok(Admission(Arc::clone(admitted)))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lowers the calling thread's CPU priority by [`PASSWORD_THREAD_NICE`]. On Linux `setpriority` with
/// `who = 0` applies to the calling thread alone (elsewhere it would lower the whole process, so it
/// is not called). Failing to lower it only costs fairness.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours.
        let status = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, PASSWORD_THREAD_NICE) };
        if status != 0 {
            tracing::debug!("could not lower the password thread's priority");
        }
    }
}

/// Most entries the verified-credential cache keeps; past that, expired ones are dropped and, if
/// it is still full, everything.
const CACHE_MAX_ENTRIES: usize = 100_000;

/// HMAC-SHA256 of (realm, user, password) under the process's cache key.
type CacheKey = [u8; 32];

/// (realm, user, password) → the stored hash it matched, until a deadline. Keyed by an HMAC under a
/// per-process random key, so neither the password nor a plain hash of it is ever held.
struct VerifiedCache {
    key: hmac::Key,
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, (Arc<str>, Instant)>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VerifiedCache {
    fn new(ttl: Duration) -> Result<VerifiedCache, PasswordError> {
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

    fn key(&self, claim: &Claim<'_>, password: &SecretString) -> CacheKey {
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

    fn holds(&self, key: &CacheKey, phc: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let hit = self.peek(key, phc);
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Whether the entry for `key` is live and for `phc`, without counting.
    fn peek(&self, key: &CacheKey, phc: &str) -> bool {
        let entries = self.entries.lock().expect("credential cache lock");
        entries
            .get(key)
            .is_some_and(|(stored, until)| **stored == *phc && *until > Instant::now())
    }

    fn insert(&self, key: CacheKey, phc: &str) {
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

/// Checks a PHC string; an unparsable hash never matches.
fn verify_phc(phc: &str, password: &SecretString) -> bool {
    if BCRYPT_PREFIXES.iter().any(|prefix| phc.starts_with(prefix)) {
        return verify_bcrypt(phc, password.expose_secret());
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

    #[cfg(target_os = "linux")]
    #[test]
    fn password_threads_run_below_the_request_workers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verifier = Verifier::new(Hasher::new(&cheap()).unwrap(), &cheap(), 2).unwrap();
        let nice = runtime
            .block_on(verifier.pool.run(|| {
                // SAFETY: getpriority takes plain integers.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
            }))
            .unwrap();
        // SAFETY: as above.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (own + PASSWORD_THREAD_NICE).min(19));
    }

    /// A cost-31 hash would take days; it is answered at the cost of a missing user instead.
    #[tokio::test]
    async fn a_too_costly_bcrypt_hash_never_matches_and_costs_a_normal_check() {
        let hasher = Hasher::new(&cheap()).unwrap();
        let verifier = Verifier::new(hasher, &cheap(), 1).unwrap();
        let matching = bcrypt::hash("secret", 4).unwrap();
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
        let hash = bcrypt::hash("secret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        assert!(verify_phc(&hash, &SecretString::from("secret")));
        assert!(!verify_phc(&hash, &SecretString::from("wrong")));
    }
}
