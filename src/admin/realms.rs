//! Realm use cases: add a realm (keys first, then the record), change its token header, list realms
//! with their effective issuer, and load one with its keys for its registry configuration.

use std::path::PathBuf;
use std::sync::Arc;

use super::AdminError;
use crate::jwt::{TokenHeader, MIN_TOKEN_TTL_SECS};
use crate::keys::SigningKey;
use crate::names::{Issuer, RealmName, ServiceName};
use crate::realm::{self, Realm, Realms, MAX_TOKEN_TTL_SECS};
use crate::store::{RealmRecord, Store};

/// Where realms' keys live and the public URL their token endpoints are under (`[keys] dir` and
/// the server's public URL).
#[derive(Clone)]
pub struct KeyPlace {
    pub keys_dir: PathBuf,
    pub public_url: String,
}

/// A realm to add.
pub struct NewRealm {
    pub name: RealmName,
    /// Accepted `service` values; at least one.
    pub services: Vec<ServiceName>,
    /// Explicit issuer; `None` means the realm's token URL.
    pub issuer: Option<Issuer>,
    pub token_ttl_secs: u64,
    pub token_header: TokenHeader,
}

/// A stored realm and the issuer its tokens carry.
pub struct RealmSummary {
    pub record: RealmRecord,
    /// The explicit issuer, or else the realm's token URL.
    pub issuer: String,
}

/// Adds a realm: its keys are created (or checked) before the record, so a realm never exists
/// without usable keys. Returns the realm as loaded.
pub async fn add(
    store: &Store,
    place: &KeyPlace,
    realm: NewRealm,
) -> Result<Arc<Realm>, AdminError> {
    if !(MIN_TOKEN_TTL_SECS..=MAX_TOKEN_TTL_SECS).contains(&realm.token_ttl_secs) {
        return Err(AdminError::TokenTtl(realm.token_ttl_secs));
    }
    SigningKey::load_or_create(&place.keys_dir.join(realm.name.as_str()), &realm.name)?;
    store
        .create_realm(&RealmRecord {
            name: realm.name.clone(),
            services: realm
                .services
                .into_iter()
                .map(ServiceName::into_string)
                .collect(),
            issuer: realm.issuer.map(Issuer::into_string),
            token_ttl_secs: realm.token_ttl_secs,
            token_header: realm.token_header,
        })
        .await?;
    super::keys::republish(store, place, &realm.name).await?;
    load(store, place, &realm.name).await
}

/// Sets which key fields a realm's tokens carry (running servers apply it when restarted).
/// Returns the realm as loaded with the new setting.
pub async fn set_token_header(
    store: &Store,
    place: &KeyPlace,
    name: &RealmName,
    token_header: TokenHeader,
) -> Result<Arc<Realm>, AdminError> {
    store.set_realm_token_header(name, token_header).await?;
    load(store, place, name).await
}

/// Every realm, by name, with its effective issuer.
pub async fn list(store: &Store, public_url: &str) -> Result<Vec<RealmSummary>, AdminError> {
    Ok(store
        .list_realms()
        .await?
        .into_iter()
        .map(|record| RealmSummary {
            issuer: record
                .issuer
                .clone()
                .unwrap_or_else(|| realm::token_url(public_url, &record.name)),
            record,
        })
        .collect())
}

/// The named realm with its keys (created when missing), URLs and signer.
pub async fn load(
    store: &Store,
    place: &KeyPlace,
    name: &RealmName,
) -> Result<Arc<Realm>, AdminError> {
    realms(store, place)
        .get(name)
        .await?
        .ok_or_else(|| AdminError::NoSuchRealm(name.clone()))
}

/// A realm cache for one use case.
pub(super) fn realms(store: &Store, place: &KeyPlace) -> Realms {
    Realms::new(
        store.clone(),
        place.keys_dir.clone(),
        place.public_url.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;

    #[tokio::test]
    async fn a_realm_is_added_with_its_keys_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseSettings {
            url: format!("sqlite://{}", dir.path().join("db").display()),
            ..DatabaseSettings::default()
        })
        .await
        .unwrap();
        let place = KeyPlace {
            keys_dir: dir.path().join("keys"),
            public_url: "https://auth.example.com".to_owned(),
        };
        let new = |token_ttl_secs| NewRealm {
            name: RealmName::parse("team").unwrap(),
            services: vec![ServiceName::parse("registry").unwrap()],
            issuer: None,
            token_ttl_secs,
            token_header: TokenHeader::X5c,
        };
        for ttl in [MIN_TOKEN_TTL_SECS - 1, MAX_TOKEN_TTL_SECS + 1] {
            let refused = add(&store, &place, new(ttl)).await;
            assert!(matches!(refused, Err(AdminError::TokenTtl(secs)) if secs == ttl));
        }
        assert!(!place.keys_dir.exists(), "no keys for a refused realm");

        let added = add(&store, &place, new(MIN_TOKEN_TTL_SECS)).await.unwrap();
        assert!(added.keys_dir.starts_with(&place.keys_dir));
        let listed = list(&store, &place.public_url).await.unwrap();
        let team = listed.iter().find(|r| r.record.name == added.name).unwrap();
        assert_eq!(team.issuer, added.token_url);
        assert!(matches!(
            load(&store, &place, &RealmName::parse("nope").unwrap()).await,
            Err(AdminError::NoSuchRealm(_))
        ));
    }
}
