//! Authentication: turns the credentials of a token request into a [`Principal`], or refuses them.
//! Unknown user, disabled user, bad name and wrong password all cost one argon2 check and give the
//! same answer; the precise reason goes to the audit log only.

use secrecy::SecretString;

use crate::domain::Username;
use crate::password::{PasswordError, Verifier, MAX_PASSWORD_LEN};
use crate::realm::Realm;
use crate::store::{Role, Store, StoreError};

/// What the caller presented.
pub enum Credentials {
    /// Nothing: an anonymous request.
    Anonymous,
    /// A user name and password (HTTP Basic, or the OAuth2 password grant).
    Password {
        username: String,
        password: SecretString,
    },
}

impl Credentials {
    /// The method these credentials claim.
    pub fn method(&self) -> Method {
        match self {
            Credentials::Anonymous => Method::Anonymous,
            Credentials::Password { .. } => Method::Password,
        }
    }

    /// The user name the caller claims (not yet proven), `""` when none.
    pub fn claimed_user(&self) -> &str {
        match self {
            Credentials::Anonymous => "",
            Credentials::Password { username, .. } => username,
        }
    }
}

/// How the caller proved who it is; named in audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Anonymous,
    Password,
}

impl Method {
    /// The name used in audit events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Anonymous => "anonymous",
            Method::Password => "password",
        }
    }
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: Username,
    pub role: Role,
}

/// Who is asking: a user, or nobody.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<User>,
    pub method: Method,
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// Checks credentials against a realm's users.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    verifier: Verifier,
}

impl Authenticator {
    pub fn new(store: Store, verifier: Verifier) -> Authenticator {
        Authenticator { store, verifier }
    }

    /// The principal behind `credentials` in `realm`.
    #[tracing::instrument(name = "authenticate", skip_all, fields(realm = %realm.name))]
    pub async fn authenticate(
        &self,
        realm: &Realm,
        credentials: Credentials,
    ) -> Result<Principal, AuthnError> {
        match credentials {
            Credentials::Anonymous => Ok(Principal {
                user: None,
                method: Method::Anonymous,
            }),
            Credentials::Password { username, password } => {
                self.password(realm, &username, password).await
            }
        }
    }

    async fn password(
        &self,
        realm: &Realm,
        username: &str,
        password: SecretString,
    ) -> Result<Principal, AuthnError> {
        use secrecy::ExposeSecret;
        if password.expose_secret().len() > MAX_PASSWORD_LEN {
            return Err(AuthnError::Rejected("password too long"));
        }
        let record = match Username::parse(username) {
            Ok(name) => self.store.find_user(&realm.name, &name).await?,
            Err(_) => None,
        };
        let hash = record.as_ref().and_then(|r| r.password_hash.clone());
        let matched = self.verifier.verify(hash, password).await?;
        let user = match record {
            None => return Err(AuthnError::Rejected("unknown user or no password set")),
            Some(_) if !matched => return Err(AuthnError::Rejected("wrong password")),
            Some(r) if r.disabled => return Err(AuthnError::Rejected("user disabled")),
            Some(r) => r,
        };
        Ok(Principal {
            user: Some(User {
                id: user.id,
                username: user.username,
                role: user.role,
            }),
            method: Method::Password,
        })
    }
}
