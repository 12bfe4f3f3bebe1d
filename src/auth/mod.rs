//! Authentication: turns the credentials of a token request into a [`Principal`], or refuses them.
//! This module parses what the caller presents into [`Credentials`] (the one place headers and
//! form fields become credentials) and dispatches on their kind, explicitly, to one backend each:
//! [`password`] (which hands names of directory accounts, and names without an account in a realm
//! with directories, to [`ldap`]), [`token`] (refresh and access tokens), [`munge`] and [`oidc`]
//! (external JWTs: workload identity, never a password). [`lockout`]
//! guards the password path; accounts, tokens and mappings are read through the [`Accounts`] cache as of the
//! request's change counters. A refusal's precise reason goes to the audit log only.

pub mod accounts;
pub mod ldap;
pub mod lockout;
pub mod munge;
pub mod oidc;
pub mod password;
pub mod token;
pub mod trust;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use self::accounts::{Account, Accounts};
use self::ldap::{Directories, DirectoryError, SeenByProcess};
use self::lockout::{Attempts, FailureCache};
use self::munge::MungeDoors;
use self::oidc::{Issuers, OidcError, Workload};
use self::password::{PasswordError, Verifier};
use self::token::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, SECS_PER_DAY};
use crate::config::{LockoutSettings, TokenSettings};
use crate::metrics::Metrics;
use crate::names::{DirectoryName, IssuerName, RealmName, Username};
use crate::policy::Policy;
use crate::realm::Realm;
use crate::scope::Scope;
use crate::store::changes::Counters;
use crate::store::{Source, Store, StoreError, TokenKind};

/// What the caller presented.
pub enum Credentials {
    /// Nothing: an anonymous request.
    Anonymous,
    /// A user name and password (HTTP Basic, or the OAuth2 password grant).
    Password {
        username: String,
        password: SecretString,
    },
    /// A refresh token: the refresh grant, or Basic with an empty user name (containerd's fallback)
    /// or with the owner's name.
    RefreshToken {
        username: Option<String>,
        token: SecretString,
    },
    /// A personal or robot access token, sent as the password of its owner.
    AccessToken {
        username: String,
        token: SecretString,
    },
    /// A MUNGE credential (armored), from an image gateway or a cluster node.
    Munge { credential: SecretString },
    /// An external JWT (workload identity): the password of Basic with any user name, or the
    /// token of a token-exchange or jwt-bearer grant.
    Oidc {
        username: String,
        token: SecretString,
    },
}

impl Credentials {
    /// Classifies a user name and secret (from Basic or the password grant): a secret shaped like a
    /// JWT is an external JWT whatever the user name (never checked as a password, never counted
    /// against an account's lockout); an empty user name or a secret shaped like one of our
    /// refresh tokens is a refresh token; anything else a password.
    pub fn from_user_and_secret(username: String, secret: SecretString) -> Credentials {
        if let Some(credential) = munge::armored(secret.expose_secret()) {
            Credentials::Munge {
                credential: SecretString::from(credential),
            }
        } else if oidc::looks_like_jwt(secret.expose_secret()) {
            Credentials::Oidc {
                username,
                token: secret,
            }
        } else if username.is_empty() {
            Credentials::RefreshToken {
                username: None,
                token: secret,
            }
        } else if secret.expose_secret().starts_with(REFRESH_TOKEN_PREFIX) {
            Credentials::RefreshToken {
                username: Some(username),
                token: secret,
            }
        } else if secret.expose_secret().starts_with(ACCESS_TOKEN_PREFIX) {
            Credentials::AccessToken {
                username,
                token: secret,
            }
        } else {
            Credentials::Password {
                username,
                password: secret,
            }
        }
    }

