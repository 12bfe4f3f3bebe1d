//! The recent audit trail, read: a realm's kept audit events, newest first, a page at a time
//! (`crate::audit` keeps them).

use serde::Serialize;
use serde_json::Value;

use super::AdminError;
use crate::keys::format_ms;
use crate::names::RealmName;
use crate::store::{AuditQuery, Store};

/// Longest event name a reader may filter by.
pub const MAX_EVENT_NAME: usize = 64;

/// A kept audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    /// RFC 3339, UTC, whole seconds.
    pub at: String,
    pub at_ms: i64,
    pub event: String,
    pub level: String,
    /// The event's other fields, as logged.
    pub fields: Value,
}

/// An event name to filter by: lower-case letters, digits and `_`.
pub fn parse_event_name(name: &str) -> Result<String, AdminError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(AdminError::EventName)
    }
}

/// Up to `limit` events of `realm`, newest first: older than the event `before` when given, and
/// only those named `event` when given.
pub async fn recent(
    store: &Store,
    realm: &RealmName,
    before: Option<i64>,
    event: Option<String>,
    limit: usize,
) -> Result<Vec<AuditEvent>, AdminError> {
    let query = AuditQuery {
        before,
        event,
        limit: i64::try_from(limit).unwrap_or(i64::MAX),
    };
    let rows = store.audit_events(realm.as_str(), &query).await?;
    Ok(rows
        .into_iter()
        .map(|row| AuditEvent {
            id: row.id,
            at: format_ms(row.at_ms),
            at_ms: row.at_ms,
            event: row.event,
            level: row.level,
            fields: serde_json::from_str(&row.fields).unwrap_or(Value::Null),
        })
        .collect())
}
