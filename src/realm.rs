//! Realms at run time: the stored record joined with its key ring and its URLs. Realms are database
//! records (shared by every instance); each is loaded on first use and kept in memory, so a changed
//! setting (`realm set`) applies when the process restarts. Its keys are reloaded whenever the
//! change counter moves (a rotation, activation or revocation by any process), so every instance
//! follows the same key schedule.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::jwt::{TokenHeader, DEFAULT_TOKEN_TTL_SECS};
use crate::keys::ring::{KeyRing, RingError, RingSpec, BUNDLE_FILE, JWKS_FILE};
use crate::names::RealmName;
use crate::store::{RealmRecord, Store, StoreError};

/// The realm created on first start.
pub const DEFAULT_REALM: &str = "default";
/// The service the default realm accepts (the registry's `auth.token.service`).
pub const DEFAULT_SERVICE: &str = "registry";
/// Longest token lifetime a realm may set: one day. A registry token cannot be revoked before it
/// expires, and clients fetch a new one when theirs runs out.
pub const MAX_TOKEN_TTL_SECS: u64 = 86_400;
/// Path of a realm's token endpoint below the public URL (Keycloak's layout).
pub const TOKEN_PATH: &str = "/auth/realms/{realm}/protocol/docker-v2/auth";

/// Loading a realm failed.
#[derive(Debug, thiserror::Error)]
pub enum RealmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("realm {realm}: {error}")]
    Keys { realm: RealmName, error: RingError },
}

/// Everything needed to answer a token request for one realm.
pub struct Realm {
    pub name: RealmName,
    pub services: Vec<String>,
    pub issuer: String,
    pub token_url: String,
    pub token_ttl_secs: u64,
    pub token_header: TokenHeader,
    /// The realm's key directory, `<keys.dir>/<realm>`.
    pub keys_dir: PathBuf,
    ring: RwLock<Arc<KeyRing>>,
}

