//! The operator's use cases: realms, users, groups, grants, policy explanations, MUNGE mappings,
//! lockouts, imports, tokens, keys and the recent audit trail, each a function from parsed input to a typed result or an
//! [`AdminError`]. No terminal and no argument parsing here: `cli.rs` reads arguments and prints,
//! and any other front end calls the same functions with the same guarantees.

pub mod audit;
pub mod grants;
pub mod groups;
pub mod imports;
pub mod keys;
pub mod ldap;
pub mod lockouts;
pub mod munge;
pub mod oidc;
pub mod policy;
pub mod realms;
pub mod tokens;
pub mod users;

use crate::auth::password::{PasswordError, MAX_PASSWORD_LEN};
use crate::auth::token::{CreateError, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use crate::import::ImportError;
use crate::jwt::MIN_TOKEN_TTL_SECS;
use crate::keys::KeyError;
use crate::names::{DirectoryName, IssuerName, NameError, RealmName, Username};
use crate::policy::source::PoliciesError;
use crate::policy::{RuleError, ScopeLimitError};
use crate::realm::{RealmError, MAX_TOKEN_TTL_SECS};
use crate::scope::ScopeError;
use crate::store::StoreError;

/// Why a use case refused or failed. One enum for every use case: they share most causes (the
/// store, a missing realm or user, input that does not parse), and a front end maps one type to its
/// answers. Wrapped errors keep their own message and causes.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Realm(#[from] RealmError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Policies(#[from] PoliciesError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    ScopeLimit(#[from] ScopeLimitError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Hash(#[from] PasswordError),
    #[error(transparent)]
    Token(#[from] CreateError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("realm {0} does not exist")]
    NoSuchRealm(RealmName),
    #[error("user {user} does not exist in realm {realm}")]
    NoSuchUser { user: Username, realm: RealmName },
    /// A realm's token lifetime outside what registries and clients handle.
    #[error("token lifetime {0} s is not in {MIN_TOKEN_TTL_SECS}..={MAX_TOKEN_TTL_SECS}")]
    TokenTtl(u64),
    /// `ldap test` for a realm without `[[realms.R.ldap]]`.
    #[error("realm {0} has no directories ([[realms.{0}.ldap]] in the configuration)")]
    NoDirectories(RealmName),
    #[error("realm {realm} has no directory named {directory}")]
    NoSuchDirectory {
        realm: RealmName,
        directory: DirectoryName,
    },
    /// A directory's settings or files cannot be used.
    #[error("{0}")]
    Directory(String),
    /// `user passwd` for an account a directory created: its password is the directory's.
    #[error("{user} logs in at directory {directory}: change the password there")]
    DirectoryAccount {
        user: Username,
        directory: DirectoryName,
    },
    /// `user passwd` for the account of a person who signs in with an OpenID provider.
    #[error("{user} signs in with the OpenID provider {issuer}: they have no password here")]
    ProviderAccount { user: Username, issuer: IssuerName },
    /// `user passwd` for a robot account.
    #[error("{0} is a robot: it has no password, only access tokens")]
    Robot(Username),
    /// A new password starts like the secrets Portcullis mints.
    #[error(
        "a password may not start with {REFRESH_TOKEN_PREFIX} or {ACCESS_TOKEN_PREFIX}: those mark tokens"
    )]
    PasswordLikeToken,
    /// A new password has the shape of a MUNGE credential.
    #[error(
        "a password may not start with \"MUNGE\": that marks a MUNGE credential, so it could never log in"
    )]
    PasswordLikeMunge,
    /// A new password has the shape of a JWT, which logs in as a workload.
    #[error(
        "a password may not have the shape of a JWT (three base64url parts, the first naming an alg): that marks an external JWT, so it could never log in"
    )]
    PasswordLikeJwt,
    /// `oidc test` for a realm without `[[realms.R.oidc]]`.
    #[error("realm {0} trusts no issuer ([[realms.{0}.oidc]] in the configuration)")]
    NoIssuers(RealmName),
    /// An issuer's settings or files cannot be used.
    #[error("{0}")]
    Issuer(String),
    #[error("the password is empty")]
    EmptyPassword,
    /// An audit event name to filter by that no event has.
    #[error("an event name is 1 to {} of a-z, 0-9 and _", audit::MAX_EVENT_NAME)]
    EventName,
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    LongPassword,
    /// An access token lifetime that is not a number with a unit, or is out of range.
    #[error(
        "use a positive number with d, h, m or s, at most {max_days}d (leave --expires out for a \
         token that never expires), e.g. 30d",
        max_days = tokens::MAX_LIFETIME_SECS / tokens::SECS_PER_DAY
    )]
    Lifetime,
    /// `lockout clear` for a subject without failures; the text names the subject.
    #[error("no failures are recorded for {0}: nothing to clear")]
    NothingToClear(lockouts::LockoutTarget),
    /// A key change while another key waits to sign: one pending key at a time.
    #[error(
        "key {kid} of realm {realm} is pending (it signs from {activates_at}): run `keys activate` or `keys revoke` on it first"
    )]
    KeyPending {
        realm: RealmName,
        kid: String,
        activates_at: String,
    },
    /// The key that signs now cannot be loaded from its files.
    #[error("signing key {kid}: {reason}")]
    KeyUnloadable { kid: String, reason: String },
    #[error("realm {realm} has no signing key {kid}")]
    NoSuchKey { realm: RealmName, kid: String },
    /// `keys activate` for a key that is not pending.
    #[error("key {kid} is {state}, not pending: only a pending key can be activated")]
    KeyNotPending { kid: String, state: &'static str },
    /// `keys revoke` for a key already revoked or retired.
    #[error("key {kid} is {state}: it signs nothing and is published nowhere already")]
    KeyGone { kid: String, state: &'static str },
    #[error("realm {0} has a certificate authority already; its keys rotate with `keys rotate`")]
    CaExists(RealmName),
    /// A CA realm's key change needs the CA's private key, and it is not where it was looked for.
    #[error(
        "the private key of realm {realm}'s certificate authority is not at {path}: pass --ca-key FILE"
    )]
    CaKeyMissing { realm: RealmName, path: String },
    /// Two processes changed a realm's keys at the same moment; this one stood back.
    #[error("another change of realm {0}'s keys happened at the same moment; run `keys list` and try again")]
    KeyRace(RealmName),
    /// A passwd file's line could not be mapped for a reason other than an unknown user.
    #[error("line {line}: {error}")]
    PasswdLine { line: usize, error: StoreError },
}
