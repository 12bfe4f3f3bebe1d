//! Realms: their name, accepted services, issuer, token lifetime and which key-identifying fields
//! their tokens carry. What belongs to a realm (users, groups, grants, MUNGE mappings) is stored by
//! its own module.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{unix_now, Store, StoreError};
use crate::jwt::TokenHeader;
use crate::names::RealmName;

/// A realm as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmRecord {
    pub name: RealmName,
    /// Accepted `service` values.
    pub services: Vec<String>,
    /// Explicit issuer; `None` means the realm's token URL.
    pub issuer: Option<String>,
    pub token_ttl_secs: u64,
    /// Which key-identifying fields its tokens carry.
    pub token_header: TokenHeader,
}

impl Store {
    /// Adds a realm.
    pub async fn create_realm(&self, realm: &RealmRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO realms (name, services, issuer, token_ttl_secs, token_header, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(realm.name.as_str())
        .bind(realm.services.join(" "))
        .bind(realm.issuer.clone())
        .bind(realm.token_ttl_secs as i64)
        .bind(realm.token_header.as_str())
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("realm {}", realm.name)));
        }
        Ok(())
    }

    /// Every realm, by name.
    pub async fn list_realms(&self) -> Result<Vec<RealmRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, services, issuer, token_ttl_secs, token_header FROM realms ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(realm_from_row).collect()
    }

    /// One realm.
    pub async fn find_realm(&self, name: &RealmName) -> Result<Option<RealmRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, services, issuer, token_ttl_secs, token_header FROM realms WHERE name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(realm_from_row).transpose()
    }

    /// Changes which key-identifying fields a realm's tokens carry; `NotFound` when no such realm.
    pub async fn set_realm_token_header(
        &self,
        name: &RealmName,
        header: TokenHeader,
    ) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE realms SET token_header = $2 WHERE name = $1")
            .bind(name.as_str())
            .bind(header.as_str())
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("realm {name}")));
        }
        Ok(())
    }

    pub(super) async fn require_realm(&self, realm: &RealmName) -> Result<(), StoreError> {
        match self.find_realm(realm).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!("realm {realm}"))),
        }
    }
}

fn realm_from_row(row: &AnyRow) -> Result<RealmRecord, StoreError> {
    let name: String = row.try_get("name")?;
    let services: String = row.try_get("services")?;
    let ttl: i64 = row.try_get("token_ttl_secs")?;
    let header: String = row.try_get("token_header")?;
    Ok(RealmRecord {
        name: RealmName::parse(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        services: services
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        issuer: row.try_get("issuer")?,
        token_ttl_secs: u64::try_from(ttl)
            .map_err(|_| StoreError::Corrupt(format!("realm {name}: token_ttl_secs")))?,
        token_header: header
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("realm {name}: {e}")))?,
    })
}