impl Realm {
    async fn load(
        store: &Store,
        record: RealmRecord,
        keys_dir: &std::path::Path,
        public_url: &str,
    ) -> Result<Realm, RealmError> {
        let counter = store.counters().await?.accounts;
        let token_url = token_url(public_url, &record.name);
        let keys_dir = keys_dir.join(record.name.as_str());
        let spec = RingSpec {
            realm: &record.name,
            realm_dir: &keys_dir,
            header: record.token_header,
            token_ttl_secs: record.token_ttl_secs,
        };
        let ring = KeyRing::load(store, &spec, counter, None)
            .await
            .map_err(|error| RealmError::Keys {
                realm: record.name.clone(),
                error,
            })?;
        Ok(Realm {
            issuer: record.issuer.unwrap_or_else(|| token_url.clone()),
            keys_dir,
            name: record.name,
            services: record.services,
            token_url,
            token_ttl_secs: record.token_ttl_secs,
            token_header: record.token_header,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    fn ring_spec(&self) -> RingSpec<'_> {
        RingSpec {
            realm: &self.name,
            realm_dir: &self.keys_dir,
            header: self.token_header,
            token_ttl_secs: self.token_ttl_secs,
        }
    }

    fn keys_error(&self, error: RingError) -> RealmError {
        RealmError::Keys {
            realm: self.name.clone(),
            error,
        }
    }

    /// The keys as last read.
    pub fn keys(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().expect("key ring lock"))
    }

    /// The keys as stored under change counter `counter` (the accounts counter): the ring held,
    /// or read again when the counter has moved since.
    pub async fn keys_at(&self, store: &Store, counter: i64) -> Result<Arc<KeyRing>, RealmError> {
        let held = self.keys();
        if held.counter() == counter {
            return Ok(held);
        }
        let ring = KeyRing::load(store, &self.ring_spec(), counter, Some(&held))
            .await
            .map_err(|error| self.keys_error(error))?;
        for (key, reason) in ring.unloadable() {
            tracing::error!(realm = %self.name, kid = %key.record.kid, error = %reason, "signing key cannot be loaded");
        }
        let ring = Arc::new(ring);
        let mut slot = self.ring.write().expect("key ring lock");
        if slot.counter() < ring.counter() {
            *slot = Arc::clone(&ring);
        }
        Ok(ring)
    }

    /// The keys as stored now.
    pub async fn current_keys(&self, store: &Store) -> Result<Arc<KeyRing>, RealmError> {
        self.keys_at(store, store.counters().await?.accounts).await
    }

    /// True when tokens for `service` may be issued here.
    pub fn accepts_service(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    /// The registry's `auth.token` block for this realm (first accepted service), with comments
    /// saying what each registry version needs to verify this realm's tokens and what a rotation
    /// asks of it.
    pub fn registry_config(&self) -> String {
        let absolute = |file: &str| {
            let path = self.keys_dir.join(file);
            std::path::absolute(&path)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        let has_ca = self.keys().ca().is_some();
        let mut lines = vec![
            "auth:".to_owned(),
            "  token:".to_owned(),
            format!("    realm: {}", self.token_url),
            format!(
                "    service: {}",
                self.services.first().map_or("", String::as_str)
            ),
            format!("    issuer: {}", self.issuer),
            format!("    rootcertbundle: {}", absolute(BUNDLE_FILE)),
        ];
        let notes: Vec<String> = match (self.token_header, has_ca) {
            (TokenHeader::X5c, true) => vec![
                "tokens carry x5c issued by the realm's CA: registry 2.8 and 3.x verify them"
                    .to_owned(),
                "through rootcertbundle (the CA certificate is first in it); keys rotate with no"
                    .to_owned(),
                "registry restart.".to_owned(),
            ],
            (TokenHeader::X5c, false) => vec![
                "tokens carry x5c (self-signed): registry 2.8 and 3.x verify them through"
                    .to_owned(),
                "rootcertbundle; after 'portcullis keys rotate' restart registries before the"
                    .to_owned(),
                format!(
                    "new key activates, or run 'portcullis keys ca init --realm {}' once.",
                    self.name
                ),
            ],
            (TokenHeader::Kid, _) => vec![
                "tokens carry kid only: registry 2.8 matches it against rootcertbundle; 3.x needs"
                    .to_owned(),
                format!(
                    "jwks: {} (instead of or beside rootcertbundle);",
                    absolute(JWKS_FILE)
                ),
                "after 'portcullis keys rotate' restart registries before the new key activates."
                    .to_owned(),
            ],
        };
        lines.extend(notes.into_iter().map(|line| format!("    # {line}")));
        lines.push(String::new());
        lines.join("\n")
    }
}

/// A realm's token URL.
pub fn token_url(public_url: &str, realm: &RealmName) -> String {
    format!(
        "{public_url}{}",
        TOKEN_PATH.replace("{realm}", realm.as_str())
    )
}

/// Creates the `default` realm when the database holds none (the zero-config start).
pub async fn bootstrap(store: &Store) -> Result<(), StoreError> {
    if store.list_realms().await?.is_empty() {
        let record = RealmRecord {
            name: RealmName::parse(DEFAULT_REALM).expect("valid default realm name"),
            services: vec![DEFAULT_SERVICE.to_owned()],
            issuer: None,
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
            token_header: TokenHeader::default(),
        };
        match store.create_realm(&record).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The realms this process serves, loaded from the store on first use.
pub struct Realms {
    store: Store,
    keys_dir: PathBuf,
    public_url: String,
    loaded: RwLock<HashMap<RealmName, Arc<Realm>>>,
}

impl Realms {
    /// An empty cache over `store`.
    pub fn new(store: Store, keys_dir: PathBuf, public_url: String) -> Realms {
        Realms {
            store,
            keys_dir,
            public_url,
            loaded: RwLock::new(HashMap::new()),
        }
    }

    /// Loads every stored realm now, so a bad key stops the server at start rather than at the
    /// first request.
    pub async fn load_all(&self) -> Result<Vec<Arc<Realm>>, RealmError> {
        let mut realms = Vec::new();
        for record in self.store.list_realms().await? {
            realms.push(self.insert(record).await?);
        }
        Ok(realms)
    }

    /// The named realm, or `None` when no such realm is stored.
    pub async fn get(&self, name: &RealmName) -> Result<Option<Arc<Realm>>, RealmError> {
        if let Some(realm) = self.loaded.read().expect("realm cache lock").get(name) {
            return Ok(Some(realm.clone()));
        }
        match self.store.find_realm(name).await? {
            Some(record) => self.insert(record).await.map(Some),
            None => Ok(None),
        }
    }

    async fn insert(&self, record: RealmRecord) -> Result<Arc<Realm>, RealmError> {
        let realm =
            Arc::new(Realm::load(&self.store, record, &self.keys_dir, &self.public_url).await?);
        let mut loaded = self.loaded.write().expect("realm cache lock");
        Ok(loaded.entry(realm.name.clone()).or_insert(realm).clone())
    }
}
