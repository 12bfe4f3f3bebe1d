//! Key use cases: each realm's keys and their states, the public keys registries verify with (a PEM
//! certificate bundle, a JWKS), rotation, early activation, revocation, and giving a realm a
//! certificate authority. A change is recorded in the database, so every instance follows it at
//! the same moment, and re-publishes the realm's `bundle.pem` and `jwks.json`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;

use super::realms::{self, KeyPlace};
use super::AdminError;
use crate::config::KeySettings;
use crate::jwt::TokenHeader;
use crate::keys::cert::{self, Authority};
use crate::keys::ring::{
    key_dir, KeyRing, NoSigningKey, RingKey, ACTIVATION_MARGIN_MS, BUNDLE_FILE, JWKS_FILE,
};
use crate::keys::schedule::KeyState;
use crate::keys::{
    self, now_ms, KeyError, SigningKey, CERT_FILE, CERT_VALIDITY_DAYS, KEY_FILE, MS_PER_DAY,
};
use crate::names::RealmName;
use crate::realm::Realm;
use crate::store::{SigningKeyRecord, Store, StoreError};

/// The directory of a realm's CA below the realm's key directory.
pub const CA_DIR: &str = "ca";
/// How long before its certificate expires a key that still signs is rotated automatically, beyond
/// the life of the tokens it signs.
const EXPIRY_MARGIN_MS: i64 = 3_600_000;

/// Every realm with its keys as stored now (a realm's first key is made when missing). A key that
/// signs now and cannot be loaded is an error, so a broken key file is reported here; keys that
/// will sign later and cannot be loaded are listed by [`KeyRing::unloadable`].
pub async fn list(
    store: &Store,
    place: &KeyPlace,
) -> Result<Vec<(Arc<Realm>, Arc<KeyRing>)>, AdminError> {
    let mut realms = Vec::new();
    for realm in realms::realms(store, place).load_all().await? {
        let keys = realm.keys();
        if let Err(NoSigningKey::Unloadable { kid, reason }) = keys.active(now_ms()) {
            return Err(AdminError::KeyUnloadable { kid, reason });
        }
        realms.push((realm, keys));
    }
    Ok(realms)
}

/// A realm's certificate bundle now, for the registry's `rootcertbundle`.
pub async fn pem_bundle(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
) -> Result<String, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    Ok(realm.keys().pem_bundle(now_ms()))
}

/// A realm's published keys now, as a JWKS for registry 3.x's `jwks`.
pub async fn jwks(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
) -> Result<JwkSet, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    Ok(realm.keys().jwks(now_ms()))
}

/// A key made by a rotation or for a new CA.
pub struct NewKey {
    pub kid: String,
    pub activates_at_ms: i64,
    /// Registries must be given the new bundle or JWKS (and restarted) before it signs.
    pub needs_publication: bool,
    /// The realm's published files, rewritten.
    pub bundle: PathBuf,
    pub jwks: PathBuf,
}

/// Makes the realm's next key. It is published at once and signs after
/// `keys.publish_before_use_secs`, or, in a CA realm whose tokens carry `x5c`, as soon as every
/// instance has heard of it. `ca_key` is where the CA's private key is when it is not in the
/// realm's `ca/` directory.
pub async fn rotate(
    store: &Store,
    place: &KeyPlace,
    settings: &KeySettings,
    realm: &RealmName,
    ca_key: Option<&Path>,
) -> Result<NewKey, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    let keys = realm.keys();
    let now = now_ms();
    refuse_if_pending(&realm, &keys, now)?;
    let authority = authority(&realm, &keys, ca_key)?;
    let trusted_already = authority.is_some() && realm.token_header == TokenHeader::X5c;
    let delay_ms = if trusted_already {
        ACTIVATION_MARGIN_MS
    } else {
        publication_ms(settings)
    };
    let record = create(
        store,
        &realm,
        &keys,
        settings,
        authority.as_ref(),
        now + delay_ms,
    )
    .await?;
    publish(store, place, &realm.name, record, !trusted_already).await
}

