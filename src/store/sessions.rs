//! Console sessions as stored: who is signed in under a cookie's digest, the session's CSRF token,
//! and its idle and absolute deadlines; and sign-ins with an OpenID provider under way, under
//! their cookie's digest. The cookies themselves are the console's business.

use sqlx::Row;

use super::users::user_from_row;
use super::{Store, StoreError, UserRecord};

/// A stored session with its user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// A sign-in with an OpenID provider under way, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub realm: String,
    pub issuer: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub expires_at: i64,
}

impl Store {
    /// Records a sign-in under way under the digest of its cookie, and forgets those expired
    /// before `now`.
    pub async fn create_sign_in(
        &self,
        id_sha256: &str,
        pending: &PendingSignIn,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sign_ins WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sign_ins (id_sha256, realm, issuer, state, nonce, verifier, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_sha256)
        .bind(&pending.realm)
        .bind(&pending.issuer)
        .bind(&pending.state)
        .bind(&pending.nonce)
        .bind(&pending.verifier)
        .bind(pending.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sign-in under this digest, deleted: each is used once, by one request only.
    pub async fn take_sign_in(&self, id_sha256: &str) -> Result<Option<PendingSignIn>, StoreError> {
        let row = sqlx::query(
            "SELECT realm, issuer, state, nonce, verifier, expires_at FROM console_sign_ins \
             WHERE id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let deleted = sqlx::query("DELETE FROM console_sign_ins WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() != 1 {
            // Another request took it first.
            return Ok(None);
        }
        Ok(Some(PendingSignIn {
            realm: row.try_get("realm")?,
            issuer: row.try_get("issuer")?,
            state: row.try_get("state")?,
            nonce: row.try_get("nonce")?,
            verifier: row.try_get("verifier")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Records a new session of `user_id` under the digest of its cookie.
    pub async fn create_session(
        &self,
        id_sha256: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_sha256, user_id, csrf, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(id_sha256)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session under this digest, with its user, whatever its deadlines.
    pub async fn find_session(&self, id_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT s.csrf, s.created_at AS session_created_at, s.last_seen_at, s.expires_at, \
                    u.id, u.realm, u.username, u.password_hash, u.role, u.disabled_at, u.kind, \
                    u.created_at, u.source, u.directory_groups, u.directory_groups_at \
             FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_sha256 = $1",
        )
        .bind(id_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                user: user_from_row(&row)?,
                csrf: row.try_get("csrf")?,
                created_at: row.try_get("session_created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Moves a session's idle deadline; at most once a minute, so a busy page writes little.
    pub async fn touch_session(&self, id_sha256: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE console_sessions SET last_seen_at = $2 WHERE id_sha256 = $1 AND last_seen_at < $3",
        )
        .bind(id_sha256)
        .bind(now)
        .bind(now - 60)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends one session.
    pub async fn delete_session(&self, id_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
            .bind(id_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user (sign-out everywhere); returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
