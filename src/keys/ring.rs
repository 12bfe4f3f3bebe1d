//! A realm's keys as a process holds them: the stored records (shared by every instance), the
//! private keys of those that may sign (parsed once, kept across reloads), the realm's CA
//! certificate, and what follows from them at a moment: the key that signs, the JWKS and the
//! certificate bundle registries verify with, and the files that publish both.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet};

use super::cert::Certificate;
use super::schedule::{self, Entry, KeyState};
use super::{file, jwk, KeyError, SigningKey};
use crate::jwt::{Signer, TokenHeader};
use crate::names::RealmName;
use crate::store::changes::FRESHNESS;
use crate::store::{SigningKeyRecord, Store, StoreError};

/// The registries' clock leeway on `exp` and `nbf`.
pub const REGISTRY_LEEWAY_MS: i64 = 60_000;
/// How far ahead a key's activation is set when it needs no publication: every instance hears of a
/// change within [`FRESHNESS`], so all of them switch keys at the same moment.
pub const ACTIVATION_MARGIN_MS: i64 = FRESHNESS.as_millis() as i64 + 1_000;
/// The directory of a realm's first key, made before keys rotated: the realm's own.
pub const FIRST_KEY_DIR: &str = ".";
/// The file holding the realm's certificate bundle, for the registries' `rootcertbundle`.
pub const BUNDLE_FILE: &str = "bundle.pem";
/// The file holding the realm's JWKS, for registry 3.x's `jwks`.
pub const JWKS_FILE: &str = "jwks.json";

/// Loading a realm's keys failed.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A key's files do not hold the key its record names.
    #[error("{dir}: holds key {found}, but the realm's key {generation} is {expected}")]
    WrongKey {
        dir: String,
        generation: i64,
        expected: String,
        found: String,
    },
    #[error("the stored certificate of key {kid}: {reason}")]
    BadRecord { kid: String, reason: String },
}

/// No key can sign for the realm right now.
#[derive(Debug, thiserror::Error)]
pub enum NoSigningKey {
    #[error("no signing key is active (the last one was revoked; run keys rotate)")]
    NoneActive,
    #[error("signing key {kid} cannot be loaded: {reason}")]
    Unloadable { kid: String, reason: String },
}

/// A private key ready to sign, with the header its tokens carry.
pub struct LoadedKey {
    pub key: SigningKey,
    pub signer: Signer,
}

/// One key of the ring: its record, public half, and private half when it may sign.
pub struct RingKey {
    pub record: SigningKeyRecord,
    pub certificate: Certificate,
    pub jwk: Jwk,
    loaded: Option<Result<Arc<LoadedKey>, Arc<RingError>>>,
}

/// A realm's keys at one reading of the database.
pub struct KeyRing {
    counter: i64,
    retire_after_ms: i64,
    ca: Option<Certificate>,
    keys: Vec<RingKey>,
    entries: Vec<Entry>,
}

/// What a ring is loaded for: the realm and how its tokens are made.
pub struct RingSpec<'a> {
    pub realm: &'a RealmName,
    pub realm_dir: &'a Path,
    pub header: TokenHeader,
    pub token_ttl_secs: u64,
}

impl RingSpec<'_> {
    /// How long a superseded key stays published: a token's life plus the registries' leeway.
    pub fn retire_after_ms(&self) -> i64 {
        i64::try_from(self.token_ttl_secs)
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000)
            + REGISTRY_LEEWAY_MS
    }
}