/// Rotates a CA realm's keys when its active key has signed for `keys.rotate_every` (or its
/// certificate would not outlast the tokens it signs) and no key is pending: the server's
/// automatic rotation. Returns the new key, or `None` when no rotation was due.
pub async fn rotate_if_due(
    store: &Store,
    place: &KeyPlace,
    settings: &KeySettings,
    realm: &RealmName,
) -> Result<Option<NewKey>, AdminError> {
    let Some(every) = settings.rotate_every else {
        return Ok(None);
    };
    let loaded = realms::load(store, place, realm).await?;
    let keys = loaded.keys();
    if keys.ca().is_none() {
        return Ok(None);
    }
    let now = now_ms();
    let states = keys.states(now);
    if states
        .iter()
        .any(|(_, state)| matches!(state, KeyState::Pending { .. }))
    {
        return Ok(None);
    }
    let due = match states.iter().find(|(_, state)| *state == KeyState::Active) {
        // Nothing signs (the last key was revoked with no replacement): make a key that does.
        None => true,
        Some((key, _)) => {
            let signing_since = key.record.activate_at_ms.max(key.record.created_at_ms);
            // Its certificate must outlast the tokens it signs, with an hour to spare.
            let token_life_ms =
                i64::try_from(loaded.token_ttl_secs).unwrap_or(i64::MAX / 1000) * 1000;
            let outlasts = key.certificate.not_after_ms() - now > token_life_ms + EXPIRY_MARGIN_MS;
            signing_since + every.as_millis() <= now || !outlasts
        }
    };
    if !due {
        return Ok(None);
    }
    match rotate(store, place, settings, realm, None).await {
        Ok(key) => Ok(Some(key)),
        Err(AdminError::KeyRace(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes a pending key sign as soon as every instance has heard of it. Returns when it signs from.
pub async fn activate(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
    kid: &str,
) -> Result<i64, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    let keys = realm.keys();
    let (_, state) = find_key(&realm, &keys, kid, now_ms())?;
    if !matches!(state, KeyState::Pending { .. }) {
        return Err(AdminError::KeyNotPending {
            kid: kid.to_owned(),
            state: state.name(),
        });
    }
    let at = now_ms() + ACTIVATION_MARGIN_MS;
    store
        .set_signing_key_activation(&realm.name, kid, at)
        .await?;
    republish(store, place, &realm.name).await?;
    Ok(at)
}

/// What a revocation did.
pub struct Revoked {
    pub kid: String,
    /// It was signing: the key that signs now instead, if one could be made.
    pub replacement: Option<String>,
    /// Why no replacement could be made, when none was.
    pub no_replacement: Option<String>,
    /// Its certificate was issued by the realm's CA: registries that trust the CA keep trusting
    /// it until it expires (they read no revocation list).
    pub ca_issued_until_ms: Option<i64>,
    pub bundle: PathBuf,
    pub jwks: PathBuf,
}

/// Stops a key at once: it never signs again and leaves the JWKS and bundle; its private key file
/// is deleted. When it was signing, a pending key takes over at once, or else a new key does (a
/// CA realm's needs the CA's private key).
pub async fn revoke(
    store: &Store,
    place: &KeyPlace,
    settings: &KeySettings,
    realm: &RealmName,
    kid: &str,
    ca_key: Option<&Path>,
) -> Result<Revoked, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    let keys = realm.keys();
    let now = now_ms();
    let (key, state) = find_key(&realm, &keys, kid, now)?;
    if matches!(state, KeyState::Revoked { .. } | KeyState::Retired { .. }) {
        return Err(AdminError::KeyGone {
            kid: kid.to_owned(),
            state: state.name(),
        });
    }
    let record = key.record.clone();
    // Revoked first, whatever else fails: from this moment it signs nothing.
    store.revoke_signing_key(&realm.name, kid, now).await?;
    let (replacement, no_replacement) = if state == KeyState::Active {
        match replace(store, &realm, &keys, settings, ca_key).await {
            Ok(next) => (Some(next), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let key_file = key_dir(&realm.keys_dir, &record.dir).join(KEY_FILE);
    if let Err(error) = std::fs::remove_file(&key_file) {
        if error.kind() != std::io::ErrorKind::NotFound {
            return Err(KeyError::Io {
                path: key_file,
                error,
            }
            .into());
        }
    }
    republish(store, place, &realm.name).await?;
    Ok(Revoked {
        kid: kid.to_owned(),
        replacement,
        no_replacement,
        ca_issued_until_ms: record.ca_issued.then_some(record.not_after_ms),
        bundle: realm.keys_dir.join(BUNDLE_FILE),
        jwks: realm.keys_dir.join(JWKS_FILE),
    })
}

/// A key to sign in place of a revoked one, from now: the pending key, or else a new one.
async fn replace(
    store: &Store,
    realm: &Realm,
    keys: &KeyRing,
    settings: &KeySettings,
    ca_key: Option<&Path>,
) -> Result<String, AdminError> {
    let now = now_ms();
    let pending = keys.states(now).into_iter().find_map(|(key, state)| {
        matches!(state, KeyState::Pending { .. }).then(|| key.record.kid.clone())
    });
    if let Some(next) = pending {
        store
            .set_signing_key_activation(&realm.name, &next, now)
            .await?;
        return Ok(next);
    }
    let authority = authority(realm, keys, ca_key)?;
    Ok(
        create(store, realm, keys, settings, authority.as_ref(), now)
            .await?
            .kid,
    )
}

/// A realm's new certificate authority and its first key.
pub struct NewCa {
    /// The CA certificate, for every registry's `rootcertbundle`.
    pub certificate: PathBuf,
    /// The CA's private key: keep it here for rotation in the server, or move it offline and pass
    /// it to `keys rotate --ca-key`.
    pub key: PathBuf,
    pub first_key: NewKey,
}

/// Gives a realm a certificate authority (`<realm>/ca/key.pem`, mode 0600, and `ca/cert.pem`)
/// and its first CA-issued key, published at once and signing after
/// `keys.publish_before_use_secs`: registries must have the new bundle (holding the CA) first.
/// The realm's self-signed keys keep working until that key takes over and their tokens expire.
pub async fn ca_init(
    store: &Store,
    place: &KeyPlace,
    settings: &KeySettings,
    realm: &RealmName,
) -> Result<NewCa, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    let keys = realm.keys();
    if keys.ca().is_some() {
        return Err(AdminError::CaExists(realm.name.clone()));
    }
    let now = now_ms();
    refuse_if_pending(&realm, &keys, now)?;
    let dir = realm.keys_dir.join(CA_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|error| KeyError::Io {
            path: dir.clone(),
            error,
        })?;
    let key_path = dir.join(KEY_FILE);
    if key_path.exists() {
        // Left by an earlier attempt that was not recorded: never reuse a CA key of unknown age.
        return Err(AdminError::Keys(KeyError::BadKey {
            path: key_path,
            reason: "a CA key is there already, but the realm records no CA; move it away first"
                .to_owned(),
        }));
    }
    let authority = Authority::create(
        &key_path,
        &realm.name,
        now + settings.ca_lifetime.as_millis(),
    )?;
    let cert_path = dir.join(CERT_FILE);
    keys::write_public_file(&cert_path, authority.certificate().pem().as_bytes())?;
    match store
        .insert_realm_ca(&realm.name, authority.certificate().pem(), now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(AdminError::CaExists(realm.name.clone())),
        Err(e) => return Err(e.into()),
    }
    let record = create(
        store,
        &realm,
        &keys,
        settings,
        Some(&authority),
        now + publication_ms(settings),
    )
    .await?;
    let first_key = publish(store, place, &realm.name, record, true).await?;
    Ok(NewCa {
        certificate: cert_path,
        key: key_path,
        first_key,
    })
}

/// How long a key is published before it signs when registries must learn it.
fn publication_ms(settings: &KeySettings) -> i64 {
    (i64::try_from(settings.publish_before_use_secs).unwrap_or(i64::MAX / 1000) * 1000)
        .max(ACTIVATION_MARGIN_MS)
}

fn refuse_if_pending(realm: &Realm, keys: &KeyRing, now: i64) -> Result<(), AdminError> {
    for (key, state) in keys.states(now) {
        if let KeyState::Pending { activates_at_ms } = state {
            return Err(AdminError::KeyPending {
                realm: realm.name.clone(),
                kid: key.record.kid.clone(),
                activates_at: keys::format_ms(activates_at_ms),
            });
        }
    }
    Ok(())
}

/// The key `kid` of the realm and its state at `now`.
fn find_key<'a>(
    realm: &Realm,
    keys: &'a KeyRing,
    kid: &str,
    now: i64,
) -> Result<(&'a RingKey, KeyState), AdminError> {
    keys.states(now)
        .into_iter()
        .find(|(key, _)| key.record.kid == kid)
        .ok_or_else(|| AdminError::NoSuchKey {
            realm: realm.name.clone(),
            kid: kid.to_owned(),
        })
}

/// The realm's CA with its private key, when the realm has a CA.
fn authority(
    realm: &Realm,
    keys: &KeyRing,
    ca_key: Option<&Path>,
) -> Result<Option<Authority>, AdminError> {
    let Some(certificate) = keys.ca() else {
        return Ok(None);
    };
    let path = ca_key.map_or_else(
        || realm.keys_dir.join(CA_DIR).join(KEY_FILE),
        Path::to_owned,
    );
    if !path.exists() {
        return Err(AdminError::CaKeyMissing {
            realm: realm.name.clone(),
            path: path.display().to_string(),
        });
    }
    Ok(Some(Authority::load(&path, &realm.name, certificate)?))
}

/// Makes and records the realm's next key, signing from `activate_at_ms`; certified by
/// `authority` when given, else self-signed.
async fn create(
    store: &Store,
    realm: &Realm,
    keys: &KeyRing,
    settings: &KeySettings,
    authority: Option<&Authority>,
    activate_at_ms: i64,
) -> Result<SigningKeyRecord, AdminError> {
    let generation = keys.last_generation() + 1;
    let now = now_ms();
    let key = SigningKey::create(&realm.keys_dir, |pair, path| match authority {
        Some(ca) => ca.certify(
            pair,
            generation,
            now + settings.leaf_lifetime.as_millis(),
            path,
        ),
        None => cert::self_signed(
            pair,
            &realm.name,
            now + CERT_VALIDITY_DAYS * MS_PER_DAY,
            path,
        ),
    })?;
    let dir = key
        .dir()
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let record = SigningKeyRecord {
        realm: realm.name.clone(),
        generation,
        kid: key.kid().to_owned(),
        dir,
        certificate: key.cert_pem().to_owned(),
        ca_issued: authority.is_some(),
        not_after_ms: key.certificate().not_after_ms(),
        created_at_ms: now,
        activate_at_ms,
        revoked_at_ms: None,
    };
    match store.insert_signing_key(&record).await {
        Ok(()) => Ok(record),
        Err(StoreError::Conflict(_)) => {
            // Another process recorded this generation first: our key was never used.
            let _ = std::fs::remove_dir_all(key.dir());
            Err(AdminError::KeyRace(realm.name.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Re-publishes the realm's files and describes the new key.
async fn publish(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
    record: SigningKeyRecord,
    needs_publication: bool,
) -> Result<NewKey, AdminError> {
    let (bundle, jwks) = republish(store, place, realm).await?;
    Ok(NewKey {
        kid: record.kid,
        activates_at_ms: record.activate_at_ms,
        needs_publication,
        bundle,
        jwks,
    })
}

/// Writes the realm's `bundle.pem` and `jwks.json` as its keys are stored now.
pub async fn republish(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
) -> Result<(PathBuf, PathBuf), AdminError> {
    let realm = realms::load(store, place, realm).await?;
    realm.keys().write_files(&realm.keys_dir, now_ms())?;
    Ok((
        realm.keys_dir.join(BUNDLE_FILE),
        realm.keys_dir.join(JWKS_FILE),
    ))
}
