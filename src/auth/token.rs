//! Refresh and access tokens, Portcullis' own long-lived secrets (the signed JWT is `crate::jwt`'s):
//! 256 random bits behind a recognisable prefix, shown once, stored only as a SHA-256 digest, and
//! found again by that digest at login, with no argon2 on that path. [`create`] is the one place a
//! token is minted, for the token endpoint and the operator's commands alike.

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::accounts::TokenEntry;
use super::{principal, Authenticator, AuthnError, Method, Principal, Request};
use crate::store::{unix_now, NewToken, Store, StoreError, TokenKind};

/// Prefix of refresh tokens (what `docker login` stores as `identitytoken`).
pub const REFRESH_TOKEN_PREFIX: &str = "pcrt_";
/// Prefix of personal and robot access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "pcat_";
/// Seconds in a day, for the day-denominated token settings.
pub const SECS_PER_DAY: i64 = 86_400;
/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Random bytes in a public token id.
const ID_BYTES: usize = 8;

/// The random source failed (it does not on a working system).
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomError;

/// A token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Storing it failed; `Conflict` when an access token of that name exists for the user.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new token is: its kind and owner, and what it records besides its secret.
pub struct TokenSpec<'a> {
    pub kind: TokenKind,
    pub user_id: i64,
    /// An access token's name (unique per user).
    pub name: Option<&'a str>,
    /// The client a refresh token was issued to.
    pub client_id: Option<&'a str>,
    /// An access token's scopes, space-separated (`None`: whatever the policy allows).
    pub scopes: Option<&'a str>,
    /// Unix seconds (`None`: never).
    pub expires_at: Option<i64>,
}

/// A token just created: its secret, to show once, and its public id.
pub struct Created {
    pub id: String,
    pub secret: SecretString,
}

/// Mints a token of `spec.kind` and stores it (its digest only).
pub async fn create(store: &Store, spec: &TokenSpec<'_>) -> Result<Created, CreateError> {
    let minted = mint(prefix(spec.kind))?;
    store
        .insert_token(&NewToken {
            id: &minted.id,
            kind: spec.kind,
            user_id: spec.user_id,
            secret_sha256: &minted.sha256,
            name: spec.name,
            client_id: spec.client_id,
            scopes: spec.scopes,
            expires_at: spec.expires_at,
        })
        .await?;
    Ok(Created {
        id: minted.id,
        secret: minted.secret,
    })
}

/// The prefix of a kind's secrets.
fn prefix(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Refresh => REFRESH_TOKEN_PREFIX,
        TokenKind::Access => ACCESS_TOKEN_PREFIX,
    }
}

/// A freshly minted secret: the text to show once, its digest to store, and its public id.
struct Minted {
    secret: SecretString,
    sha256: String,
    id: String,
}

/// `SECRET_BYTES` random bytes from the system's source, base64url: a secret no one can guess
/// (tokens, console sessions and their CSRF tokens).
pub fn random_secret() -> Result<String, RandomError> {
    let mut bytes = [0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Mints a secret with `prefix`.
fn mint(prefix: &str) -> Result<Minted, RandomError> {
    let rng = SystemRandom::new();
    let secret = SecretString::from(format!("{prefix}{}", random_secret()?));
    let mut id = [0u8; ID_BYTES];
    rng.fill(&mut id).map_err(|_| RandomError)?;
    Ok(Minted {
        sha256: sha256_hex(&secret),
        secret,
        id: data_encoding::HEXLOWER.encode(&id),
    })
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn sha256_hex(secret: &SecretString) -> String {
    data_encoding::HEXLOWER.encode(digest(&SHA256, secret.expose_secret().as_bytes()).as_ref())
}

/// True when `text` has the shape of a secret we mint with `prefix` (checked before any lookup).
fn looks_like(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == (SECRET_BYTES * 4).div_ceil(3)
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

impl Authenticator {
    /// A refresh or access token, found by the digest of its secret (no argon2 on this path).
    pub(super) async fn token(
        &self,
        request: &Request<'_>,
        kind: TokenKind,
        username: Option<&str>,
        secret: &SecretString,
    ) -> Result<Principal, AuthnError> {
        let method = match kind {
            TokenKind::Refresh => Method::RefreshToken,
            TokenKind::Access => Method::AccessToken,
        };
        if !looks_like(secret.expose_secret(), prefix(kind)) {
            return Err(AuthnError::Rejected("malformed token"));
        }
        let (realm, counters) = (&request.realm.name, request.counters);
        let digest = sha256_hex(secret);
        let Some(mut token) = self.accounts.token(counters, realm, kind, &digest).await? else {
            return Err(AuthnError::Rejected("unknown token"));
        };
        let now = unix_now();
        if self.idle(&token, now) {
            // Another instance may have recorded a use this one has not seen.
            token = self
                .accounts
                .reload_token(counters, realm, kind, &digest)
                .await?
                .ok_or(AuthnError::Rejected("unknown token"))?;
        }
        let record = &token.record;
        let refusal = if record.revoked_at.is_some() {
            Some("token revoked")
        } else if record.expires_at.is_some_and(|at| at <= now) {
            Some("token expired")
        } else if self.idle(&token, now) {
            Some("refresh token idle too long")
        } else if token.owner.record.disabled {
            Some("user disabled")
        } else if username.is_some_and(|name| name != token.owner.record.username.as_str()) {
            Some("token of another user")
        } else {
            None
        };
        if let Some(reason) = refusal {
            return Err(AuthnError::Rejected(reason));
        }
        let limit = token
            .limit
            .as_ref()
            .map_err(|_| AuthnError::Rejected("token scopes no longer valid"))?
            .clone();
        if token.note_use(now) {
            self.store.touch_token(&record.id, now).await?;
        }
        let groups = self.source_groups(realm, &token.owner).await?;
        let mut principal = principal(&token.owner, method, Some(record.id.clone()), groups);
        principal.limit = limit;
        Ok(principal)
    }

    /// True for a refresh token unused for longer than allowed.
    fn idle(&self, token: &TokenEntry, now: i64) -> bool {
        token.record.kind == TokenKind::Refresh
            && token.last_active() + self.refresh_idle_secs <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_are_prefixed_random_and_hashed() {
        let a = mint(REFRESH_TOKEN_PREFIX).unwrap();
        let b = mint(REFRESH_TOKEN_PREFIX).unwrap();
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert_ne!(a.id, b.id);
        assert!(looks_like(a.secret.expose_secret(), REFRESH_TOKEN_PREFIX));
        assert!(!looks_like(a.secret.expose_secret(), ACCESS_TOKEN_PREFIX));
        assert_eq!(a.sha256, sha256_hex(&a.secret));
        assert_eq!(a.sha256.len(), 64);
        assert!(!a.sha256.contains(a.secret.expose_secret()));
    }

    #[test]
    fn shape_check() {
        assert!(!looks_like("pcrt_short", REFRESH_TOKEN_PREFIX));
        assert!(!looks_like("password", REFRESH_TOKEN_PREFIX));
        let bad = format!("{REFRESH_TOKEN_PREFIX}{}", "*".repeat(43));
        assert!(!looks_like(&bad, REFRESH_TOKEN_PREFIX));
        let good = format!("{REFRESH_TOKEN_PREFIX}{}", "a".repeat(43));
        assert!(looks_like(&good, REFRESH_TOKEN_PREFIX));
    }
}