impl KeyRing {
    /// Reads the realm's keys as stored now (recording its first key when it has none), reusing
    /// the private keys `previous` already parsed. `counter` is the change counter the records
    /// were read under.
    pub async fn load(
        store: &Store,
        spec: &RingSpec<'_>,
        counter: i64,
        previous: Option<&KeyRing>,
    ) -> Result<KeyRing, RingError> {
        let records = first_key(store, spec).await?;
        let ca = match store.find_realm_ca(spec.realm).await? {
            Some(pem) => {
                Some(
                    Certificate::from_pem(&pem).map_err(|reason| RingError::BadRecord {
                        kid: format!("CA of realm {}", spec.realm),
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let entries: Vec<Entry> = records.iter().map(entry).collect();
        let now = super::now_ms();
        let states = schedule::states(&entries, now, spec.retire_after_ms());
        let known: HashMap<&str, &Arc<LoadedKey>> = previous
            .map(|ring| {
                ring.keys
                    .iter()
                    .filter_map(|k| match &k.loaded {
                        Some(Ok(loaded)) => Some((k.record.kid.as_str(), loaded)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut keys = Vec::with_capacity(records.len());
        for (record, state) in records.into_iter().zip(states) {
            let certificate = Certificate::from_pem(&record.certificate).map_err(|reason| {
                RingError::BadRecord {
                    kid: record.kid.clone(),
                    reason,
                }
            })?;
            let loaded = state
                .may_sign()
                .then(|| match known.get(record.kid.as_str()) {
                    Some(loaded) => Ok(Arc::clone(loaded)),
                    None => load_key(spec, &record).map(Arc::new).map_err(Arc::new),
                });
            keys.push(RingKey {
                jwk: jwk(&certificate, &record.kid),
                certificate,
                record,
                loaded,
            });
        }
        Ok(KeyRing {
            counter,
            retire_after_ms: spec.retire_after_ms(),
            ca,
            keys,
            entries,
        })
    }

    /// The change counter the ring was read under.
    pub fn counter(&self) -> i64 {
        self.counter
    }

    /// The realm's CA certificate, when it has one.
    pub fn ca(&self) -> Option<&Certificate> {
        self.ca.as_ref()
    }

    /// The key that signs at `now_ms`.
    pub fn active(&self, now_ms: i64) -> Result<&LoadedKey, NoSigningKey> {
        let index = schedule::active(&self.entries, now_ms).ok_or(NoSigningKey::NoneActive)?;
        let key = &self.keys[index];
        match &key.loaded {
            Some(Ok(loaded)) => Ok(loaded),
            Some(Err(error)) => Err(NoSigningKey::Unloadable {
                kid: key.record.kid.clone(),
                reason: error.to_string(),
            }),
            None => Err(NoSigningKey::Unloadable {
                kid: key.record.kid.clone(),
                reason: "it was not loaded".to_owned(),
            }),
        }
    }

    /// Every key with its state at `now_ms`, oldest first.
    pub fn states(&self, now_ms: i64) -> Vec<(&RingKey, KeyState)> {
        self.keys
            .iter()
            .zip(schedule::states(
                &self.entries,
                now_ms,
                self.retire_after_ms,
            ))
            .collect()
    }

    /// The keys whose private half failed to load although they may sign, with why.
    pub fn unloadable(&self) -> Vec<(&RingKey, &Arc<RingError>)> {
        self.keys
            .iter()
            .filter_map(|k| match &k.loaded {
                Some(Err(error)) => Some((k, error)),
                _ => None,
            })
            .collect()
    }

    /// The JWKS of the keys published at `now_ms` (pending, active, superseded).
    pub fn jwks(&self, now_ms: i64) -> JwkSet {
        JwkSet {
            keys: self
                .states(now_ms)
                .into_iter()
                .filter(|(_, state)| state.is_published())
                .map(|(key, _)| key.jwk.clone())
                .collect(),
        }
    }

    /// The certificate bundle at `now_ms`: the CA's certificate first, when there is a CA, then
    /// the certificate of every published key.
    pub fn pem_bundle(&self, now_ms: i64) -> String {
        let mut bundle: String = self.ca.iter().map(|ca| ca.pem().to_owned()).collect();
        for (key, state) in self.states(now_ms) {
            if state.is_published() {
                bundle.push_str(key.certificate.pem());
            }
        }
        bundle
    }

    /// Writes the bundle and the JWKS at `now_ms` to `<realm_dir>/bundle.pem` and `jwks.json`,
    /// each replaced atomically.
    pub fn write_files(&self, realm_dir: &Path, now_ms: i64) -> Result<(), KeyError> {
        file::write_public(
            &realm_dir.join(BUNDLE_FILE),
            self.pem_bundle(now_ms).as_bytes(),
        )?;
        let mut jwks = serde_json::to_vec_pretty(&self.jwks(now_ms)).expect("a JWKS serializes");
        jwks.push(b'\n');
        file::write_public(&realm_dir.join(JWKS_FILE), &jwks)
    }

    /// When the schedule next changes by itself (a key activates or retires), if ever.
    pub fn next_change(&self, now_ms: i64) -> Option<i64> {
        schedule::next_change(&self.entries, now_ms, self.retire_after_ms)
    }

    /// The newest key's generation (0 when there is none).
    pub fn last_generation(&self) -> i64 {
        self.keys.last().map_or(0, |k| k.record.generation)
    }
}

/// The directory of a key whose record names `dir`, below the realm's `realm_dir`.
pub fn key_dir(realm_dir: &Path, dir: &str) -> std::path::PathBuf {
    if dir == FIRST_KEY_DIR {
        realm_dir.to_owned()
    } else {
        realm_dir.join(dir)
    }
}

fn entry(record: &SigningKeyRecord) -> Entry {
    Entry {
        generation: record.generation,
        activate_at_ms: record.activate_at_ms,
        revoked_at_ms: record.revoked_at_ms,
    }
}

/// Loads the private key a record names; its files must hold that key.
fn load_key(spec: &RingSpec<'_>, record: &SigningKeyRecord) -> Result<LoadedKey, RingError> {
    let dir = key_dir(spec.realm_dir, &record.dir);
    let key = SigningKey::load(&dir)?;
    if key.kid() != record.kid {
        return Err(RingError::WrongKey {
            dir: dir.display().to_string(),
            generation: record.generation,
            expected: record.kid.clone(),
            found: key.kid().to_owned(),
        });
    }
    let signer = Signer::new(&key, spec.header);
    Ok(LoadedKey { key, signer })
}

/// The realm's key records; a realm with none gets its first key recorded: the key in the realm's
/// directory (made there when missing, kept when an earlier version made it), signing from the
/// start of time. Two processes doing this at once record the same key once.
async fn first_key(store: &Store, spec: &RingSpec<'_>) -> Result<Vec<SigningKeyRecord>, RingError> {
    let records = store.list_signing_keys(spec.realm).await?;
    if !records.is_empty() {
        return Ok(records);
    }
    let key = SigningKey::load_or_create(spec.realm_dir, spec.realm)?;
    let record = SigningKeyRecord {
        realm: spec.realm.clone(),
        generation: 1,
        kid: key.kid().to_owned(),
        dir: FIRST_KEY_DIR.to_owned(),
        certificate: key.cert_pem().to_owned(),
        ca_issued: false,
        not_after_ms: key.certificate().not_after_ms(),
        created_at_ms: super::now_ms(),
        activate_at_ms: 0,
        revoked_at_ms: None,
    };
    match store.insert_signing_key(&record).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(store.list_signing_keys(spec.realm).await?)
}
