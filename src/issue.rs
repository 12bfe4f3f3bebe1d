//! The request path behind the token endpoint: check the service, authenticate, authorize, sign, and
//! record one audit event (target `audit`) for every grant or refusal. HTTP-free.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;

use crate::auth::token::{self, CreateError, TokenSpec, SECS_PER_DAY};
use crate::auth::{Authenticator, AuthnError, Binding, Credentials, Method, Principal, User};
use crate::config::TokenSettings;
use crate::jwt::{Claims, Jwt, ResourceActions, SignError, MIN_TOKEN_TTL_SECS};
use crate::keys::ring::{KeyRing, NoSigningKey};
use crate::metrics::Metrics;
use crate::names::{DirectoryName, IssuerName, RealmName, MAX_USERNAME_LEN};
use crate::policy::authorize::{self, Authorization};
use crate::policy::source::{Policies, PoliciesError};
use crate::policy::RuleRef;
use crate::realm::{Realm, RealmError};
use crate::scope::Scope;
use crate::store::{unix_now, Store, StoreError, TokenKind};

/// A parsed token request, whatever its HTTP shape.
pub struct TokenRequest {
    pub service: String,
    pub scopes: Vec<Scope>,
    pub credentials: Credentials,
    pub client_id: Option<String>,
    /// The client asked for a refresh token (`offline_token=true`, `access_type=offline`); only
    /// a password login gets one (an external JWT never does).
    pub offline: bool,
    /// The client's address, for the audit log.
    pub client_addr: String,
}