    /// Credentials from an `Authorization` header: `Basic base64(user:password)`, the password may
    /// contain colons, the user name may not. Also `Basic b'base64'`, the Python bytes literal
    /// Shifter's code writes.
    pub fn from_authorization(value: &[u8]) -> Result<Credentials, MalformedCredentials> {
        let malformed = MalformedCredentials::Authorization;
        let value = header_text(value).ok_or(malformed("not ASCII"))?;
        let (scheme, encoded) = value
            .trim()
            .split_once(' ')
            .ok_or(malformed("expected Basic credentials"))?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(malformed("only the Basic scheme is accepted"));
        }
        let encoded = encoded.trim();
        let encoded = encoded
            .strip_prefix("b'")
            .and_then(|e| e.strip_suffix('\''))
            .unwrap_or(encoded);
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| malformed("credentials are not base64"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| malformed("credentials are not UTF-8"))?;
        let (username, password) = decoded.split_once(':').ok_or(malformed(
            "credentials lack the ':' between user and password",
        ))?;
        Ok(Credentials::from_user_and_secret(
            username.to_owned(),
            SecretString::from(password),
        ))
    }

    /// Credentials from the image gateways' [`munge::MUNGE_HEADER`]: a MUNGE credential, armored or
    /// with the colons Shifter's code strips.
    pub fn from_munge_header(value: &[u8]) -> Result<Credentials, MalformedCredentials> {
        let credential = header_text(value)
            .and_then(munge::armored)
            .ok_or(MalformedCredentials::Munge)?;
        Ok(Credentials::Munge {
            credential: SecretString::from(credential),
        })
    }

    /// The method these credentials claim.
    pub fn method(&self) -> Method {
        match self {
            Credentials::Anonymous => Method::Anonymous,
            Credentials::Password { .. } => Method::Password,
            Credentials::RefreshToken { .. } => Method::RefreshToken,
            Credentials::AccessToken { .. } => Method::AccessToken,
            Credentials::Munge { .. } => Method::Munge,
            Credentials::Oidc { .. } => Method::Oidc,
        }
    }

    /// The user name the caller claims (not yet proven), `""` when none.
    pub fn claimed_user(&self) -> &str {
        match self {
            Credentials::Anonymous
            | Credentials::Munge { .. }
            | Credentials::RefreshToken { username: None, .. } => "",
            Credentials::Password { username, .. }
            | Credentials::AccessToken { username, .. }
            | Credentials::Oidc { username, .. }
            | Credentials::RefreshToken {
                username: Some(username),
                ..
            } => username,
        }
    }
}

/// A header that should carry credentials does not hold them in a form we read.
#[derive(Debug, thiserror::Error)]
pub enum MalformedCredentials {
    #[error("malformed Authorization header: {0}")]
    Authorization(&'static str),
    #[error("malformed authentication header: expected a MUNGE credential")]
    Munge,
}

/// A header value as text, when it is visible ASCII (tabs allowed), as HTTP libraries read header
/// values; `None` otherwise.
fn header_text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// How the caller proved who it is; named in audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Anonymous,
    Password,
    RefreshToken,
    AccessToken,
    Munge,
    Oidc,
}

impl Method {
    /// The name used in audit events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Anonymous => "anonymous",
            Method::Password => "password",
            Method::RefreshToken => "refresh_token",
            Method::AccessToken => "access_token",
            Method::Munge => "munge",
            Method::Oidc => "oidc",
        }
    }
}

/// What a request asks for (a MUNGE credential may be bound to it) and where it comes from
/// (failed passwords are counted per client address).
pub struct Binding<'a> {
    pub service: &'a str,
    pub scopes: &'a [Scope],
    pub client_addr: &'a str,
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: Username,
    /// The user's groups; realm admins are also in the policy's admin group.
    pub groups: Vec<String>,
}

/// Who is asking: a user, a workload, or nobody.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<User>,
    /// A workload proven by an external JWT (then `user` is `None`).
    pub workload: Option<Arc<Workload>>,
    pub method: Method,
    /// The id of the token that authenticated the caller, for the audit log.
    pub token_id: Option<String>,
    /// An access token's scopes: what the caller may ask for at most, whatever the policy allows.
    pub limit: Option<Arc<Policy>>,
    /// The MUNGE platform the credential came from.
    pub platform: Option<String>,
    /// The directory a directory account logs in at.
    pub directory: Option<DirectoryName>,
}

impl Principal {
    /// A caller with no credentials.
    pub fn anonymous() -> Principal {
        Principal {
            user: None,
            workload: None,
            method: Method::Anonymous,
            token_id: None,
            limit: None,
            platform: None,
            directory: None,
        }
    }

    /// A workload proven by an external JWT.
    pub fn workload(workload: Workload) -> Principal {
        Principal {
            workload: Some(Arc::new(workload)),
            method: Method::Oidc,
            ..Principal::anonymous()
        }
    }

    /// The `sub` claim: the user name, the workload's `oidc:…` name, or `""` when anonymous (as
    /// Docker Hub does).
    pub fn subject(&self) -> &str {
        match (&self.user, &self.workload) {
            (Some(user), _) => user.username.as_str(),
            (None, Some(workload)) => &workload.name,
            (None, None) => "",
        }
    }
}

