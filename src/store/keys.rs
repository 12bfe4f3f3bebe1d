//! Signing keys and realm certificate authorities as stored: each key's public half (key id,
//! certificate), where its private key file is, and its schedule (when it signs from, when it was
//! revoked). The files themselves are `keys`' business.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};
use crate::names::RealmName;

/// One signing key of a realm, as stored. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub realm: RealmName,
    /// 1, 2, ... in the order the keys were made.
    pub generation: i64,
    /// The libtrust key id tokens carry.
    pub kid: String,
    /// The key's directory below the realm's key directory (`.` for the first key of a realm made
    /// before keys rotated).
    pub dir: String,
    /// The key's certificate, PEM.
    pub certificate: String,
    /// Issued by the realm's CA (otherwise self-signed).
    pub ca_issued: bool,
    pub not_after_ms: i64,
    pub created_at_ms: i64,
    /// When it starts signing.
    pub activate_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

const COLUMNS: &str = "realm, generation, kid, dir, certificate, ca_issued, not_after_ms, \
                       created_at_ms, activate_at_ms, revoked_at_ms";

impl Store {
    /// A realm's signing keys, oldest first.
    pub async fn list_signing_keys(
        &self,
        realm: &RealmName,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE realm = $1 ORDER BY generation"
        ))
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Records a new key. `Conflict` when the generation or key id is taken (another rotation of
    /// the same realm won the race).
    pub async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(key.realm.as_str())
        .bind(key.generation)
        .bind(key.kid.as_str())
        .bind(key.dir.as_str())
        .bind(key.certificate.as_str())
        .bind(i64::from(key.ca_issued))
        .bind(key.not_after_ms)
        .bind(key.created_at_ms)
        .bind(key.activate_at_ms)
        .bind(key.revoked_at_ms)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "signing key {} of realm {}",
                key.generation, key.realm
            )));
        }
        Ok(())
    }

    /// Moves a key's activation time, unless it is revoked; `NotFound` when no such live key.
    pub async fn set_signing_key_activation(
        &self,
        realm: &RealmName,
        kid: &str,
        activate_at_ms: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE signing_keys SET activate_at_ms = $3 \
             WHERE realm = $1 AND kid = $2 AND revoked_at_ms IS NULL",
        )
        .bind(realm.as_str())
        .bind(kid)
        .bind(activate_at_ms)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "signing key {kid} of realm {realm}"
            )));
        }
        Ok(())
    }

    /// Revokes a key; `NotFound` when no such key is unrevoked.
    pub async fn revoke_signing_key(
        &self,
        realm: &RealmName,
        kid: &str,
        revoked_at_ms: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE signing_keys SET revoked_at_ms = $3 \
             WHERE realm = $1 AND kid = $2 AND revoked_at_ms IS NULL",
        )
        .bind(realm.as_str())
        .bind(kid)
        .bind(revoked_at_ms)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "unrevoked signing key {kid} of realm {realm}"
            )));
        }
        Ok(())
    }

    /// The realm's CA certificate (PEM), when it has one.
    pub async fn find_realm_ca(&self, realm: &RealmName) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT certificate FROM realm_cas WHERE realm = $1")
            .bind(realm.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.try_get("certificate")).transpose()?)
    }

    /// Records a realm's CA certificate; `Conflict` when the realm has one.
    pub async fn insert_realm_ca(
        &self,
        realm: &RealmName,
        certificate: &str,
        created_at_ms: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO realm_cas (realm, certificate, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (realm) DO NOTHING",
        )
        .bind(realm.as_str())
        .bind(certificate)
        .bind(created_at_ms)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a certificate authority of realm {realm}"
            )));
        }
        Ok(())
    }
}

fn key_from_row(row: &AnyRow) -> Result<SigningKeyRecord, StoreError> {
    let realm: String = row.try_get("realm")?;
    let ca_issued: i64 = row.try_get("ca_issued")?;
    Ok(SigningKeyRecord {
        realm: RealmName::parse(&realm).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        generation: row.try_get("generation")?,
        kid: row.try_get("kid")?,
        dir: row.try_get("dir")?,
        certificate: row.try_get("certificate")?,
        ca_issued: ca_issued != 0,
        not_after_ms: row.try_get("not_after_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
        activate_at_ms: row.try_get("activate_at_ms")?,
        revoked_at_ms: row.try_get("revoked_at_ms")?,
    })
}
