//! Authentication: turns the credentials of a token request into a [`Principal`], or refuses them.
//! Unknown user, disabled user, bad name and wrong password all cost one argon2 check (a counted
//! repeat none, for each alike) and give the same answer; the precise reason goes to the audit log
//! only. Refresh tokens are found by the
//! SHA-256 of their secret, with no argon2 on that path. Accounts, tokens, mappings and failure
//! records are read through the [`Accounts`] cache, as of the request's change counters; the
//! [`Attempts`] of this process cap the password checks in flight per account and address and
//! recognise a client's retry of a wrong password, which is refused again but not counted.

pub mod accounts;
pub mod lockout;
pub mod munge;
pub mod password;
pub mod token;

use std::sync::Arc;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use crate::auth::accounts::{Account, Accounts, TokenEntry};
use crate::auth::lockout::{checks_allowed, Admission, Attempts, Permit};
use crate::auth::munge::{MungeDoors, Payload, RealmDoor};
use crate::auth::password::{Claim, PasswordError, Verifier, MAX_PASSWORD_LEN};
use crate::auth::token::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use crate::config::{LockoutSettings, TokenSettings};
use crate::domain::{RealmName, Username};
use crate::import::BCRYPT_PREFIXES;
use crate::metrics::Metrics;
use crate::munge::MungeError;
use crate::policy::Policy;
use crate::realm::Realm;
use crate::scope::{self, Scope};
use crate::store::changes::Counters;
use crate::store::{unix_now, FailureRecord, Store, StoreError, TokenKind};

/// Seconds in a day, for the day-denominated token settings.
pub const SECS_PER_DAY: i64 = 86_400;
/// Retry-After of a password attempt refused because its account's or address's checks in flight
/// could already reach the threshold: by then they have ended, in a success or a lock.
const THROTTLED_RETRY_AFTER_SECS: i64 = 1;

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
}

impl Credentials {
    /// Classifies a user name and secret (from Basic or the password grant): an empty user name or
    /// a secret shaped like one of our refresh tokens is a refresh token; anything else a password.
    pub fn from_user_and_secret(username: String, secret: SecretString) -> Credentials {
        if let Some(credential) = munge::armored(secret.expose_secret()) {
            Credentials::Munge {
                credential: SecretString::from(credential),
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

    /// The method these credentials claim.
    pub fn method(&self) -> Method {
        match self {
            Credentials::Anonymous => Method::Anonymous,
            Credentials::Password { .. } => Method::Password,
            Credentials::RefreshToken { .. } => Method::RefreshToken,
            Credentials::AccessToken { .. } => Method::AccessToken,
            Credentials::Munge { .. } => Method::Munge,
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
            | Credentials::RefreshToken {
                username: Some(username),
                ..
            } => username,
        }
    }
}

/// How the caller proved who it is; named in audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Anonymous,
    Password,
    RefreshToken,
    AccessToken,
    Munge,
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

/// Who is asking: a user, or nobody.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<User>,
    pub method: Method,
    /// The id of the token that authenticated the caller, for the audit log.
    pub token_id: Option<String>,
    /// An access token's scopes: what the caller may ask for at most, whatever the policy allows.
    pub limit: Option<Arc<Policy>>,
    /// The MUNGE platform the credential came from.
    pub platform: Option<String>,
}

impl Principal {
    /// The `sub` claim: the user name, or `""` when anonymous (as Docker Hub does).
    pub fn subject(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.username.as_str())
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl AuthnError {
    /// The refusal's reason in the audit log (and the `reason` label of the denials metric).
    pub fn audit_reason(&self) -> &'static str {
        match self {
            AuthnError::Rejected(reason) => reason,
            AuthnError::Locked { .. } => "locked after repeated failures",
            AuthnError::Throttled { .. } => "too many password checks in flight",
            AuthnError::Password(PasswordError::Overloaded) => "password checks overloaded",
            AuthnError::Store(_) | AuthnError::Password(_) => "authentication unavailable",
        }
    }
}

/// Checks credentials against a realm's users.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    accounts: Arc<Accounts>,
    verifier: Verifier,
    refresh_idle_secs: i64,
    doors: Arc<MungeDoors>,
    lockout: LockoutSettings,
    attempts: Arc<Attempts>,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    pub fn new(
        store: Store,
        verifier: Verifier,
        tokens: &TokenSettings,
        doors: Arc<MungeDoors>,
        lockout: &LockoutSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Authenticator, PasswordError> {
        Ok(Authenticator {
            accounts: Arc::new(Accounts::new(store.clone())),
            store,
            verifier,
            refresh_idle_secs: i64::from(tokens.refresh_idle_days) * SECS_PER_DAY,
            doors,
            lockout: lockout.clone(),
            attempts: Attempts::new(lockout)?,
            metrics,
        })
    }

    /// The principal behind `credentials` in `realm`, as of the change `counters`.
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
            Credentials::Anonymous => Ok(Principal {
                user: None,
                method: Method::Anonymous,
                token_id: None,
                limit: None,
                platform: None,
            }),
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
        }
    }

