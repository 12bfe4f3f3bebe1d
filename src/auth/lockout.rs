//! The lockout of failed passwords: who is counted (an account or a client address, the
//! [`lockout_subject`] and [`address_subject`]), how long a lock lasts
//! ([`LockoutSettings::lock_deadline`]), the failure records as of the `locks` change counter
//! ([`FailureCache`]), and this process's in-flight gate: how many password checks run at once per
//! subject (a burst cannot run more checks than the threshold allows), which identical attempt is
//! already being checked (a copy waits for it), and which wrong passwords were counted already (a
//! client's retry is not counted again). Attempts are known by an HMAC under a per-process random
//! key; no password, nor a plain hash of one, is kept. The store counts failures in the database,
//! so every instance sees them; the password path (`auth::password`) decides when to ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use super::accounts::insert_bounded;
use super::password::PasswordError;
use super::{Authenticator, AuthnError};
use crate::config::LockoutSettings;
use crate::names::{RealmName, Username};
use crate::store::changes::Counters;
use crate::store::{FailureRecord, Store, StoreError};

/// The lockout counter of an account (`portcullis user unlock` and `lockout clear --user` clear
/// it).
pub fn lockout_subject(realm: &RealmName, username: &Username) -> String {
    format!("account:{realm}/{username}")
}

/// The lockout counter of a client address (`portcullis lockout clear --address` clears it).
pub fn address_subject(address: &str) -> String {
    format!("address:{address}")
}

impl LockoutSettings {
    /// When a subject with `failures` (threshold `threshold`) is locked until: 0 below the
    /// threshold, then `base_lock_secs` doubling per failure, at most `max_lock_secs`.
    pub fn lock_deadline(&self, failures: i64, threshold: u32, now: i64) -> i64 {
        let over = failures - i64::from(threshold);
        if over < 0 {
            return 0;
        }
        let doubled = i64::from(self.base_lock_secs).saturating_mul(1_i64 << over.min(30));
        now + doubled.min(i64::from(self.max_lock_secs))
    }
}

/// Failure records of accounts and addresses, kept in memory until the `locks` change counter
/// moves (when a subject's first failure is counted, its lock changes or its record is deleted), so
/// a warm request makes no database query. What this process writes itself it notes at once.
pub struct FailureCache {
    store: Store,
    cached: Mutex<CachedFailures>,
}

/// The records and the counter they were read under.
#[derive(Default)]
struct CachedFailures {
    locks_counter: i64,
    records: HashMap<String, FailureRecord>,
}

impl FailureCache {
    pub fn new(store: Store) -> FailureCache {
        FailureCache {
            store,
            cached: Mutex::default(),
        }
    }

    /// The cache, brought up to `counters`. A request holding older counters than the cache's
    /// still reads it: what it holds is at least as new.
    fn cached(&self, counters: &Counters) -> MutexGuard<'_, CachedFailures> {
        let mut cached = self.cached.lock().expect("failure cache lock");
        if counters.locks > cached.locks_counter {
            cached.locks_counter = counters.locks;
            cached.records.clear();
        }
        cached
    }

    /// The failure record of `subject` (an account or a client address).
    pub async fn get(
        &self,
        counters: &Counters,
        subject: &str,
    ) -> Result<FailureRecord, StoreError> {
        if let Some(hit) = self.cached(counters).records.get(subject).copied() {
            return Ok(hit);
        }
        let stored = self.store.failure_record(subject).await?;
        let mut cached = self.cached(counters);
        if cached.locks_counter == counters.locks {
            insert_bounded(&mut cached.records, subject.to_owned(), stored);
        }
        Ok(stored)
    }

    /// Notes what this process just wrote for `subject`.
    pub fn written(&self, subject: &str, record: FailureRecord) {
        let mut cached = self.cached.lock().expect("failure cache lock");
        insert_bounded(&mut cached.records, subject.to_owned(), record);
    }
}

impl Authenticator {
    /// Counts a failed password for `subject` (an account or an address).
    pub(super) async fn record_failure(
        &self,
        subject: &str,
        now: i64,
        threshold: u32,
    ) -> Result<(), AuthnError> {
        let record = self
            .store
            .record_failure(subject, now, &self.lockout, threshold)
            .await?;
        self.failures.written(subject, record);
        if record.locked_until > 0 {
            self.metrics.locked();
        }
        Ok(())
    }
}

/// Most wrong attempts remembered; a full map starts over, so an attacker cycling through
/// passwords costs the map its contents (their retries count again), never unbounded memory.
const MAX_REMEMBERED: usize = 100_000;