/// Authentication did not produce a principal.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// Credentials were presented and are wrong; the reason is for the log, never the client.
    #[error("invalid credentials: {0}")]
    Rejected(&'static str),
    /// Too many failed passwords for this account or address: refused without checking, even
    /// when right, until the lock ends.
    #[error("locked for {retry_after_secs} s after repeated failures")]
    Locked { retry_after_secs: i64 },
    /// The account's or address's password checks in flight could reach the threshold: refused
    /// without checking.
    #[error("too many password checks in flight; retry after {retry_after_secs} s")]
    Throttled { retry_after_secs: i64 },
    /// A directory refused the credentials; the reason is for the log, never the client.
    #[error("invalid credentials at directory {directory}: {reason}")]
    DirectoryRejected {
        directory: DirectoryName,
        reason: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A directory could not be asked (unreachable, too slow, refusing the search identity).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// An external JWT was refused (401), or its issuer's keys could not be had (503).
    #[error(transparent)]
    Oidc(#[from] OidcError),
}

impl AuthnError {
    /// The refusal's reason in the audit log (and the `reason` label of the denials metric).
    pub fn audit_reason(&self) -> &'static str {
        match self {
            AuthnError::Rejected(reason) | AuthnError::DirectoryRejected { reason, .. } => reason,
            AuthnError::Locked { .. } => "locked after repeated failures",
            AuthnError::Throttled { .. } => "too many password checks in flight",
            AuthnError::Password(PasswordError::Overloaded) => "password checks overloaded",
            AuthnError::Store(_) | AuthnError::Password(_) => "authentication unavailable",
            AuthnError::Directory(_) => "directory unavailable",
            AuthnError::Oidc(OidcError::Refused { refusal, .. }) => refusal.reason(),
            AuthnError::Oidc(OidcError::Unavailable(_)) => "oidc: issuer keys unavailable",
        }
    }

    /// The trusted issuer that refused or failed, for the audit log.
    pub fn issuer(&self) -> Option<&IssuerName> {
        match self {
            AuthnError::Oidc(OidcError::Refused { issuer, .. }) => issuer.as_ref(),
            AuthnError::Oidc(OidcError::Unavailable(e)) => Some(&e.issuer),
            _ => None,
        }
    }

    /// The directory that refused or failed, for the audit log.
    pub fn directory(&self) -> Option<&DirectoryName> {
        match self {
            AuthnError::DirectoryRejected { directory, .. } => Some(directory),
            AuthnError::Directory(error) => Some(&error.directory),
            _ => None,
        }
    }
}

/// Checks credentials against a realm's users.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    accounts: Arc<Accounts>,
    failures: Arc<FailureCache>,
    verifier: Verifier,
    refresh_idle_secs: i64,
    doors: Arc<MungeDoors>,
    lockout: LockoutSettings,
    attempts: Arc<Attempts>,
    metrics: Arc<Metrics>,
    directories: Arc<Directories>,
    seen_groups: Arc<SeenByProcess>,
    issuers: Arc<Issuers>,
}

/// The backends that vouch for callers besides the database: MUNGE front doors, directories and
/// trusted OIDC issuers, each loaded from the settings at start.
pub struct Federation {
    pub doors: Arc<MungeDoors>,
    pub directories: Arc<Directories>,
    pub issuers: Arc<Issuers>,
}

impl Authenticator {
    pub fn new(
        store: Store,
        verifier: Verifier,
        tokens: &TokenSettings,
        lockout: &LockoutSettings,
        metrics: Arc<Metrics>,
        federation: Federation,
    ) -> Result<Authenticator, PasswordError> {
        let Federation {
            doors,
            directories,
            issuers,
        } = federation;
        Ok(Authenticator {
            accounts: Arc::new(Accounts::new(store.clone())),
            failures: Arc::new(FailureCache::new(store.clone())),
            store,
            verifier,
            refresh_idle_secs: i64::from(tokens.refresh_idle_days) * SECS_PER_DAY,
            doors,
            lockout: lockout.clone(),
            attempts: Attempts::new(lockout)?,
            metrics,
            directories,
            seen_groups: Arc::default(),
            issuers,
        })
    }

    /// The principal behind `credentials` in `realm`, as of the change `counters`: each kind of
    /// credential goes to its own backend, and nothing else is tried when that one refuses.
    #[tracing::instrument(name = "authenticate", level = "debug", skip_all, fields(realm = %realm.name))]
    pub async fn authenticate(
        &self,
        realm: &Realm,
        credentials: Credentials,
        binding: &Binding<'_>,
        counters: &Counters,
    ) -> Result<Principal, AuthnError> {
        let request = Request {
            realm,
            binding,
            counters,
        };
        match credentials {
            Credentials::Anonymous => Ok(Principal::anonymous()),
            Credentials::Munge { credential } => self.munge(&request, &credential).await,
            Credentials::Password { username, password } => {
                self.password(&request, &username, password).await
            }
            Credentials::RefreshToken { username, token } => {
                self.token(&request, TokenKind::Refresh, username.as_deref(), &token)
                    .await
            }
            Credentials::AccessToken { username, token } => {
                self.token(&request, TokenKind::Access, Some(&username), &token)
                    .await
            }
            Credentials::Oidc { token, .. } => self.oidc(realm, &token).await,
        }
    }

