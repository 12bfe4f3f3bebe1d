//! What token requests read about accounts, kept in memory: users with their groups (and the names
//! that are no user), tokens by the digest of their secret, and MUNGE uid mappings. All of it is
//! dropped when the `accounts` change counter moves ([`Counters`]), so a warm request makes no
//! database query and a miss reads the database. A token's last use, which this process records
//! itself, it notes here at once. Failure records have their own cache, `lockout::FailureCache`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::names::{RealmName, Username};
use crate::policy::authorize::policy_groups;
use crate::policy::{scope_limit, Policy, ScopeLimitError};
use crate::store::changes::Counters;
use crate::store::{
    Store, StoreError, TokenKind, TokenRecord, UserRecord, LAST_USED_RESOLUTION_SECS,
};

/// Most entries each map keeps; a full map starts over, so an attacker cycling through names or
/// addresses costs the cache its contents, never unbounded memory.
const MAX_ENTRIES: usize = 100_000;

/// A user as authentication needs it.
#[derive(Debug)]
pub struct Account {
    pub record: UserRecord,
    /// The groups the policy decides with (see [`policy_groups`]).
    pub groups: Vec<String>,
}

impl Account {
    /// Reads the groups of the user `record` describes.
    pub async fn load(store: &Store, record: UserRecord) -> Result<Account, StoreError> {
        let groups = policy_groups(record.role, store.user_groups(record.id).await?);
        Ok(Account { record, groups })
    }
}

/// A stored token with its owner.
pub struct TokenEntry {
    pub record: TokenRecord,
    pub owner: Arc<Account>,
    /// What an access token may reach at most (`None`: whatever the policy allows), parsed once;
    /// an error when its stored scopes no longer parse.
    pub limit: Result<Option<Arc<Policy>>, ScopeLimitError>,
    /// The last use recorded in the database or by this process (Unix seconds, 0 for never).
    last_used_at: AtomicI64,
}

impl TokenEntry {
    /// The last use, or the creation when never used.
    pub fn last_active(&self) -> i64 {
        self.last_used_at
            .load(Ordering::Relaxed)
            .max(self.record.created_at)
    }

    /// Notes a use at `now`; true when the database should record it too, which happens at most
    /// once per [`LAST_USED_RESOLUTION_SECS`] so busy clients do not make every request a write.
    pub fn note_use(&self, now: i64) -> bool {
        let last = self.last_used_at.load(Ordering::Relaxed);
        now - last >= LAST_USED_RESOLUTION_SECS
            && self
                .last_used_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

type UserKey = (RealmName, Username);
type TokenKey = (RealmName, TokenKind, String);
type MappingKey = (RealmName, String, u32);

/// The caches and the counters they were filled under.
#[derive(Default)]
struct Cached {
    accounts_counter: i64,
    users: HashMap<UserKey, Option<Arc<Account>>>,
    tokens: HashMap<TokenKey, Arc<TokenEntry>>,
    mappings: HashMap<MappingKey, Arc<Account>>,
}

impl Cached {
    /// Drops what changed according to `counters`, if they are newer than what was seen. A request
    /// holding older counters than the cache's still reads it: what it holds is at least as new.
    fn catch_up(&mut self, counters: &Counters) {
        if counters.accounts > self.accounts_counter {
            self.accounts_counter = counters.accounts;
            self.users.clear();
            self.tokens.clear();
            self.mappings.clear();
        }
    }
}

/// Inserts, starting over when the map is full.
pub(super) fn insert_bounded<K: Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

/// The accounts cache of one server.
pub struct Accounts {
    store: Store,
    cached: Mutex<Cached>,
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        Accounts {
            store,
            cached: Mutex::default(),
        }
    }

    /// The cache, brought up to `counters`.
    fn cached(&self, counters: &Counters) -> MutexGuard<'_, Cached> {
        let mut cached = self.cached.lock().expect("accounts cache lock");
        cached.catch_up(counters);
        cached
    }

