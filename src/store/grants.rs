//! Grants: the policy rules a realm keeps in the database, as text, in the order they were added.
//! `policy::Rule::parse` checks them; this module does not.

use sqlx::Row;

use super::{unix_now, Store, StoreError};
use crate::names::RealmName;

/// A policy rule kept in the database, as text; `policy::Rule::parse` checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Assigned by the database; 0 before insertion.
    pub id: i64,
    pub subject: String,
    pub resource: String,
    pub name: String,
    pub actions: Vec<String>,
    pub effect: String,
}

impl Store {
    /// Adds a grant (a policy rule kept in the database) and returns its id.
    pub async fn add_grant(
        &self,
        realm: &RealmName,
        grant: &GrantRecord,
    ) -> Result<i64, StoreError> {
        self.require_realm(realm).await?;
        let row = sqlx::query(
            "INSERT INTO grants (realm, subject, resource, name, actions, effect, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(realm.as_str())
        .bind(&grant.subject)
        .bind(&grant.resource)
        .bind(&grant.name)
        .bind(grant.actions.join(" "))
        .bind(&grant.effect)
        .bind(unix_now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Removes a grant by id.
    pub async fn remove_grant(&self, realm: &RealmName, id: i64) -> Result<(), StoreError> {
        let result = sqlx::query("DELETE FROM grants WHERE realm = $1 AND id = $2")
            .bind(realm.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("grant {id} in realm {realm}")));
        }
        Ok(())
    }

    /// A realm's grants, in the order they were added (their order in first-match mode).
    pub async fn list_grants(&self, realm: &RealmName) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, subject, resource, name, actions, effect FROM grants WHERE realm = $1 ORDER BY id",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let actions: String = row.try_get("actions")?;
                Ok(GrantRecord {
                    id: row.try_get("id")?,
                    subject: row.try_get("subject")?,
                    resource: row.try_get("resource")?,
                    name: row.try_get("name")?,
                    actions: actions.split(' ').map(str::to_owned).collect(),
                    effect: row.try_get("effect")?,
                })
            })
            .collect()
    }
}
