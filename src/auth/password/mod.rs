//! The password credential: argon2id hashing and verification ([`Hasher`], [`Verifier`]) on a
//! pool of dedicated threads, the verified-credential cache, bcrypt verification of imported
//! hashes, and the password path of a token request, which asks the lockout when to check.
//! Unknown user, disabled user, bad name and wrong password all cost one argon2 check (a counted
//! repeat none, for each alike) and give the same answer; the precise reason goes to the audit log
//! only. A right password against an imported bcrypt hash replaces it with argon2id.

pub mod bcrypt;
mod cache;
mod pool;
mod verifier;

use std::sync::Arc;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

pub use verifier::{Claim, Hasher, PasswordError, Verifier};

use super::accounts::Account;
use super::ldap::DirectoryCheck;
use super::lockout::{address_subject, checks_allowed, lockout_subject, Admission, Permit};
use super::{principal, Authenticator, AuthnError, Method, Principal, Request};
use crate::names::Username;
use crate::store::{unix_now, FailureRecord, Source};

/// Longest password accepted; longer input is refused before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Retry-After of a password attempt refused because its account's or address's checks in flight
/// could already reach the threshold: by then they have ended, in a success or a lock.
const THROTTLED_RETRY_AFTER_SECS: i64 = 1;

impl Authenticator {
    /// A password: refused while its account or address is locked; otherwise checked once per
    /// distinct attempt (a copy in flight waits for the original, a wrong password counted within
    /// the reset window is refused again without a check), and only while the checks in flight
    /// cannot take the account or address past its threshold.
    pub(super) async fn password(
        &self,
        request: &Request<'_>,
        username: &str,
        password: SecretString,
    ) -> Result<Principal, AuthnError> {
        if password.expose_secret().len() > MAX_PASSWORD_LEN {
            return Err(AuthnError::Rejected("password too long"));
        }
        let (realm, counters) = (request.realm, request.counters);
        let name = Username::parse(username).ok();
        let address = address_subject(request.binding.client_addr);
        // Only valid names get an account counter, so junk names cannot fill the table.
        let account = name
            .as_ref()
            .map_or_else(|| address.clone(), |n| lockout_subject(&realm.name, n));
        // Set once this attempt has waited for an identical one being checked.
        let mut waited = false;
        loop {
            let now = unix_now();
            let checks_ended = self.attempts.checks_ended();
            let account_failures = self.failures.get(counters, &account).await?;
            let address_failures = self.failures.get(counters, &address).await?;
            let locked_until = account_failures
                .locked_until
                .max(address_failures.locked_until);
            if locked_until > now {
                return Err(AuthnError::Locked {
                    retry_after_secs: locked_until - now,
                });
            }
            let found = match &name {
                Some(name) => self.accounts.user(counters, &realm.name, name).await?,
                None => None,
            };
            // What a check is made against: a local account's stored hash, a directory account's
            // source (its directory is asked), nothing (the dummy hash, or the directories). A
            // provider's account has no password here: the dummy hash refuses it at full cost.
            let hash = found.as_ref().and_then(|a| match &a.record.source {
                Source::Local => a.record.password_hash.clone(),
                Source::Directory(_) => Some(a.record.source.as_stored()),
                Source::Provider(_) => None,
            });
            let attempt = Attempt {
                username,
                account: &account,
                address: &address,
                found,
                hash,
            };
            let claim = Claim {
                realm: realm.name.as_str(),
                username,
            };
            let cached = attempt
                .hash
                .as_deref()
                .is_some_and(|phc| self.verifier.is_cached(&claim, &password, phc));
            if cached {
                // Verified before against this hash: no check to cap, no copy to wait for.
                return self.check_password(request, attempt, password, None).await;
            }
            let fingerprint = self
                .attempts
                .fingerprint(realm.name.as_str(), username, &password);
            let lockout = &self.lockout;
            let address_allows =
                checks_allowed(&address_failures, lockout.address_threshold, lockout, now);
            let account_allows =
                checks_allowed(&account_failures, lockout.account_threshold, lockout, now);
            let both = [
                (address.as_str(), address_allows),
                (account.as_str(), account_allows),
            ];
            let subjects = if account == address {
                &both[..1]
            } else {
                &both[..]
            };
            match self.attempts.admit(
                &fingerprint,
                attempt.hash.as_deref(),
                subjects,
                checks_ended,
                now,
            ) {
                Admission::Check(permit) => {
                    return self
                        .check_password(request, attempt, password, Some(permit))
                        .await;
                }
                Admission::Wait(mut original) => {
                    // No value is ever sent: this returns when the original's permit is dropped.
                    let _ = original.changed().await;
                    waited = true;
                }
                // A burst of copies is a burst like any other: beyond the one check, 429.
                Admission::Repeated if waited => {
                    return Err(AuthnError::Throttled {
                        retry_after_secs: THROTTLED_RETRY_AFTER_SECS,
                    });
                }
                Admission::Repeated => {
                    return Err(AuthnError::Rejected(match attempt.found {
                        Some(_) => "wrong password, repeated (not counted again)",
                        None => "unknown user or no password set, repeated (not counted again)",
                    }));
                }
                Admission::Full => {
                    return Err(AuthnError::Throttled {
                        retry_after_secs: THROTTLED_RETRY_AFTER_SECS,
                    });
                }
                Admission::Stale => {}
            }
        }
    }

