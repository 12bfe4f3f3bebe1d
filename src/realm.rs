//! Realms at run time: the stored record joined with its loaded keys, its URLs and its signer. Realms
//! are database records (shared by every instance); each is loaded on first use and kept in memory,
//! so a changed setting (`realm set`) applies when the process restarts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::jwt::{Signer, TokenHeader, DEFAULT_TOKEN_TTL_SECS};
use crate::keys::{KeyError, RealmKeys, CERT_FILE};
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
    Keys { realm: RealmName, error: KeyError },
}

/// Everything needed to answer a token request for one realm.
pub struct Realm {
    pub name: RealmName,
    pub services: Vec<String>,
    pub issuer: String,
    pub token_url: String,
    pub token_ttl_secs: u64,
    pub token_header: TokenHeader,
    pub keys: RealmKeys,
    pub signer: Signer,
}

impl Realm {
    fn load(
        record: RealmRecord,
        keys_dir: &std::path::Path,
        public_url: &str,
    ) -> Result<Realm, RealmError> {
        let keys = RealmKeys::load_or_create(keys_dir, &record.name).map_err(|error| {
            RealmError::Keys {
                realm: record.name.clone(),
                error,
            }
        })?;
        let token_url = token_url(public_url, &record.name);
        Ok(Realm {
            issuer: record.issuer.unwrap_or_else(|| token_url.clone()),
            signer: Signer::new(&keys, record.token_header),
            name: record.name,
            services: record.services,
            token_url,
            token_ttl_secs: record.token_ttl_secs,
            token_header: record.token_header,
            keys,
        })
    }

    /// True when tokens for `service` may be issued here.
    pub fn accepts_service(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    /// The registry's `auth.token` block for this realm (first accepted service), with a comment
    /// saying what each registry version needs to verify this realm's tokens.
    pub fn registry_config(&self) -> String {
        let bundle = self.keys.dir().join(CERT_FILE);
        let bundle = std::path::absolute(&bundle).unwrap_or(bundle);
        let verification = match self.token_header {
            TokenHeader::X5c => [
                "tokens carry x5c: registry 2.8 and 3.x verify them through rootcertbundle, 3.x never"
                    .to_owned(),
                format!(
                    "through jwks (for a jwks-only 3.x: portcullis realm set {} --token-header kid)",
                    self.name
                ),
            ],
            TokenHeader::Kid => [
                "tokens carry kid only: registry 2.8 matches it against rootcertbundle; 3.x needs"
                    .to_owned(),
                format!(
                    "jwks: <file written by 'portcullis keys export --realm {} --format jwks'>",
                    self.name
                ),
            ],
        };
        let verification: String = verification
            .iter()
            .map(|line| format!("    # {line}\n"))
            .collect();
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n{verification}",
            self.token_url,
            self.services.first().map_or("", String::as_str),
            self.issuer,
            bundle.display(),
        )
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
            realms.push(self.insert(record)?);
        }
        Ok(realms)
    }

    /// The named realm, or `None` when no such realm is stored.
    pub async fn get(&self, name: &RealmName) -> Result<Option<Arc<Realm>>, RealmError> {
        if let Some(realm) = self.loaded.read().expect("realm cache lock").get(name) {
            return Ok(Some(realm.clone()));
        }
        match self.store.find_realm(name).await? {
            Some(record) => self.insert(record).map(Some),
            None => Ok(None),
        }
    }

    fn insert(&self, record: RealmRecord) -> Result<Arc<Realm>, RealmError> {
        let realm = Arc::new(Realm::load(record, &self.keys_dir, &self.public_url)?);
        let mut loaded = self.loaded.write().expect("realm cache lock");
        Ok(loaded.entry(realm.name.clone()).or_insert(realm).clone())
    }
}
