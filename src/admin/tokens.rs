//! Access and refresh token use cases: create an access token for a user or robot (its secret is
//! returned once, only its digest is stored), list tokens with their state, revoke one or all of a
//! user's.

use super::AdminError;
use crate::auth::token::{self, Created, TokenSpec};
use crate::names::{RealmName, TokenName, Username};
use crate::policy::scope_limit;
use crate::store::{unix_now, Store, TokenKind, TokenRecord};

/// Longest access token lifetime: ten years (3650 days). Longer is a typo or means "never", which
/// is what no lifetime says.
pub const MAX_LIFETIME_SECS: i64 = 3650 * SECS_PER_DAY;
/// Seconds in a day, the `d` of a lifetime.
pub const SECS_PER_DAY: i64 = 86_400;

/// How long an access token lives: 1 s to [`MAX_LIFETIME_SECS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(i64);

impl Lifetime {
    /// `30d`, `12h`, `45m`, `90s`.
    pub fn parse(text: &str) -> Result<Lifetime, AdminError> {
        let (number, unit_secs) = [("d", SECS_PER_DAY), ("h", 3_600), ("m", 60), ("s", 1)]
            .into_iter()
            .find_map(|(unit, secs)| text.strip_suffix(unit).map(|number| (number, secs)))
            .ok_or(AdminError::Lifetime)?;
        let number: i64 = number.parse().map_err(|_| AdminError::Lifetime)?;
        number
            .checked_mul(unit_secs)
            .filter(|secs| (1..=MAX_LIFETIME_SECS).contains(secs))
            .map(Lifetime)
            .ok_or(AdminError::Lifetime)
    }

    pub fn as_secs(self) -> i64 {
        self.0
    }
}

/// An access token to create.
pub struct NewAccessToken {
    pub realm: RealmName,
    /// The owner, a user or robot.
    pub user: Username,
    /// A label, unique among the owner's tokens.
    pub name: TokenName,
    /// What the token may reach at most, as scopes (`repository:team/**:pull`); none: what its
    /// owner may.
    pub scopes: Vec<String>,
    /// `None`: it never expires.
    pub lifetime: Option<Lifetime>,
}

/// Whether a listed token can still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    /// The word listings show.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

/// A stored token (never its secret) and its state when listed.
pub struct ListedToken {
    pub record: TokenRecord,
    pub state: TokenState,
}

/// Creates an access token; its scopes are checked before anything is stored.
pub async fn create(store: &Store, token: NewAccessToken) -> Result<Created, AdminError> {
    let owner = store
        .find_user(&token.realm, &token.user)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser {
            user: token.user.clone(),
            realm: token.realm.clone(),
        })?;
    let scopes = token.scopes.join(" ");
    if !scopes.is_empty() {
        scope_limit(&scopes)?;
    }
    let expires_at = token
        .lifetime
        .map(|lifetime| unix_now() + lifetime.as_secs());
    let spec = TokenSpec {
        kind: TokenKind::Access,
        user_id: owner.id,
        name: Some(token.name.as_str()),
        client_id: None,
        scopes: (!scopes.is_empty()).then_some(scopes.as_str()),
        expires_at,
    };
    Ok(token::create(store, &spec).await?)
}

/// A realm's tokens, or only `user`'s, with their state at `now`.
pub async fn list(
    store: &Store,
    realm: &RealmName,
    user: Option<&Username>,
    now: i64,
) -> Result<Vec<ListedToken>, AdminError> {
    Ok(store
        .list_tokens(realm, user)
        .await?
        .into_iter()
        .map(|record| ListedToken {
            state: if record.revoked_at.is_some() {
                TokenState::Revoked
            } else if record.expires_at.is_some_and(|at| at <= now) {
                TokenState::Expired
            } else {
                TokenState::Active
            },
            record,
        })
        .collect())
}

/// Revokes one token by its id.
pub async fn revoke(store: &Store, realm: &RealmName, id: &str) -> Result<(), AdminError> {
    store.revoke_token(realm, id).await?;
    Ok(())
}

/// Revokes every token of `user`; returns how many were still unrevoked.
pub async fn revoke_all_of(
    store: &Store,
    realm: &RealmName,
    user: &Username,
) -> Result<u64, AdminError> {
    Ok(store.revoke_user_tokens(realm, user, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_have_a_unit_and_a_range() {
        let secs = |text: &str| Lifetime::parse(text).ok().map(Lifetime::as_secs);
        assert_eq!(secs("30d"), Some(30 * SECS_PER_DAY));
        assert_eq!(secs("12h"), Some(12 * 3_600));
        assert_eq!(secs("45m"), Some(45 * 60));
        assert_eq!(secs("1s"), Some(1));
        assert_eq!(secs("3650d"), Some(MAX_LIFETIME_SECS));
        for refused in [
            "3651d",
            "0s",
            "-1d",
            "30",
            "d",
            "1w",
            "99999999999999999999d",
        ] {
            assert_eq!(secs(refused), None, "{refused}");
        }
    }
}
