//! The change counters (`migrations/*/0006_change_counters.sql`): triggers bump them whenever
//! something a server keeps in memory changes, and every token request compares them with what its
//! caches were filled under. On SQLite each request reads them, so a change applies to the next
//! request. On PostgreSQL a LISTEN connection hears of each change within milliseconds, a poll
//! every [`POLL_INTERVAL`] catches lost notifications, and a request reads them itself when neither
//! has confirmed them within [`FRESHNESS`]: no instance serves from a cache older than that.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::Row;
use tokio::time::MissedTickBehavior;

use super::{Store, StoreError};

/// The one row of the counters table.
pub const READ_COUNTERS: &str = "SELECT accounts, grants, locks FROM change_counters WHERE id = 1";
/// The channel the PostgreSQL triggers notify (named in the migration).
const CHANNEL: &str = "portcullis_changes";
/// How often a PostgreSQL server reads the counters even without a notification.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long counters learned from a notification or a poll are trusted on PostgreSQL.
pub const FRESHNESS: Duration = Duration::from_secs(2);
/// Wait before listening again after the notification connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How often each kind of cached data has changed since the database was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Realms, users, groups, memberships, MUNGE mappings, tokens.
    pub accounts: i64,
    /// The policy rules kept in the database.
    pub grants: i64,
    /// Failure records: a subject's first failure, a lock set or changed, a record deleted.
    pub locks: i64,
}

impl Counters {
    /// Each counter's larger value: counters only grow, so this is the newer knowledge of both.
    fn newest(self, other: Counters) -> Counters {
        Counters {
            accounts: self.accounts.max(other.accounts),
            grants: self.grants.max(other.grants),
            locks: self.locks.max(other.locks),
        }
    }
}

/// What a PostgreSQL server last learned of the counters, and when.
#[derive(Default)]
pub struct PgFeed {
    latest: Mutex<Option<(Counters, Instant)>>,
}

impl PgFeed {
    /// The counters, when confirmed within [`FRESHNESS`].
    pub fn fresh(&self) -> Option<Counters> {
        let latest = self.latest.lock().expect("change feed lock");
        latest
            .filter(|(_, confirmed)| confirmed.elapsed() < FRESHNESS)
            .map(|(counters, _)| counters)
    }

    /// Records counters just read from the database.
    pub fn confirm(&self, counters: Counters) {
        let mut latest = self.latest.lock().expect("change feed lock");
        let known = latest.map_or(counters, |(known, _)| known.newest(counters));
        *latest = Some((known, Instant::now()));
    }
}

/// Starts the listener and the poll that keep `feed` fresh; they run as long as the runtime.
pub fn watch_postgres(store: Store, url: String, feed: Arc<PgFeed>) {
    tokio::spawn(listen(store.clone(), url, feed.clone()));
    tokio::spawn(poll(store, feed));
}

/// Reads the counters after every notification, reconnecting whenever the connection fails.
async fn listen(store: Store, url: String, feed: Arc<PgFeed>) {
    let mut failing = false;
    loop {
        let outcome = listen_until_lost(&store, &url, &feed, &mut failing).await;
        if !failing {
            match outcome {
                Ok(()) => tracing::warn!("change notifications: connection lost; reconnecting"),
                Err(error) => {
                    tracing::warn!(%error, "change notifications unavailable; retrying every second")
                }
            }
            failing = true;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn listen_until_lost(
    store: &Store,
    url: &str,
    feed: &PgFeed,
    failing: &mut bool,
) -> Result<(), StoreError> {
    let mut listener = PgListener::connect(url).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    // Changes committed before LISTEN took effect were not notified: read once now.
    feed.confirm(store.read_counters().await?);
    if std::mem::take(failing) {
        tracing::info!("change notifications restored");
    }
    while listener.try_recv().await?.is_some() {
        while listener.next_buffered().is_some() {}
        feed.confirm(store.read_counters().await?);
    }
    Ok(())
}

/// Reads the counters every [`POLL_INTERVAL`], in case a notification was lost.
async fn poll(store: Store, feed: Arc<PgFeed>) {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        match store.read_counters().await {
            Ok(counters) => feed.confirm(counters),
            Err(error) => tracing::debug!(%error, "change counters poll failed"),
        }
    }
}

impl Store {
    /// The counters as committed now, read through the pool.
    pub(super) async fn read_counters(&self) -> Result<Counters, StoreError> {
        let row = sqlx::query(READ_COUNTERS).fetch_one(&self.pool).await?;
        Ok(Counters {
            accounts: row.try_get("accounts")?,
            grants: row.try_get("grants")?,
            locks: row.try_get("locks")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_is_fresh_only_after_a_confirmation_and_never_goes_back() {
        let feed = PgFeed::default();
        assert_eq!(feed.fresh(), None);
        let notified = Counters {
            accounts: 4,
            grants: 2,
            locks: 9,
        };
        // A poll that started before the notification's read may finish after it.
        let late_poll = Counters {
            accounts: 3,
            grants: 2,
            locks: 9,
        };
        feed.confirm(notified);
        feed.confirm(late_poll);
        assert_eq!(feed.fresh(), Some(notified));
    }
}
