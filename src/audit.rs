//! The recent audit trail: every audit event the server logs (tracing target `audit`) that names a
//! realm is also kept in the database for `audit.keep_secs`, where the admin API and the console
//! read it from any instance. The log stays the complete record; the trail is a view for people:
//! - [`TrailLayer`], part of the process's subscriber (`telemetry::init`), copies each audit event
//!   the log filter lets through into a bounded queue, without waiting. A full queue drops the
//!   event from the trail (never from the log) and counts it; events with no `realm` are not kept.
//! - [`Trail::start`] drains the queue into the database every quarter of a second, in
//!   statements of many rows (a statement costs far more CPU than a row; a wake-up per event
//!   would cost more than both) and, about once a minute, deletes events older than `audit.keep_secs`
//!   and the oldest beyond `audit.max_events`, so a busy server's trail stays bounded.
//!   `portcullis serve` connects the two ([`Trail::keep`]); nothing else does, so a process that
//!   serves nothing, or a test that starts servers in its own process, keeps no trail.
//!
//! An event's name is its `event` field, or, for the token endpoint's events, its `outcome`
//! (`granted`, `refused`). The other fields are kept as logged: strings, numbers and booleans.
//! The token endpoint's grants (its events with a `granted` field) are kept only with
//! `audit.keep_grants`: they are nearly every request, and keeping them cost about a fifth more
//! CPU per token request (measured with `scripts/bench.sh`, docs/performance.md); refusals and
//! every other event are kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::config::AuditSettings;
use crate::keys::now_ms;
use crate::store::{NewAuditEvent, Store};

/// The tracing target of audit events.
pub const TARGET: &str = "audit";
/// Events waiting for the database at most (a round's worth at 32 000 a second); more are
/// dropped from the trail.
const QUEUE: usize = 8_192;
/// Events written in one transaction at most.
const BATCH: usize = 1_024;
/// How often the writer takes what the queue holds: an event reaches the database within this
/// (plus the write).
const GATHER: Duration = Duration::from_millis(250);
/// How often events past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Longest text kept of one field.
const MAX_FIELD_CHARS: usize = 1_024;

/// Where [`TrailLayer`] sends events, once `serve` has connected a trail, and whether grants go
/// too.
static QUEUE_IN: OnceLock<(mpsc::Sender<NewAuditEvent>, bool)> = OnceLock::new();
/// The field only the token endpoint's grants have.
const GRANT_FIELD: &str = "granted";
/// Events dropped from the trail because the queue was full, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Copies audit events into the trail's queue.
pub struct TrailLayer;

impl<S: Subscriber> Layer<S> for TrailLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let Some((queue, keep_grants)) = QUEUE_IN.get() else {
            return;
        };
        if !keep_grants && event.metadata().fields().field(GRANT_FIELD).is_some() {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(realm) = fields.realm else {
            return;
        };
        let Some(name) = fields.event.or(fields.outcome) else {
            return;
        };
        let kept = NewAuditEvent {
            realm,
            at_ms: now_ms(),
            event: name,
            level: event.metadata().level().to_string(),
            fields: Value::Object(fields.rest).to_string(),
        };
        if queue.try_send(kept).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An event's fields: the realm and name apart, the rest as JSON.
#[derive(Default)]
struct Fields {
    realm: Option<String>,
    event: Option<String>,
    outcome: Option<String>,
    rest: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        match (name, value) {
            ("realm", Value::String(text)) => self.realm = Some(text),
            ("event", Value::String(text)) => self.event = Some(text),
            ("outcome", Value::String(text)) => {
                self.outcome = Some(text.clone());
                self.rest.insert(name.to_owned(), Value::String(text));
            }
            (_, value) if name.starts_with("log.") => drop(value),
            (_, value) => {
                self.rest.insert(name.to_owned(), value);
            }
        }
    }

    fn text(text: String) -> Value {
        match text.char_indices().nth(MAX_FIELD_CHARS) {
            Some((cut, _)) => Value::String(format!("{}…", &text[..cut])),
            None => Value::String(text),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Fields::text(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Fields::text(value.to_string()));
    }

    // `%value` fields arrive here, printing as Display.
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Fields::text(format!("{value:?}")));
    }
}

