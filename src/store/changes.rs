//! The change counters (`migrations/*/0006_change_counters.sql`): triggers bump them whenever
//! something a server keeps in memory changes, and every token request compares them with what its
//! caches were filled under. On SQLite each request reads them, so a change applies to the next
//! request. On PostgreSQL a LISTEN connection hears of each change within milliseconds, a poll
//! every [`POLL_INTERVAL`] catches lost notifications (both in `store/postgres/feed.rs`), and a
//! request reads them itself when neither has confirmed them within [`FRESHNESS`]: no instance
//! serves from a cache older than that.

use std::time::Duration;

use sqlx::Row;

use super::{sqlite, Engine, Store, StoreError};

/// The one row of the counters table.
pub const READ_COUNTERS: &str = "SELECT accounts, grants, locks FROM change_counters WHERE id = 1";
/// How often a PostgreSQL server reads the counters even without a notification.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long counters learned from a notification or a poll are trusted on PostgreSQL.
pub const FRESHNESS: Duration = Duration::from_secs(2);

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
    pub(super) fn newest(self, other: Counters) -> Counters {
        Counters {
            accounts: self.accounts.max(other.accounts),
            grants: self.grants.max(other.grants),
            locks: self.locks.max(other.locks),
        }
    }
}

impl Store {
    /// Keeps the change counters fresh without a query per request (PostgreSQL: a LISTEN
    /// connection and a poll); SQLite needs nothing. For servers, not commands.
    pub fn watch_changes(&self) {
        if let Engine::Postgres(postgres) = &self.engine {
            postgres.watch(self);
        }
    }

    /// The change counters: on SQLite as committed now (through sqlx, which waits off the request
    /// worker, when the direct read finds the database locked); on PostgreSQL as last notified or
    /// polled ([`Store::watch_changes`]), or read now when that is older than [`FRESHNESS`].
    pub async fn counters(&self) -> Result<Counters, StoreError> {
        match &self.engine {
            Engine::Sqlite(direct) => match direct.counters() {
                Err(error) if sqlite::is_busy(&error) => self.read_counters().await,
                counters => Ok(counters?),
            },
            Engine::Postgres(postgres) => match postgres.fresh_counters() {
                Some(counters) => Ok(counters),
                None => self.read_counters().await,
            },
        }
    }

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