    /// The cache, if a value read from the database after `counters` were read may go in: only
    /// while nothing has changed since. (A value read under counters 5 may predate change 6; once
    /// the cache has caught up to 6 it must not take it.)
    fn cached_for_insert(&self, counters: &Counters) -> Option<MutexGuard<'_, Cached>> {
        let cached = self.cached(counters);
        (cached.accounts_counter == counters.accounts).then_some(cached)
    }

    /// The user named `username` in `realm`; `None` when there is none (remembered too, so an
    /// unknown name costs what a known one does).
    pub async fn user(
        &self,
        counters: &Counters,
        realm: &RealmName,
        username: &Username,
    ) -> Result<Option<Arc<Account>>, StoreError> {
        let key = (realm.clone(), username.clone());
        if let Some(hit) = self.cached(counters).users.get(&key) {
            return Ok(hit.clone());
        }
        let account = match self.store.find_user(realm, username).await? {
            Some(record) => Some(Arc::new(Account::load(&self.store, record).await?)),
            None => None,
        };
        if let Some(mut cached) = self.cached_for_insert(counters) {
            insert_bounded(&mut cached.users, key, account.clone());
        }
        Ok(account)
    }

    /// The token of `kind` in `realm` whose secret has this digest.
    pub async fn token(
        &self,
        counters: &Counters,
        realm: &RealmName,
        kind: TokenKind,
        secret_sha256: &str,
    ) -> Result<Option<Arc<TokenEntry>>, StoreError> {
        let key = (realm.clone(), kind, secret_sha256.to_owned());
        if let Some(hit) = self.cached(counters).tokens.get(&key) {
            return Ok(Some(hit.clone()));
        }
        self.load_token(counters, key).await
    }

    /// The token as stored now, replacing the cached entry: for a refusal that a use recorded by
    /// another instance could overturn.
    pub async fn reload_token(
        &self,
        counters: &Counters,
        realm: &RealmName,
        kind: TokenKind,
        secret_sha256: &str,
    ) -> Result<Option<Arc<TokenEntry>>, StoreError> {
        let key = (realm.clone(), kind, secret_sha256.to_owned());
        self.load_token(counters, key).await
    }

    async fn load_token(
        &self,
        counters: &Counters,
        key: TokenKey,
    ) -> Result<Option<Arc<TokenEntry>>, StoreError> {
        let (realm, kind, secret_sha256) = &key;
        let Some((record, owner)) = self.store.find_token(realm, *kind, secret_sha256).await?
        else {
            return Ok(None);
        };
        let entry = Arc::new(TokenEntry {
            limit: record
                .scopes
                .as_deref()
                .map(|scopes| scope_limit(scopes).map(Arc::new))
                .transpose(),
            last_used_at: AtomicI64::new(record.last_used_at.unwrap_or(0)),
            owner: Arc::new(Account::load(&self.store, owner).await?),
            record,
        });
        if let Some(mut cached) = self.cached_for_insert(counters) {
            insert_bounded(&mut cached.tokens, key, entry.clone());
        }
        Ok(Some(entry))
    }

    /// The user a platform's uid is mapped to in `realm`.
    pub async fn munge_user(
        &self,
        counters: &Counters,
        realm: &RealmName,
        platform: &str,
        uid: u32,
    ) -> Result<Option<Arc<Account>>, StoreError> {
        let key = (realm.clone(), platform.to_owned(), uid);
        if let Some(hit) = self.cached(counters).mappings.get(&key) {
            return Ok(Some(hit.clone()));
        }
        let Some(record) = self.store.munge_user(realm, platform, uid).await? else {
            return Ok(None);
        };
        let account = Arc::new(Account::load(&self.store, record).await?);
        if let Some(mut cached) = self.cached_for_insert(counters) {
            insert_bounded(&mut cached.mappings, key, account.clone());
        }
        Ok(Some(account))
    }
}