/// A signed token and what it grants.
pub struct Issued {
    pub token: Jwt,
    pub expires_in: u64,
    pub issued_at: SystemTime,
    pub granted: Vec<Scope>,
    /// A new refresh token, when one was asked for with a password.
    pub refresh_token: Option<SecretString>,
}

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("service {0:?} is not served by this realm")]
    UnknownService(String),
    #[error(transparent)]
    Authn(#[from] AuthnError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mint(#[from] CreateError),
    #[error(transparent)]
    Policy(#[from] PoliciesError),
    #[error(transparent)]
    Keys(#[from] RealmError),
    #[error(transparent)]
    NoKey(#[from] NoSigningKey),
}

/// Issues tokens.
#[derive(Clone)]
pub struct TokenService {
    authenticator: Authenticator,
    store: Store,
    refresh_lifetime_secs: i64,
    policies: Arc<Policies>,
    metrics: Arc<Metrics>,
}

impl TokenService {
    pub fn new(
        authenticator: Authenticator,
        tokens: &TokenSettings,
        store: Store,
        policies: Arc<Policies>,
        metrics: Arc<Metrics>,
    ) -> TokenService {
        TokenService {
            authenticator,
            store,
            refresh_lifetime_secs: i64::from(tokens.refresh_lifetime_days) * SECS_PER_DAY,
            policies,
            metrics,
        }
    }

    /// Authenticates the request, grants requested ∩ allowed and signs the token.
    pub async fn issue(&self, realm: &Realm, request: TokenRequest) -> Result<Issued, IssueError> {
        let TokenRequest {
            service,
            scopes,
            credentials,
            client_id,
            offline,
            client_addr,
        } = request;
        let audit = Audit {
            metrics: &self.metrics,
            realm,
            service: &service,
            requested: &scopes,
            client_id: client_id.as_deref().unwrap_or(""),
            client_addr: &client_addr,
        };
        if !realm.accepts_service(&service) {
            audit.refused("-", "", "unknown service", RefusedBy::default());
            return Err(IssueError::UnknownService(service));
        }
        let method_attempted = credentials.method().as_str();
        let attempted_user: String = credentials
            .claimed_user()
            .chars()
            .take(MAX_USERNAME_LEN)
            .collect();
        let binding = Binding {
            service: &service,
            scopes: &scopes,
            client_addr: &client_addr,
        };
        let counters = match self.store.counters().await {
            Ok(counters) => counters,
            Err(e) => {
                audit.refused(
                    method_attempted,
                    &attempted_user,
                    "database unavailable",
                    RefusedBy::default(),
                );
                return Err(e.into());
            }
        };
        let principal = match self
            .authenticator
            .authenticate(realm, credentials, &binding, &counters)
            .await
        {
            Ok(principal) => principal,
            Err(e) => {
                audit.refused(
                    method_attempted,
                    &attempted_user,
                    e.audit_reason(),
                    RefusedBy {
                        directory: e.directory(),
                        issuer: e.issuer(),
                    },
                );
                return Err(e.into());
            }
        };
        let policy = match self.policies.current(&realm.name, counters.grants).await {
            Ok(policy) => policy,
            Err(e) => {
                audit.refused(
                    method_attempted,
                    &attempted_user,
                    "policy unavailable",
                    RefusedBy::default(),
                );
                return Err(e.into());
            }
        };
        let keys = match realm.keys_at(&self.store, counters.accounts).await {
            Ok(keys) => keys,
            Err(e) => {
                audit.refused(
                    method_attempted,
                    &attempted_user,
                    "signing keys unavailable",
                    RefusedBy::default(),
                );
                return Err(e.into());
            }
        };
        let Authorization { granted, rules } = authorize::authorize(&policy, &principal, &scopes);
        let ttl_secs = lifetime_secs(realm, &principal);
        let signed = sign(realm, &keys, &service, &principal, &granted, ttl_secs);
        let (token, issued_at) = match signed {
            Ok(signed) => signed,
            Err(e) => {
                audit.refused(
                    method_attempted,
                    &attempted_user,
                    "no signing key",
                    RefusedBy::default(),
                );
                return Err(e);
            }
        };
        let refresh_token = match (&principal.user, principal.method) {
            (Some(user), Method::Password) if offline => Some(
                self.mint_refresh_token(&realm.name, user, client_id.as_deref())
                    .await?,
            ),
            _ => None,
        };
        audit.granted(&principal, &granted, &rules);
        Ok(Issued {
            token,
            expires_in: ttl_secs,
            issued_at,
            granted,
            refresh_token,
        })
    }

    /// A refresh token for `user`, recorded (as a digest) with the client that asked for it.
    async fn mint_refresh_token(
        &self,
        realm: &RealmName,
        user: &User,
        client_id: Option<&str>,
    ) -> Result<SecretString, IssueError> {
        let created = token::create(
            &self.store,
            &TokenSpec {
                kind: TokenKind::Refresh,
                user_id: user.id,
                name: None,
                client_id,
                scopes: None,
                expires_at: Some(unix_now() + self.refresh_lifetime_secs),
            },
        )
        .await?;
        tracing::info!(target: "audit", event = "refresh_token_issued", realm = %realm, user = %user.username, token_id = %created.id);
        Ok(created.secret)
    }
}

/// The lifetime of the JWT issued to `principal`: the realm's, or less when the principal was
/// proven by an external JWT that expires sooner (never less than the minimum: such a JWT is
/// refused when authenticated).
fn lifetime_secs(realm: &Realm, principal: &Principal) -> u64 {
    match &principal.workload {
        Some(workload) => {
            let left = workload
                .expires_at
                .saturating_sub(unix_now().max(0).unsigned_abs());
            realm.token_ttl_secs.min(left.max(MIN_TOKEN_TTL_SECS))
        }
        None => realm.token_ttl_secs,
    }
}

/// The token signed by the key active now, and the time it was issued at.
fn sign(
    realm: &Realm,
    keys: &KeyRing,
    service: &str,
    principal: &Principal,
    granted: &[Scope],
    ttl_secs: u64,
) -> Result<(Jwt, SystemTime), IssueError> {
    let issued_at = SystemTime::now();
    let since_epoch = issued_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let key = keys.active(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))?;
    let iat = since_epoch.as_secs();
    let claims = Claims {
        iss: &realm.issuer,
        sub: principal.subject(),
        aud: service,
        exp: iat + ttl_secs,
        nbf: iat,
        iat,
        jti: key.signer.jti()?,
        access: granted.iter().map(ResourceActions::from).collect(),
    };
    Ok((key.signer.sign(&key.key, &claims)?, issued_at))
}

/// The fields every audit event of one request shares.
struct Audit<'a> {
    metrics: &'a Metrics,
    realm: &'a Realm,
    service: &'a str,
    requested: &'a [Scope],
    client_id: &'a str,
    client_addr: &'a str,
}

impl Audit<'_> {
    fn granted(&self, principal: &Principal, granted: &[Scope], rules: &[RuleRef]) {
        let workload = principal.workload.as_deref();
        self.metrics.issued(
            self.realm.name.as_str(),
            principal.method.as_str(),
            principal.platform.as_deref().unwrap_or(""),
        );
        tracing::info!(
            target: "audit",
            outcome = "granted",
            realm = %self.realm.name,
            service = self.service,
            method = principal.method.as_str(),
            token_id = principal.token_id.as_deref().unwrap_or(""),
            platform = principal.platform.as_deref().unwrap_or(""),
            directory = principal.directory.as_ref().map_or("", DirectoryName::as_str),
            issuer = workload.map_or("", |w| w.issuer.as_str()),
            claim_rule = workload.map_or("", |w| w.rule.as_str()),
            subject = principal.subject(),
            requested = %Joined(self.requested, " "),
            granted = %Joined(granted, " "),
            rules = %Joined(rules, "; "),
            client_id = self.client_id,
            client_addr = self.client_addr,
        );
    }

    fn refused(&self, method: &str, attempted_user: &str, reason: &str, by: RefusedBy<'_>) {
        self.metrics.refused(reason);
        tracing::info!(
            target: "audit",
            outcome = "refused",
            realm = %self.realm.name,
            service = self.service,
            method,
            directory = by.directory.map_or("", DirectoryName::as_str),
            issuer = by.issuer.map_or("", IssuerName::as_str),
            subject = attempted_user,
            requested = %Joined(self.requested, " "),
            reason,
            client_id = self.client_id,
            client_addr = self.client_addr,
        );
    }
}

/// The directory or trusted issuer a refusal came from, for the audit log.
#[derive(Default, Clone, Copy)]
struct RefusedBy<'a> {
    directory: Option<&'a DirectoryName>,
    issuer: Option<&'a IssuerName>,
}

/// Scopes as the space-separated list of the wire format.
pub fn join(scopes: &[Scope]) -> String {
    Joined(scopes, " ").to_string()
}

/// Items written one after another with a separator between them, straight into the formatter
/// (an audit event builds no joined string).
struct Joined<'a, T>(&'a [T], &'static str);

impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Joined(items, separator) = self;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(separator)?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}
