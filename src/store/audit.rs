//! The recent audit trail as stored: events appended in batches, read newest first for one realm,
//! and deleted once older than the retention. What goes in is `crate::audit`'s business.

use sqlx::Row;

use super::{Store, StoreError};

/// An audit event to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub realm: String,
    pub at_ms: i64,
    pub event: String,
    pub level: String,
    /// A JSON object.
    pub fields: String,
}

/// A kept audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEventRecord {
    pub id: i64,
    pub at_ms: i64,
    pub event: String,
    pub level: String,
    /// A JSON object.
    pub fields: String,
}

/// Which events of a realm a reader wants.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events older than the event with this id.
    pub before: Option<i64>,
    /// Only events of this name.
    pub event: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Appends `events` in one transaction.
    pub async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (realm, at_ms, event, level, fields) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&event.realm)
            .bind(event.at_ms)
            .bind(&event.event)
            .bind(&event.level)
            .bind(&event.fields)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The realm's events that `query` selects, newest first.
    pub async fn audit_events(
        &self,
        realm: &str,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEventRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at_ms, event, level, fields FROM audit_events WHERE realm = $1",
        );
        let mut next = 2;
        if query.before.is_some() {
            sql.push_str(&format!(" AND id < ${next}"));
            next += 1;
        }
        if query.event.is_some() {
            sql.push_str(&format!(" AND event = ${next}"));
            next += 1;
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
        let mut select = sqlx::query(&sql).bind(realm);
        if let Some(before) = query.before {
            select = select.bind(before);
        }
        if let Some(event) = &query.event {
            select = select.bind(event);
        }
        let rows = select.bind(query.limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEventRecord {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    event: row.try_get("event")?,
                    level: row.try_get("level")?,
                    fields: row.try_get("fields")?,
                })
            })
            .collect()
    }

    /// Deletes the events logged before `at_ms`; returns how many.
    pub async fn prune_audit_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