    /// A MUNGE credential: decoded with the realm's platform keys, used once, then either its uid
    /// (empty payload) is mapped to a user, or our `authorized_locations` entry is checked exactly as
    /// Basic credentials would be.
    async fn munge(
        &self,
        request: &Request<'_>,
        credential: &SecretString,
    ) -> Result<Principal, AuthnError> {
        let realm = request.realm;
        let Some(door) = self.doors.realm(&realm.name) else {
            return Err(AuthnError::Rejected("munge: not accepted in this realm"));
        };
        let now = unix_now();
        let decoded = door
            .decode(
                credential.expose_secret(),
                u64::try_from(now).unwrap_or_default(),
            )
            .map_err(|error| AuthnError::Rejected(munge_reason(&error)))?;
        let replay_key = data_encoding::HEXLOWER.encode(&decoded.replay_key());
        let expires_at = i64::try_from(decoded.expires_at()).unwrap_or(i64::MAX);
        if !self
            .store
            .record_munge_use(&replay_key, expires_at, now)
            .await?
        {
            return Err(AuthnError::Rejected("munge: credential replayed"));
        }
        let platform = decoded.platform().to_owned();
        let mut principal = if decoded.payload().is_empty() {
            let account = self
                .accounts
                .munge_user(request.counters, &realm.name, &platform, decoded.uid())
                .await?;
            let Some(account) = account else {
                tracing::warn!(target: "audit", platform = %platform, uid = decoded.uid(), "munge: unmapped uid");
                return Err(AuthnError::Rejected("munge: unmapped uid"));
            };
            if account.record.disabled {
                return Err(AuthnError::Rejected("user disabled"));
            }
            principal(&account, Method::Munge, None)
        } else {
            self.munge_payload(request, door, decoded.payload()).await?
        };
        principal.method = Method::Munge;
        principal.platform = Some(platform);
        Ok(principal)
    }

    /// A privileged credential's payload: bound to this use if it says so, carrying our location's
    /// `user:password` (split at the first colon; passwords may hold colons).
    async fn munge_payload(
        &self,
        request: &Request<'_>,
        door: &RealmDoor,
        payload: &[u8],
    ) -> Result<Principal, AuthnError> {
        let binding = request.binding;
        let payload: Payload = serde_json::from_slice(payload)
            .map_err(|_| AuthnError::Rejected("munge: payload is not the gateway's JSON"))?;
        if payload
            .service
            .as_deref()
            .is_some_and(|service| service != binding.service)
        {
            return Err(AuthnError::Rejected(
                "munge: credential bound to another service",
            ));
        }
        if let Some(scope) = &payload.scope {
            let bound = scope::parse_all([scope.as_str()]).map_err(|_| {
                AuthnError::Rejected("munge: credential bound to a malformed scope")
            })?;
            if bound != binding.scopes {
                return Err(AuthnError::Rejected(
                    "munge: credential bound to another scope",
                ));
            }
        }
        let entry = door
            .choose(&payload.authorized_locations)
            .ok_or(AuthnError::Rejected(
                "munge: no authorized location for this registry",
            ))?;
        let (username, secret) = entry.split_once(':').ok_or(AuthnError::Rejected(
            "munge: location entry is not user:password",
        ))?;
        match Credentials::from_user_and_secret(username.to_owned(), SecretString::from(secret)) {
            Credentials::Password { username, password } => {
                self.password(request, &username, password).await
            }
            Credentials::AccessToken { username, token } => {
                self.token(request, TokenKind::Access, Some(&username), &token)
                    .await
            }
            Credentials::RefreshToken { username, token } => {
                self.token(request, TokenKind::Refresh, username.as_deref(), &token)
                    .await
            }
            Credentials::Anonymous | Credentials::Munge { .. } => Err(AuthnError::Rejected(
                "munge: location entry holds no password",
            )),
        }
    }

    /// A refresh or access token, found by the digest of its secret (no argon2 on this path).
    async fn token(
        &self,
        request: &Request<'_>,
        kind: TokenKind,
        username: Option<&str>,
        secret: &SecretString,
    ) -> Result<Principal, AuthnError> {
        let (prefix, method) = match kind {
            TokenKind::Refresh => (REFRESH_TOKEN_PREFIX, Method::RefreshToken),
            TokenKind::Access => (ACCESS_TOKEN_PREFIX, Method::AccessToken),
        };
        if !token::looks_like(secret.expose_secret(), prefix) {
            return Err(AuthnError::Rejected("malformed token"));
        }
        let (realm, counters) = (&request.realm.name, request.counters);
        let digest = token::sha256_hex(secret);
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
        let mut principal = principal(&token.owner, method, Some(record.id.clone()));
        principal.limit = limit;
        Ok(principal)
    }