/// HMAC-SHA256 of (realm, user name as given, password) under the process's key.
pub type Fingerprint = [u8; 32];

/// How many of a subject's password checks may run at once: as many as failures are still missing
/// to its threshold, and one once the threshold is reached (its lock has ended; the next failure
/// locks it again). Failures older than the reset window no longer count, as in the store.
pub fn checks_allowed(
    record: &FailureRecord,
    threshold: u32,
    lockout: &LockoutSettings,
    now: i64,
) -> u32 {
    let current = record.last_failure + i64::from(lockout.reset_after_secs) >= now;
    let failures = if current { record.failures } else { 0 };
    let missing = i64::from(threshold) - failures;
    u32::try_from(missing.max(1)).unwrap_or(threshold)
}

/// What to do with one password attempt.
pub enum Admission {
    /// Check the password; the permit holds its place among the checks in flight.
    Check(Permit),
    /// The identical attempt is being checked: wait until it ends, then ask again.
    Wait(watch::Receiver<()>),
    /// This wrong password was counted for this claim within the reset window, against the same
    /// stored hash: refuse it again without checking or counting it.
    Repeated,
    /// As many checks as the subject's threshold allows are in flight already.
    Full,
    /// A check ended since the caller read the failure records, which may not show its failure:
    /// read them again and ask again.
    Stale,
}

/// The guards of one process.
pub struct Attempts {
    key: hmac::Key,
    reset_after_secs: i64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Checks in flight per subject (absent: none).
    in_flight: HashMap<String, u32>,
    /// Checks ended so far: a caller that read the failure records before the last one ended may
    /// hold records without its failure.
    ended: u64,
    /// Attempts being checked, each with the channel its copies wait on.
    checking: HashMap<Fingerprint, watch::Receiver<()>>,
    /// Wrong attempts counted: the stored hash they were checked against (`None`: no such user
    /// or no password) and when.
    refused: HashMap<Fingerprint, (Option<Arc<str>>, i64)>,
}

