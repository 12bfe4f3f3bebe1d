//! The recent audit trail as stored: events appended in batches, read newest first for one realm,
//! and deleted once older than the retention or beyond the most kept. What goes in is `crate::audit`'s business.

use sqlx::Row;

use super::{Store, StoreError};

/// Rows one INSERT carries at most. A statement costs far more CPU than a row, but not without
/// bound: sqlx finds each SQLite parameter by its name, which SQLite looks up in a list, so the
/// binding grows with the square of the parameters (5 a row).
const ROWS_PER_STATEMENT: usize = 16;

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
    /// Appends `events` in one transaction, a statement per [`ROWS_PER_STATEMENT`] of them: each
    /// statement and each transaction costs far more CPU than a row does.
    pub async fn insert_audit_events(&self, events: &[NewAuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO audit_events (realm, at_ms, event, level, fields) VALUES ",
            );
            for row in 0..chunk.len() {
                let first = row * 5 + 1;
                if row > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    first,
                    first + 1,
                    first + 2,
                    first + 3,
                    first + 4
                ));
            }
            let mut insert = sqlx::query(&sql);
            for event in chunk {
                insert = insert
                    .bind(&event.realm)
                    .bind(event.at_ms)
                    .bind(&event.event)
                    .bind(&event.level)
                    .bind(&event.fields);
            }
            insert.execute(&mut *tx).await?;
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

    /// Deletes the events logged before `before_ms`, and the oldest beyond the newest `keep`;
    /// returns how many.
    pub async fn prune_audit_events(&self, before_ms: i64, keep: i64) -> Result<u64, StoreError> {
        let old = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        let surplus = sqlx::query(
            "DELETE FROM audit_events WHERE id <= \
             (SELECT id FROM audit_events ORDER BY id DESC LIMIT 1 OFFSET $1)",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(old.rows_affected() + surplus.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn event(realm: &str, at_ms: i64, name: &str) -> NewAuditEvent {
        NewAuditEvent {
            realm: realm.to_owned(),
            at_ms,
            event: name.to_owned(),
            level: "INFO".to_owned(),
            fields: "{}".to_owned(),
        }
    }

    #[tokio::test]
    async fn events_come_back_newest_first_by_realm_and_the_oldest_go_first() {
        let (_dir, store, _path) = test_store().await;
        let events: Vec<NewAuditEvent> = (0..6)
            .map(|i| event(if i == 3 { "other" } else { "test" }, 1_000 + i, "granted"))
            .chain([event("test", 2_000, "refused")])
            .collect();
        store.insert_audit_events(&events).await.unwrap();
        let all = |query: AuditQuery| {
            let store = store.clone();
            async move {
                store
                    .audit_events("test", &query)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.at_ms)
                    .collect::<Vec<_>>()
            }
        };
        let everything = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        assert_eq!(
            all(everything.clone()).await,
            [2_000, 1_005, 1_004, 1_002, 1_001, 1_000]
        );
        let refused = AuditQuery {
            event: Some("refused".into()),
            ..everything.clone()
        };
        assert_eq!(all(refused).await, [2_000]);
        let newest = store.audit_events("test", &everything).await.unwrap();
        let older = AuditQuery {
            before: Some(newest[1].id),
            limit: 2,
            ..AuditQuery::default()
        };
        assert_eq!(all(older).await, [1_004, 1_002]);

        // Older than 1001 ms go; then all but the newest three, whatever their realm.
        assert_eq!(store.prune_audit_events(1_001, 100).await.unwrap(), 1);
        assert_eq!(store.prune_audit_events(0, 3).await.unwrap(), 3);
        assert_eq!(all(everything).await, [2_000, 1_005, 1_004]);
    }
}
