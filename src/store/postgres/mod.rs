//! What only PostgreSQL needs: its migrations, the LISTEN/NOTIFY feed that keeps the change
//! counters fresh ([`feed`]), and the batched statement that records MUNGE credentials' uses that
//! arrive together ([`replays`]). The queries themselves are shared with SQLite and live with their
//! aggregate.

mod feed;
mod replays;

use std::sync::Arc;

use sqlx::migrate::Migrator;
use sqlx::AnyPool;

use self::feed::PgFeed;
use super::changes::Counters;
use super::munge::{ReplayGathering, ReplayRecord};
use super::{Store, StoreError};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A PostgreSQL server's state beside the pool: where the feed listens, what it learned, and the
/// uses of MUNGE credentials being gathered.
pub struct Postgres {
    url: String,
    feed: Arc<PgFeed>,
    replays: Arc<ReplayGathering<sqlx::Error>>,
}

impl Postgres {
    /// Runs the migrations; `url` is where the feed will listen.
    pub async fn migrate(pool: &AnyPool, url: String) -> Result<Postgres, StoreError> {
        MIGRATIONS.run(pool).await?;
        Ok(Postgres {
            url,
            feed: Arc::default(),
            replays: Arc::default(),
        })
    }

    /// Starts the listener and the poll that keep the counters fresh; they run as long as the
    /// runtime.
    pub fn watch(&self, store: &Store) {
        feed::watch(store.clone(), self.url.clone(), self.feed.clone());
    }

    /// The counters, when the feed confirmed them within [`FRESHNESS`](super::changes::FRESHNESS).
    pub fn fresh_counters(&self) -> Option<Counters> {
        self.feed.fresh()
    }

    /// Records a MUNGE credential's use with those that arrive together; false when it was
    /// recorded before (a replay). The statement runs on its own task: a dropped request cannot
    /// leave the uses gathered with it unanswered.
    pub async fn record_replay(
        &self,
        pool: &AnyPool,
        record: ReplayRecord,
    ) -> Result<bool, StoreError> {
        let joined = self.replays.join(record);
        if joined.first {
            tokio::spawn(replays::record_gathered(pool.clone(), self.replays.clone()));
        }
        match joined.answer.await {
            Ok(answer) => answer.map_err(StoreError::Postgres),
            Err(_) => Err(StoreError::Unanswered),
        }
    }
}