    /// True for a refresh token unused for longer than allowed.
    fn idle(&self, token: &TokenEntry, now: i64) -> bool {
        token.record.kind == TokenKind::Refresh
            && token.last_active() + self.refresh_idle_secs <= now
    }

    /// A password: refused while its account or address is locked; otherwise checked once per
    /// distinct attempt (a copy in flight waits for the original, a wrong password counted within
    /// the reset window is refused again without a check), and only while the checks in flight
    /// cannot take the account or address past its threshold.
    async fn password(
        &self,
        request: &Request<'_>,
        username: &str,
        password: SecretString,
    ) -> Result<Principal, AuthnError> {
        if password.expose_secret().len() > MAX_PASSWORD_LEN {
            return Err(AuthnError::Rejected("password too long"));
        }
        let (realm, counters) = (request.realm, request.counters);
        let name = Username::parse(username).ok();
        let address = address_subject(request.binding.client_addr);
        // Only valid names get an account counter, so junk names cannot fill the table.
        let account = name
            .as_ref()
            .map_or_else(|| address.clone(), |n| lockout_subject(&realm.name, n));
        // Set once this attempt has waited for an identical one being checked.
        let mut waited = false;
        loop {
            let now = unix_now();
            let checks_ended = self.attempts.checks_ended();
            let account_failures = self.accounts.failures(counters, &account).await?;
            let address_failures = self.accounts.failures(counters, &address).await?;
            let locked_until = account_failures
                .locked_until
                .max(address_failures.locked_until);
            if locked_until > now {
                return Err(AuthnError::Locked {
                    retry_after_secs: locked_until - now,
                });
            }
            let found = match &name {
                Some(name) => self.accounts.user(counters, &realm.name, name).await?,
                None => None,
            };
            let hash = found.as_ref().and_then(|a| a.record.password_hash.clone());
            let attempt = Attempt {
                username,
                account: &account,
                address: &address,
                found,
                hash,
            };
            let claim = Claim {
                realm: realm.name.as_str(),
                username,
            };
            let cached = attempt
                .hash
                .as_deref()
                .is_some_and(|phc| self.verifier.is_cached(&claim, &password, phc));
            if cached {
                // Verified before against this hash: no check to cap, no copy to wait for.
                return self.check_password(request, attempt, password, None).await;
            }
            let fingerprint = self
                .attempts
                .fingerprint(realm.name.as_str(), username, &password);
            let lockout = &self.lockout;
            let address_allows =
                checks_allowed(&address_failures, lockout.address_threshold, lockout, now);
            let account_allows =
                checks_allowed(&account_failures, lockout.account_threshold, lockout, now);
            let both = [
                (address.as_str(), address_allows),
                (account.as_str(), account_allows),
            ];
            let subjects = if account == address {
                &both[..1]
            } else {
                &both[..]
            };
            match self.attempts.admit(
                &fingerprint,
                attempt.hash.as_deref(),
                subjects,
                checks_ended,
                now,
            ) {
                Admission::Check(permit) => {
                    return self
                        .check_password(request, attempt, password, Some(permit))
                        .await;
                }
                Admission::Wait(mut original) => {
                    // No value is ever sent: this returns when the original's permit is dropped.
                    let _ = original.changed().await;
                    waited = true;
                }
                // A burst of copies is a burst like any other: beyond the one check, 429.
                Admission::Repeated if waited => {
                    return Err(AuthnError::Throttled {
                        retry_after_secs: THROTTLED_RETRY_AFTER_SECS,
                    });
                }
                Admission::Repeated => {
                    return Err(AuthnError::Rejected(match attempt.found {
                        Some(_) => "wrong password, repeated (not counted again)",
                        None => "unknown user or no password set, repeated (not counted again)",
                    }));
                }
                Admission::Full => {
                    return Err(AuthnError::Throttled {
                        retry_after_secs: THROTTLED_RETRY_AFTER_SECS,
                    });
                }
                Admission::Stale => {}
            }
        }
    }

