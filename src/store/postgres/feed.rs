//! The LISTEN/NOTIFY feed of the change counters: a LISTEN connection hears of each change within
//! milliseconds, and a poll every [`POLL_INTERVAL`] catches lost notifications. What they learn is
//! trusted for [`FRESHNESS`]; the counters themselves are described in [`changes`](crate::store::changes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::time::MissedTickBehavior;

use crate::store::changes::{Counters, FRESHNESS, POLL_INTERVAL};
use crate::store::{Store, StoreError};

/// The channel the PostgreSQL triggers notify (named in the migration).
const CHANNEL: &str = "portcullis_changes";
/// Wait before listening again after the notification connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

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
pub fn watch(store: Store, url: String, feed: Arc<PgFeed>) {
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
