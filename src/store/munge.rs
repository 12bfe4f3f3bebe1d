//! MUNGE: which user a platform's uid maps to, and the record of each credential's use that makes
//! a replay fail. Uses that arrive together are recorded by one statement, on either engine
//! (`sqlite/direct.rs`, `postgres/replays.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sqlx::Row;

use super::gather::Gathering;
use super::users::{user_from_row, UserRecord};
use super::{Engine, Store, StoreError};
use crate::names::{RealmName, Username};

/// How often expired replay records are deleted.
const REPLAY_PURGE_INTERVAL_SECS: i64 = 60;

/// Uses of MUNGE credentials waiting for the statement that records them, and their answers.
pub(super) type ReplayGathering<E> = Gathering<ReplayRecord, Result<bool, Arc<E>>>;

/// A MUNGE credential's use: the key its replays share, and when replays become impossible.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayRecord {
    pub replay_key: String,
    pub expires_at: i64,
}

impl Store {
    /// Maps a platform's uid to a user (replacing an earlier mapping of that uid).
    pub async fn munge_map(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
        username: &Username,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO munge_mappings (realm, platform, uid, user_id) \
             SELECT $1, $2, $3, id FROM users WHERE realm = $1 AND username = $4 \
             ON CONFLICT (realm, platform, uid) DO UPDATE SET user_id = excluded.user_id",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .bind(username.as_str())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "user {username} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Removes a uid's mapping.
    pub async fn munge_unmap(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "DELETE FROM munge_mappings WHERE realm = $1 AND platform = $2 AND uid = $3",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "mapping of uid {uid} on {platform}"
            )));
        }
        Ok(())
    }

    /// Every mapping of a realm: (platform, uid, user name).
    pub async fn munge_mappings(
        &self,
        realm: &RealmName,
    ) -> Result<Vec<(String, i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.platform, m.uid, u.username FROM munge_mappings m JOIN users u ON u.id = m.user_id \
             WHERE m.realm = $1 ORDER BY m.platform, m.uid",
        )
        .bind(realm.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("platform")?,
                    row.try_get("uid")?,
                    row.try_get("username")?,
                ))
            })
            .collect()
    }

    /// The user a platform's uid is mapped to.
    pub async fn munge_user(
        &self,
        realm: &RealmName,
        platform: &str,
        uid: u32,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.realm, u.username, u.password_hash, u.role, u.disabled_at, u.kind, u.created_at, \
                    u.source, u.directory_groups, u.directory_groups_at \
             FROM munge_mappings m JOIN users u ON u.id = m.user_id \
             WHERE m.realm = $1 AND m.platform = $2 AND m.uid = $3",
        )
        .bind(realm.as_str())
        .bind(platform)
        .bind(i64::from(uid))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Records a credential's use; false when it was used before (a replay). Expired records are
    /// purged every `REPLAY_PURGE_INTERVAL_SECS` (a minute) on the way, as no replay of them can
    /// succeed.
    pub async fn record_munge_use(
        &self,
        replay_key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let due = self.next_replay_purge.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_replay_purge
                .compare_exchange(
                    due,
                    now + REPLAY_PURGE_INTERVAL_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            sqlx::query("DELETE FROM munge_replays WHERE expires_at < $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        let record = ReplayRecord {
            replay_key: replay_key.to_owned(),
            expires_at,
        };
        match &self.engine {
            Engine::Sqlite(direct) => direct.record_replay(record).await,
            Engine::Postgres(postgres) => postgres.record_replay(&self.pool, record).await,
        }
    }
}