    /// Checks a password attempt, admitted (`permit`) or verified before; a wrong one is counted
    /// for its account and address, then remembered, and a right one clears the account's
    /// failures wherever they were counted.
    async fn check_password(
        &self,
        request: &Request<'_>,
        attempt: Attempt<'_>,
        password: SecretString,
        permit: Option<Permit>,
    ) -> Result<Principal, AuthnError> {
        let (realm, counters) = (request.realm, request.counters);
        let Attempt {
            username,
            account,
            address,
            found,
            hash,
        } = attempt;
        let claim = Claim {
            realm: realm.name.as_str(),
            username,
        };
        let imported = hash
            .as_deref()
            .is_some_and(|h| BCRYPT_PREFIXES.iter().any(|p| h.starts_with(p)));
        let plaintext = imported.then(|| SecretString::from(password.expose_secret().to_owned()));
        let started = Instant::now();
        let matched = self.verifier.verify(&claim, hash.clone(), password).await?;
        self.metrics
            .password_checked(started.elapsed().as_secs_f64());
        let refusal = match &found {
            None => Some("unknown user or no password set"),
            Some(_) if !matched => Some("wrong password"),
            Some(a) if a.record.disabled => Some("user disabled"),
            Some(_) => None,
        };
        let now = unix_now();
        if let Some(reason) = refusal {
            if account != address {
                self.record_failure(account, now, self.lockout.account_threshold)
                    .await?;
            }
            self.record_failure(address, now, self.lockout.address_threshold)
                .await?;
            if let Some(permit) = permit.as_ref().filter(|_| !matched) {
                permit.counted_wrong(hash.as_deref(), now);
            }
            return Err(AuthnError::Rejected(reason));
        }
        drop(permit);
        let found = found.expect("a refusal above when there is no account");
        // Failures short of a lock move no counter, but a subject's first failure does, so this
        // cache knows of failures counted by any instance; the common case (none) writes nothing.
        if self.accounts.failures(counters, account).await?.failures > 0 {
            self.store.clear_failures(account).await?;
            self.accounts
                .failures_written(account, FailureRecord::default());
        }
        if let (Some(plaintext), Some(old)) = (plaintext, hash) {
            let new = self.verifier.hash(plaintext).await?;
            self.store
                .replace_imported_hash(found.record.id, &old, &new)
                .await?;
            tracing::info!(target: "audit", user = %found.record.username, "imported bcrypt hash replaced with argon2id");
        }
        Ok(principal(&found, Method::Password, None))
    }

    /// Counts a failed password for `subject` (an account or an address).
    async fn record_failure(
        &self,
        subject: &str,
        now: i64,
        threshold: u32,
    ) -> Result<(), AuthnError> {
        let record = self
            .store
            .record_failure(subject, now, &self.lockout, threshold)
            .await?;
        self.accounts.failures_written(subject, record);
        if record.locked_until > 0 {
            self.metrics.locked();
        }
        Ok(())
    }
}

/// A password attempt admitted for a check: the claim, the subjects it counts for, and the user
/// and stored hash it is checked against (none: the dummy hash).
struct Attempt<'a> {
    username: &'a str,
    account: &'a str,
    address: &'a str,
    found: Option<Arc<Account>>,
    hash: Option<String>,
}

/// What every step of one authentication shares.
struct Request<'a> {
    realm: &'a Realm,
    binding: &'a Binding<'a>,
    counters: &'a Counters,
}

/// The principal of an authenticated account.
fn principal(account: &Account, method: Method, token_id: Option<String>) -> Principal {
    Principal {
        user: Some(User {
            id: account.record.id,
            username: account.record.username.clone(),
            groups: account.groups.clone(),
        }),
        method,
        token_id,
        limit: None,
        platform: None,
    }
}

/// The audit reason for a refused MUNGE credential, by munged's error.
fn munge_reason(error: &MungeError) -> &'static str {
    match error {
        MungeError::Expired => "munge: credential expired",
        MungeError::Rewound => "munge: credential rewound (encoded in the future)",
        MungeError::Replayed => "munge: credential replayed",
        MungeError::Unauthorized => "munge: credential restricted to another uid or gid",
        MungeError::CredInvalid => "munge: invalid credential (no platform key verifies it)",
        MungeError::BadVersion(_) => "munge: unsupported credential version",
        MungeError::BadCipher(_) => "munge: unsupported cipher",
        MungeError::BadMac { .. } => "munge: unsupported MAC",
        MungeError::BadZip(_) => "munge: unsupported compression",
        MungeError::BadArg | MungeError::BadLength(_) | MungeError::BadCred(_) => {
            "munge: malformed credential"
        }
    }
}

/// The lockout counter of an account (`portcullis user unlock` and `lockout clear --user` clear
/// it).
pub fn lockout_subject(realm: &RealmName, username: &Username) -> String {
    format!("account:{realm}/{username}")
}

/// The lockout counter of a client address (`portcullis lockout clear --address` clears it).
pub fn address_subject(address: &str) -> String {
    format!("address:{address}")
}