    /// Checks a password attempt, admitted (`permit`) or verified before; a wrong one is counted
    /// for its account and address, then remembered, and a right one clears the account's
    /// failures wherever they were counted. A directory account, or a name without an account in
    /// a realm with directories, is checked by the directories (`auth::ldap`); a refusal there
    /// costs the dummy argon2 check too, so that every refusal costs about the same.
    async fn check_password(
        &self,
        request: &Request<'_>,
        attempt: Attempt<'_>,
        password: SecretString,
        permit: Option<Permit>,
    ) -> Result<Principal, AuthnError> {
        let (realm, counters) = (request.realm, request.counters);
        let Attempt {
            username,
            account,
            address,
            found,
            hash,
        } = attempt;
        let claim = Claim {
            realm: realm.name.as_str(),
            username,
        };
        let name = Username::parse(username).ok();
        let directory_account = found
            .as_ref()
            .is_some_and(|a| matches!(a.record.source, Source::Directory(_)));
        let started = Instant::now();
        // The account and its directory groups, or the refusal's reason and directory; and
        // whether the password itself matched (a disabled user's right password is not a wrong
        // one to remember).
        let (outcome, matched) = match name {
            Some(name)
                if directory_account || (found.is_none() && self.has_directories(&realm.name)) =>
            {
                let verified_before = permit.is_none()
                    && hash
                        .as_deref()
                        .is_some_and(|marker| self.verifier.recall(&claim, &password, marker));
                match self
                    .directory_password(&realm.name, &name, found, &password, verified_before)
                    .await?
                {
                    DirectoryCheck::Accepted { account, groups } => {
                        (Ok(Checked::Directory { account, groups }), true)
                    }
                    DirectoryCheck::Refused { reason, directory } => {
                        self.verifier.verify(&claim, None, password).await?;
                        (Err((reason, directory)), false)
                    }
                }
            }
            _ => {
                let imported = hash.as_deref().is_some_and(bcrypt::is_bcrypt);
                let plaintext =
                    imported.then(|| SecretString::from(password.expose_secret().to_owned()));
                let matched = self.verifier.verify(&claim, hash.clone(), password).await?;
                let outcome = match found {
                    None => Err(("unknown user or no password set", None)),
                    Some(_) if !matched => Err(("wrong password", None)),
                    Some(a) if a.record.disabled => Err(("user disabled", None)),
                    Some(found) => Ok(Checked::Local { found, plaintext }),
                };
                (outcome, matched)
            }
        };
        self.metrics
            .password_checked(started.elapsed().as_secs_f64());
        let now = unix_now();
        let checked = match outcome {
            Ok(checked) => checked,
            Err((reason, directory)) => {
                if account != address {
                    self.record_failure(account, now, self.lockout.account_threshold)
                        .await?;
                }
                self.record_failure(address, now, self.lockout.address_threshold)
                    .await?;
                if let Some(permit) = permit.as_ref().filter(|_| !matched) {
                    permit.counted_wrong(hash.as_deref(), now);
                }
                return Err(match directory {
                    Some(directory) => AuthnError::DirectoryRejected { directory, reason },
                    None => AuthnError::Rejected(reason),
                });
            }
        };
        drop(permit);
        // Failures short of a lock move no counter, but a subject's first failure does, so this
        // cache knows of failures counted by any instance; the common case (none) writes nothing.
        if self.failures.get(counters, account).await?.failures > 0 {
            self.store.clear_failures(account).await?;
            self.failures.written(account, FailureRecord::default());
        }
        match checked {
            Checked::Local { found, plaintext } => {
                if let (Some(plaintext), Some(old)) = (plaintext, hash) {
                    let new = self.verifier.hash(plaintext).await?;
                    self.store
                        .replace_imported_hash(found.record.id, &old, &new)
                        .await?;
                    tracing::info!(target: "audit", event = "password_hash_upgraded", realm = %found.record.realm, user = %found.record.username, "imported bcrypt hash replaced with argon2id");
                }
                Ok(principal(&found, Method::Password, None, Vec::new()))
            }
            Checked::Directory { account, groups } => {
                Ok(principal(&account, Method::Password, None, groups))
            }
        }
    }
}

/// A password found right, for the account it is checked for.
enum Checked {
    /// Against the stored hash; the password again when an imported bcrypt hash is to be
    /// replaced.
    Local {
        found: Arc<Account>,
        plaintext: Option<SecretString>,
    },
    /// By a directory, which gave these groups.
    Directory {
        account: Arc<Account>,
        groups: Vec<String>,
    },
}

/// A password attempt admitted for a check: the claim, the subjects it counts for, and the user
/// and stored hash it is checked against (none: the dummy hash).
struct Attempt<'a> {
    username: &'a str,
    account: &'a str,
    address: &'a str,
    found: Option<Arc<Account>>,
    hash: Option<String>,
}