impl Attempts {
    pub fn new(lockout: &LockoutSettings) -> Result<Arc<Attempts>, PasswordError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| PasswordError::Hash("the system random source failed".into()))?;
        Ok(Arc::new(Attempts {
            key,
            reset_after_secs: i64::from(lockout.reset_after_secs),
            state: Mutex::default(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many checks have ended: read before the failure records given to [`Attempts::admit`].
    pub fn checks_ended(&self) -> u64 {
        self.state().ended
    }

    /// The attempt's fingerprint: each part is length-prefixed, so no two claims share one.
    pub fn fingerprint(&self, realm: &str, username: &str, password: &SecretString) -> Fingerprint {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [
            realm.as_bytes(),
            username.as_bytes(),
            password.expose_secret().as_bytes(),
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(context.sign().as_ref());
        fingerprint
    }

    /// Decides whether `fingerprint`, checked against `stored_hash`, may be checked now;
    /// `subjects` are the account and address it counts for, each with the checks it allows
    /// according to failure records read when [`Attempts::checks_ended`] was `ended`.
    pub fn admit(
        self: &Arc<Self>,
        fingerprint: &Fingerprint,
        stored_hash: Option<&str>,
        subjects: &[(&str, u32)],
        ended: u64,
        now: i64,
    ) -> Admission {
        let mut state = self.state();
        if let Some((hash, at)) = state.refused.get(fingerprint) {
            if hash.as_deref() == stored_hash && *at + self.reset_after_secs >= now {
                return Admission::Repeated;
            }
        }
        if let Some(done) = state.checking.get(fingerprint) {
            return Admission::Wait(done.clone());
        }
        let full = subjects.iter().any(|(subject, allowed)| {
            state.in_flight.get(*subject).copied().unwrap_or(0) >= *allowed
        });
        if full {
            return Admission::Full;
        }
        if state.ended != ended {
            return Admission::Stale;
        }
        for (subject, _) in subjects {
            *state.in_flight.entry((*subject).to_owned()).or_default() += 1;
        }
        let (done, waiting) = watch::channel(());
        state.checking.insert(*fingerprint, waiting);
        Admission::Check(Permit {
            attempts: self.clone(),
            fingerprint: *fingerprint,
            subjects: subjects.iter().map(|(s, _)| (*s).to_owned()).collect(),
            _done: done,
        })
    }
}

/// One admitted check; dropping it (answered, failed, or its client gone) frees its place and
/// wakes the copies waiting for it. Dropped only after its failure, if any, is in the records.
pub struct Permit {
    attempts: Arc<Attempts>,
    fingerprint: Fingerprint,
    subjects: Vec<String>,
    /// Dropped after [`Permit::drop`] has updated the maps: the waiters then find them current.
    _done: watch::Sender<()>,
}

impl Permit {
    /// Remembers that this attempt was wrong against `stored_hash` and counted at `now`.
    pub fn counted_wrong(&self, stored_hash: Option<&str>, now: i64) {
        let mut state = self.attempts.state();
        if state.refused.len() >= MAX_REMEMBERED {
            state.refused.clear();
        }
        state
            .refused
            .insert(self.fingerprint, (stored_hash.map(Arc::from), now));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.attempts.state();
        state.ended += 1;
        state.checking.remove(&self.fingerprint);
        for subject in &self.subjects {
            if let Some(count) = state.in_flight.get_mut(subject) {
                *count -= 1;
                if *count == 0 {
                    state.in_flight.remove(subject);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts() -> Arc<Attempts> {
        Attempts::new(&LockoutSettings::default()).unwrap()
    }

    fn fingerprint(attempts: &Attempts, password: &str) -> Fingerprint {
        attempts.fingerprint("default", "alice", &SecretString::from(password))
    }

    #[test]
    fn checks_allowed_follow_the_failures_still_missing() {
        let lockout = LockoutSettings::default();
        let record = |failures, last_failure| FailureRecord {
            failures,
            last_failure,
            locked_until: 0,
        };
        assert_eq!(checks_allowed(&record(0, 0), 5, &lockout, 1_000), 5);
        assert_eq!(checks_allowed(&record(3, 900), 5, &lockout, 1_000), 2);
        assert_eq!(checks_allowed(&record(9, 900), 5, &lockout, 1_000), 1);
        let forgotten = 1_000 - i64::from(lockout.reset_after_secs) - 1;
        assert_eq!(checks_allowed(&record(9, forgotten), 5, &lockout, 1_000), 5);
    }

    #[test]
    fn checks_in_flight_are_capped_per_subject_and_freed_on_drop() {
        let attempts = attempts();
        let subjects = [("account:default/alice", 2), ("address:192.0.2.1", 20)];
        let first = attempts.admit(
            &fingerprint(&attempts, "a"),
            None,
            &subjects,
            attempts.checks_ended(),
            0,
        );
        let second = attempts.admit(
            &fingerprint(&attempts, "b"),
            None,
            &subjects,
            attempts.checks_ended(),
            0,
        );
        assert!(matches!(first, Admission::Check(_)));
        assert!(matches!(second, Admission::Check(_)));
        let third = attempts.admit(
            &fingerprint(&attempts, "c"),
            None,
            &subjects,
            attempts.checks_ended(),
            0,
        );
        assert!(matches!(third, Admission::Full));
        let ended = attempts.checks_ended();
        drop(first);
        let stale = attempts.admit(&fingerprint(&attempts, "c"), None, &subjects, ended, 0);
        assert!(matches!(stale, Admission::Stale), "a check ended since");
        let third = attempts.admit(
            &fingerprint(&attempts, "c"),
            None,
            &subjects,
            attempts.checks_ended(),
            0,
        );
        assert!(matches!(third, Admission::Check(_)));
    }

    #[test]
    fn a_copy_waits_and_a_counted_wrong_password_is_a_repeat_until_the_hash_changes() {
        let attempts = attempts();
        let subjects = [("account:default/alice", 5)];
        let typo = fingerprint(&attempts, "typo");
        let Admission::Check(permit) =
            attempts.admit(&typo, Some("h1"), &subjects, attempts.checks_ended(), 10)
        else {
            panic!("the first attempt is checked");
        };
        let Admission::Wait(waiting) =
            attempts.admit(&typo, Some("h1"), &subjects, attempts.checks_ended(), 10)
        else {
            panic!("its copy waits");
        };
        permit.counted_wrong(Some("h1"), 10);
        drop(permit);
        assert!(waiting.has_changed().is_err(), "the copy is woken");
        assert!(matches!(
            attempts.admit(&typo, Some("h1"), &subjects, attempts.checks_ended(), 11),
            Admission::Repeated
        ));
        assert!(matches!(
            attempts.admit(&typo, Some("h2"), &subjects, attempts.checks_ended(), 11),
            Admission::Check(_)
        ));
        let later = 11 + i64::from(LockoutSettings::default().reset_after_secs);
        assert!(matches!(
            attempts.admit(&typo, Some("h1"), &subjects, attempts.checks_ended(), later),
            Admission::Check(_)
        ));
    }
}
