//! Tokens: the refresh and access secrets Portcullis mints, stored as the SHA-256 of the secret,
//! with their owner, last use and revocation. Minting and checking them is not done here.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::users::{user_from_row, UserRecord};
use super::{unix_now, unknown, Store, StoreError};
use crate::names::{RealmName, Username};

/// Granularity of a token's recorded last use.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The two kinds of long-lived secret Portcullis mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// What `docker login` stores as `identitytoken`; used through the refresh-token grant.
    Refresh,
    /// A personal or robot access token, used as a password.
    Access,
}

impl TokenKind {
    /// The name stored and shown in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh",
            TokenKind::Access => "access",
        }
    }

    /// The kind a stored name stands for; `None` for any other.
    fn from_stored(name: &str) -> Option<TokenKind> {
        match name {
            "refresh" => Some(TokenKind::Refresh),
            "access" => Some(TokenKind::Access),
            _ => None,
        }
    }
}

/// A token to store; only the digest of its secret.
pub struct NewToken<'a> {
    pub id: &'a str,
    pub kind: TokenKind,
    pub user_id: i64,
    pub secret_sha256: &'a str,
    pub name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub scopes: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// A stored token (never its secret) with its owner's name.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub kind: TokenKind,
    pub user_id: i64,
    pub username: Username,
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Stores a minted token; `Conflict` when an access token of that name exists for the user.
    pub async fn insert_token(&self, token: &NewToken<'_>) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO tokens (id, kind, user_id, secret_sha256, name, client_id, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(token.id)
        .bind(token.kind.as_str())
        .bind(token.user_id)
        .bind(token.secret_sha256)
        .bind(token.name.map(str::to_owned))
        .bind(token.client_id.map(str::to_owned))
        .bind(token.scopes.map(str::to_owned))
        .bind(unix_now())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            let name = token.name.unwrap_or_default();
            return Err(StoreError::Conflict(format!(
                "{} token {name:?}",
                token.kind.as_str()
            )));
        }
        Ok(())
    }

    /// The token of `kind` whose secret has this digest, with its owner, in `realm`.
    pub async fn find_token(
        &self,
        realm: &RealmName,
        kind: TokenKind,
        secret_sha256: &str,
    ) -> Result<Option<(TokenRecord, UserRecord)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.kind AS token_kind, t.user_id, t.name, t.client_id, t.scopes, \
                    t.created_at AS token_created_at, t.last_used_at, t.expires_at, t.revoked_at, \
                    u.id, u.realm, u.username, u.password_hash, u.role, u.disabled_at, u.kind, u.created_at, \
                    u.source, u.directory_groups, u.directory_groups_at \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_sha256 = $1 AND t.kind = $2 AND u.realm = $3",
        )
        .bind(secret_sha256)
        .bind(kind.as_str())
        .bind(realm.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| Ok((token_from_row(row)?, user_from_row(row)?)))
            .transpose()
    }

    /// Records a use; writes at most once a minute per token so busy clients do not turn every token
    /// request into a database write.
    pub async fn touch_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - LAST_USED_RESOLUTION_SECS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Tokens of a realm (of one user when given), newest first.
    pub async fn list_tokens(
        &self,
        realm: &RealmName,
        username: Option<&Username>,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id AS token_id, t.kind AS token_kind, t.user_id, t.name, t.client_id, t.scopes, \
                    t.created_at AS token_created_at, t.last_used_at, t.expires_at, t.revoked_at, u.username \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE u.realm = $1 AND ($2 = '' OR u.username = $2) ORDER BY t.created_at DESC, t.id",
        )
        .bind(realm.as_str())
        .bind(username.map_or(String::new(), |u| u.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes one token of a realm by id.
    pub async fn revoke_token(&self, realm: &RealmName, id: &str) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET revoked_at = $3 WHERE id = $2 AND revoked_at IS NULL \
             AND user_id IN (SELECT id FROM users WHERE realm = $1)",
        )
        .bind(realm.as_str())
        .bind(id)
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "unrevoked token {id} in realm {realm}"
            )));
        }
        Ok(())
    }

    /// Revokes a user's tokens (of one kind, or all); returns how many.
    pub async fn revoke_user_tokens(
        &self,
        realm: &RealmName,
        username: &Username,
        kind: Option<TokenKind>,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET revoked_at = $4 WHERE revoked_at IS NULL AND ($3 = '' OR kind = $3) \
             AND user_id IN (SELECT id FROM users WHERE realm = $1 AND username = $2)",
        )
        .bind(realm.as_str())
        .bind(username.as_str())
        .bind(kind.map_or("", TokenKind::as_str))
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let id: String = row.try_get("token_id")?;
    let kind: String = row.try_get("token_kind")?;
    let kind = TokenKind::from_stored(&kind)
        .ok_or_else(|| unknown(&format!("token {id}"), "kind", &kind))?;
    let username: String = row.try_get("username")?;
    Ok(TokenRecord {
        id,
        kind,
        user_id: row.try_get("user_id")?,
        username: Username::parse(&username).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        scopes: row.try_get("scopes")?,
        created_at: row.try_get("token_created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, write_unchecked};

    #[tokio::test]
    async fn a_stored_token_kind_this_code_does_not_know_is_corrupt_not_access() {
        let (_dir, store, path) = test_store().await;
        let realm = RealmName::parse("test").unwrap();
        let alice = store
            .find_user(&realm, &Username::parse("alice").unwrap())
            .await
            .unwrap()
            .unwrap();
        store
            .insert_token(&NewToken {
                id: "t1",
                kind: TokenKind::Access,
                user_id: alice.id,
                secret_sha256: "digest",
                name: Some("ci"),
                client_id: None,
                scopes: None,
                expires_at: None,
            })
            .await
            .unwrap();
        write_unchecked(&path, "UPDATE tokens SET kind = 'session'");
        match store.list_tokens(&realm, None).await {
            Err(StoreError::Corrupt(message)) => {
                assert_eq!(message, "token t1: unknown kind \"session\"")
            }
            other => panic!("{other:?}"),
        }
    }
}
