//! Lockout use cases: list the accounts and client addresses whose failed passwords still count,
//! and forget one's failures, which lifts its lock.

use std::fmt;
use std::net::IpAddr;

use super::AdminError;
use crate::auth::lockout::{address_subject, lockout_subject};
use crate::names::{RealmName, Username};
use crate::store::{FailureRecord, Store};

/// Whose failures to forget: an account or a client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockoutTarget {
    Account { realm: RealmName, user: Username },
    Address(IpAddr),
}

impl fmt::Display for LockoutTarget {
    /// `user NAME in realm REALM` or `address ADDRESS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockoutTarget::Account { realm, user } => write!(f, "user {user} in realm {realm}"),
            LockoutTarget::Address(address) => write!(f, "address {address}"),
        }
    }
}

/// A subject whose failures still count.
pub struct Lockout {
    /// `account:REALM/USER` or `address:ADDRESS`.
    pub subject: String,
    pub failures: i64,
    /// When the last failure was (Unix seconds).
    pub last_failure: i64,
    /// When its lock ends (Unix seconds); `None` when it is not locked at `now`.
    pub locked_until: Option<i64>,
}

/// The subjects whose failures still count at `now` (locked, or failed within the last
/// `reset_after_secs`), by subject.
pub async fn list(
    store: &Store,
    now: i64,
    reset_after_secs: u32,
) -> Result<Vec<Lockout>, AdminError> {
    Ok(store
        .list_failures(now, reset_after_secs)
        .await?
        .into_iter()
        .map(|(subject, record): (String, FailureRecord)| Lockout {
            subject,
            failures: record.failures,
            last_failure: record.last_failure,
            locked_until: (record.locked_until > now).then_some(record.locked_until),
        })
        .collect())
}

/// Forgets `target`'s failures and lifts its lock; an error when its realm does not exist or
/// nothing is recorded for it.
pub async fn clear(store: &Store, target: &LockoutTarget) -> Result<(), AdminError> {
    let subject = match target {
        LockoutTarget::Account { realm, user } => {
            if store.find_realm(realm).await?.is_none() {
                return Err(AdminError::NoSuchRealm(realm.clone()));
            }
            lockout_subject(realm, user)
        }
        LockoutTarget::Address(address) => address_subject(&address.to_string()),
    };
    if !store.clear_failures(&subject).await? {
        return Err(AdminError::NothingToClear(target.clone()));
    }
    Ok(())
}

/// Forgets a user's failures (`user unlock`); true when some were recorded, so it was locked or
/// counting. Unlike [`clear`], nothing recorded is no error.
pub async fn unlock_user(
    store: &Store,
    realm: &RealmName,
    user: &Username,
) -> Result<bool, AdminError> {
    Ok(store.clear_failures(&lockout_subject(realm, user)).await?)
}