    /// The groups an account's source gives it besides its own: none for a local account; its
    /// directory's (`ldap`); its provider's from the last console sign-in, until the console
    /// client's `groups_valid_secs` have passed (none after, or once the provider is no longer
    /// configured: the person signs in again to bring them back).
    async fn source_groups(
        &self,
        realm: &RealmName,
        account: &Account,
    ) -> Result<Vec<String>, AuthnError> {
        match &account.record.source {
            Source::Local => Ok(Vec::new()),
            Source::Directory(_) => self.directory_groups(realm, account).await,
            Source::Provider(name) => {
                let valid_secs = self
                    .issuers
                    .of(realm)
                    .iter()
                    .find(|issuer| issuer.settings.name == *name)
                    .and_then(|issuer| issuer.settings.console.as_ref())
                    .map_or(0, |console| console.groups_valid_secs);
                let valid_secs = i64::try_from(valid_secs).unwrap_or(i64::MAX);
                let now = crate::store::unix_now();
                Ok(account
                    .record
                    .directory_groups
                    .as_ref()
                    .filter(|seen| now - seen.at < valid_secs)
                    .map(|seen| seen.groups.clone())
                    .unwrap_or_default())
            }
        }
    }

    /// The workload behind an external JWT, verified against the realm's trusted issuers.
    async fn oidc(&self, realm: &Realm, token: &SecretString) -> Result<Principal, AuthnError> {
        let workload = oidc::verify(
            self.issuers.of(&realm.name),
            token.expose_secret(),
            crate::store::unix_now().max(0).unsigned_abs(),
            &mut oidc::Trace::off(),
        )
        .await?;
        Ok(Principal::workload(workload))
    }
}

/// What every step of one authentication shares.
struct Request<'a> {
    realm: &'a Realm,
    binding: &'a Binding<'a>,
    counters: &'a Counters,
}

/// The principal of an authenticated account, in its groups and `directory_groups` (those its
/// directory gives it; none for a local account).
fn principal(
    account: &Account,
    method: Method,
    token_id: Option<String>,
    directory_groups: Vec<String>,
) -> Principal {
    let mut groups = account.groups.clone();
    for group in directory_groups {
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    Principal {
        user: Some(User {
            id: account.record.id,
            username: account.record.username.clone(),
            groups,
        }),
        workload: None,
        method,
        token_id,
        limit: None,
        platform: None,
        directory: match &account.record.source {
            Source::Directory(name) => Some(name.clone()),
            Source::Local | Source::Provider(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(user_pass)).into_bytes()
    }

    #[test]
    fn headers_become_credentials_by_the_shape_of_their_secret() {
        let classify = |user_pass: &str| Credentials::from_authorization(&basic(user_pass));
        let password = classify("alice:pa:ss").unwrap();
        assert_eq!(password.method(), Method::Password);
        assert_eq!(password.claimed_user(), "alice");
        let refresh = format!("alice:{REFRESH_TOKEN_PREFIX}x");
        assert_eq!(classify(&refresh).unwrap().method(), Method::RefreshToken);
        assert_eq!(
            classify(":anything").unwrap().method(),
            Method::RefreshToken
        );
        let access = format!("alice:{ACCESS_TOKEN_PREFIX}x");
        assert_eq!(classify(&access).unwrap().method(), Method::AccessToken);
        assert_eq!(classify("x:MUNGEAwQ=").unwrap().method(), Method::Munge);
        let jwt = format!(
            "{}.e30.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#)
        );
        for user in ["oidc", "alice", ""] {
            let presented = classify(&format!("{user}:{jwt}")).unwrap();
            assert_eq!(presented.method(), Method::Oidc, "{user:?}");
            assert_eq!(presented.claimed_user(), user);
        }
        let bytes_literal = format!("Basic b'{}'", STANDARD.encode("alice:pw"));
        let shifter = Credentials::from_authorization(bytes_literal.as_bytes()).unwrap();
        assert_eq!(shifter.claimed_user(), "alice");
        let munge = Credentials::from_munge_header(b" MUNGEAwQ= ").unwrap();
        assert_eq!(munge.method(), Method::Munge);
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let error = |value: &[u8]| Credentials::from_authorization(value).err().unwrap();
        assert_eq!(
            error("Basic é".as_bytes()).to_string(),
            "malformed Authorization header: not ASCII"
        );
        assert_eq!(
            error(b"Bearer abc").to_string(),
            "malformed Authorization header: only the Basic scheme is accepted"
        );
        assert_eq!(
            error(b"Basic bm9jb2xvbg==").to_string(),
            "malformed Authorization header: credentials lack the ':' between user and password"
        );
        for munge in [&b"password"[..], "MUNGE:é:".as_bytes()] {
            assert_eq!(
                Credentials::from_munge_header(munge)
                    .err()
                    .unwrap()
                    .to_string(),
                "malformed authentication header: expected a MUNGE credential"
            );
        }
    }
}