/// The trail's writer, running; [`Trail::keep`] sends the process's audit events to it.
pub struct Trail {
    queue: mpsc::Sender<NewAuditEvent>,
    keep_grants: bool,
}

impl Trail {
    /// Starts writing queued events to `store` as `settings` say.
    pub fn start(store: Store, settings: &AuditSettings) -> Trail {
        let (queue, events) = mpsc::channel(QUEUE);
        let keep = Duration::from_secs(settings.keep_secs);
        let max_events = i64::try_from(settings.max_events).unwrap_or(i64::MAX);
        tokio::spawn(write(store, keep, max_events, events));
        Trail {
            queue,
            keep_grants: settings.keep_grants,
        }
    }

    /// Sends this process's audit events to this trail from now on. The first trail a process
    /// connects keeps them; a later call changes nothing.
    pub fn keep(&self) {
        let _ = QUEUE_IN.set((self.queue.clone(), self.keep_grants));
    }
}

/// Every [`GATHER`], writes what the queue holds, a transaction per [`BATCH`], and (about once a
/// minute) deletes what is past the retention. The writer sleeps between rounds instead of
/// waiting on the queue: a waiting receiver is woken by every event, and those wake-ups (a
/// thread switch each) cost more CPU than the rest of the trail together.
async fn write(
    store: Store,
    keep: Duration,
    max_events: i64,
    mut events: mpsc::Receiver<NewAuditEvent>,
) {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let mut pruned_at: Option<Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut rounds = tokio::time::interval(GATHER);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rounds.tick().await;
        let closed = loop {
            match events.try_recv() {
                Ok(event) => {
                    batch.push(event);
                    if batch.len() == BATCH {
                        insert(&store, &mut batch).await;
                    }
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        insert(&store, &mut batch).await;
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                events = dropped,
                "audit events came faster than the database took them: not kept in the database (they are in the log)"
            );
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            let before_ms = now_ms().saturating_sub(keep_ms);
            if let Err(error) = store.prune_audit_events(before_ms, max_events).await {
                tracing::warn!(error = %error, "expired audit events not deleted");
            }
        }
        if closed {
            break;
        }
    }
}

/// Writes `batch` (when it holds anything) and empties it.
async fn insert(store: &Store, batch: &mut Vec<NewAuditEvent>) {
    if batch.is_empty() {
        return;
    }
    if let Err(error) = store.insert_audit_events(batch).await {
        tracing::warn!(error = %error, events = batch.len(), "audit events not kept in the database (they are in the log)");
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Records what the layer would queue, through the same visitor.
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<Fields>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields);
        }
    }

    #[test]
    fn fields_keep_their_types_and_the_name_and_realm_go_apart() {
        let seen = std::sync::Arc::default();
        let subscriber = tracing_subscriber::registry().with(Capture(std::sync::Arc::clone(&seen)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "audit", event = "grant_added", realm = %"default", by = "root", grant = 7, fresh = true, r#type = "x");
            tracing::info!(target: "audit", outcome = "refused", realm = "default", subject = "a".repeat(2_000));
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].realm.as_deref(), Some("default"));
        assert_eq!(seen[0].event.as_deref(), Some("grant_added"));
        assert_eq!(
            Value::Object(seen[0].rest.clone()),
            serde_json::json!({"by": "root", "grant": 7, "fresh": true, "type": "x"})
        );
        assert_eq!(seen[1].outcome.as_deref(), Some("refused"));
        let subject = seen[1].rest["subject"].as_str().unwrap();
        assert_eq!(subject.chars().count(), MAX_FIELD_CHARS + 1);
        assert!(subject.ends_with('…'));
    }
}
