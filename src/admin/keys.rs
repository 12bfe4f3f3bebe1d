//! Key use cases: every realm's loaded keys (key id and directory), and a realm's public keys in the
//! two forms registries verify with (a PEM certificate bundle, a JWKS).

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;

use super::realms::{self, KeyPlace};
use super::AdminError;
use crate::names::RealmName;
use crate::realm::Realm;
use crate::store::Store;

/// Every realm with its keys loaded (created when missing), so a broken key file is reported here.
pub async fn list(store: &Store, place: &KeyPlace) -> Result<Vec<Arc<Realm>>, AdminError> {
    Ok(realms::realms(store, place).load_all().await?)
}

/// A realm's certificate as PEM, for the registry's `rootcertbundle`.
pub async fn pem_bundle(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
) -> Result<String, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    Ok(realm.keys.cert_pem().to_owned())
}

/// A realm's public key as a JWKS, for registry 3.x's `jwks`.
pub async fn jwks(
    store: &Store,
    place: &KeyPlace,
    realm: &RealmName,
) -> Result<JwkSet, AdminError> {
    let realm = realms::load(store, place, realm).await?;
    Ok(realm.keys.jwks())
}
