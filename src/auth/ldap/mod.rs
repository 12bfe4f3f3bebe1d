//! LDAP and Active Directory logins: a realm's directories (`[[realms.R.ldap]]`), tried in order
//! for names that have no local account, and the groups of the accounts they created. The password
//! path (`auth::password`) asks this backend instead of argon2 for such names, under the same
//! lockout and verified-credential cache; refresh and access tokens of directory accounts get
//! their groups here. The rules, stated once (docs/ldap.md says them to operators):
//! - A local account is never checked against a directory; a directory login never touches one.
//! - Directories are tried in their order: "not found" moves on to the next, a wrong password
//!   stops (401), an unreachable or failing directory stops (503: a later directory must not
//!   answer for a name the first may hold).
//! - An account belongs to the directory that created it (`source` = `ldap:<name>`): the right
//!   password at another directory is refused until an operator deletes the account.
//! - Groups read at a login count for `groups_refresh_secs`; after that a request re-reads them
//!   with the search identity, and a directory that cannot answer then gets 503, never a grant on
//!   older groups.
//!
//! Files: `settings` (the typed configuration), `escape` (filter and DN values), `pool`
//! (connections), `directory` (one directory's login), `groups` (group resolution), `trace`
//! (what `portcullis ldap test` prints).

mod directory;
mod escape;
mod groups;
mod pool;
pub mod settings;
mod trace;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

pub use self::directory::{Directory, Found, Login};
pub use self::groups::{policy_groups, DirectoryGroup};
pub use self::trace::{Step, Trace};
use super::accounts::{insert_bounded, Account};
use super::password::Claim;
use super::trust::read_secret_file;
use super::{Authenticator, AuthnError};
use crate::config::{ConfigError, Settings};
use crate::metrics::Metrics;
use crate::names::{DirectoryName, RealmName, Username};
use crate::store::{unix_now, SeenGroups, Source};

/// A directory could not be used: the request gets 503 and the cause is logged.
#[derive(Debug, thiserror::Error)]
#[error("directory {directory}: {failure}")]
pub struct DirectoryError {
    pub directory: DirectoryName,
    pub failure: Failure,
}

/// What went wrong with a directory.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no URL answered (last: {0})")]
    Connect(String),
    #[error("{operation} timed out after {after_ms} ms (operation_timeout_ms)")]
    Timeout {
        operation: &'static str,
        after_ms: u64,
    },
    #[error("{operation} failed: {error}")]
    Broken {
        operation: &'static str,
        error: String,
    },
    #[error("{operation} answered result code {rc}: {text}")]
    Answered {
        operation: &'static str,
        rc: u32,
        text: String,
    },
    #[error("the search identity {} was refused: check bind_dn and bind_password_file", .0.as_deref().unwrap_or("(anonymous)"))]
    ServiceRefused(Option<String>),
    #[error("all {0} connections (pool_size) stayed busy for operation_timeout_ms")]
    Busy(usize),
}

impl Failure {
    /// The `kind` label of the directory errors metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Timeout { .. } => "timeout",
            Failure::Broken { .. } => "connection",
            Failure::Answered { .. } => "result",
            Failure::ServiceRefused(_) => "service_bind",
            Failure::Busy(_) => "busy",
        }
    }
}

/// A directory's settings or files cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Settings(#[from] ConfigError),
    #[error("realms.{realm}.ldap {directory}: {problem}")]
    Directory {
        realm: RealmName,
        directory: DirectoryName,
        problem: String,
    },
}

/// Every realm's directories, in their configured order.
#[derive(Default)]
pub struct Directories {
    realms: HashMap<RealmName, Vec<Arc<Directory>>>,
}

impl Directories {
    /// Reads every directory's bind password file (refused when group or others may read it) and
    /// CA file, and warns about each that skips certificate checks.
    pub fn load(settings: &Settings, metrics: &Arc<Metrics>) -> Result<Directories, LoadError> {
        let listed = settings.directories()?;
        let mut realms = HashMap::new();
        for (realm, directories) in listed {
            let mut loaded = Vec::new();
            for directory in directories {
                let fail = |problem: String| LoadError::Directory {
                    realm: realm.clone(),
                    directory: directory.name.clone(),
                    problem,
                };
                let password = match &directory.service {
                    Some(service) => Some(
                        read_secret_file("bind_password_file", &service.password_file)
                            .map_err(fail)?,
                    ),
                    None => None,
                };
                if directory.insecure_skip_verify {
                    tracing::warn!(
                        realm = %realm,
                        directory = %directory.name,
                        "insecure_skip_verify is set: this directory's TLS certificate is NOT \
                         checked; anyone on the network path can read the passwords sent to it"
                    );
                }
                let built =
                    Directory::new(directory.clone(), password, metrics.clone()).map_err(fail)?;
                loaded.push(Arc::new(built));
            }
            realms.insert(realm, loaded);
        }
        Ok(Directories { realms })
    }

    /// The directories of `realm`, in order.
    pub fn of(&self, realm: &RealmName) -> &[Arc<Directory>] {
        self.realms.get(realm).map_or(&[], Vec::as_slice)
    }

    /// The directory `name` of `realm`.
    pub fn find(&self, realm: &RealmName, name: &DirectoryName) -> Option<&Arc<Directory>> {
        self.of(realm).iter().find(|d| d.name() == name)
    }
}

/// The groups each directory account was last seen with by this process.
#[derive(Default)]
pub struct SeenByProcess(Mutex<HashMap<i64, SeenGroups>>);

impl SeenByProcess {
    fn get(&self, user_id: i64) -> Option<SeenGroups> {
        self.0
            .lock()
            .expect("seen groups lock")
            .get(&user_id)
            .cloned()
    }

    fn put(&self, user_id: i64, seen: SeenGroups) {
        insert_bounded(&mut self.0.lock().expect("seen groups lock"), user_id, seen);
    }
}

/// A password attempt for a directory account (or a name without an account), decided.
pub enum DirectoryCheck {
    /// The account (created at its first login) and its directory groups.
    Accepted {
        account: Arc<Account>,
        groups: Vec<String>,
    },
    Refused {
        reason: &'static str,
        directory: Option<DirectoryName>,
    },
}

impl Authenticator {
    /// Whether `realm` has directories: a name without an account may be a directory user.
    pub(in crate::auth) fn has_directories(&self, realm: &RealmName) -> bool {
        !self.directories.of(realm).is_empty()
    }

    /// Checks a password against the realm's directories for `username`, whose account (if any)
    /// is `found`, a directory account. `verified_before`: the verified-credential cache holds
    /// this password for the account, so nothing is bound.
    pub(in crate::auth) async fn directory_password(
        &self,
        realm: &RealmName,
        username: &Username,
        found: Option<Arc<Account>>,
        password: &SecretString,
        verified_before: bool,
    ) -> Result<DirectoryCheck, AuthnError> {
        let refused = |reason, directory: Option<&DirectoryName>| DirectoryCheck::Refused {
            reason,
            directory: directory.cloned(),
        };
        let owner = found.as_ref().and_then(|a| match &a.record.source {
            Source::Directory(name) => Some(name.clone()),
            Source::Local | Source::Provider(_) => None,
        });
        if found.as_ref().is_some_and(|a| a.record.disabled) {
            return Ok(refused("user disabled", owner.as_ref()));
        }
        if password.expose_secret().is_empty() {
            return Ok(refused("empty password", None));
        }
        if let (true, Some(account)) = (verified_before, &found) {
            let groups = self.directory_groups(realm, account).await?;
            return Ok(DirectoryCheck::Accepted {
                account: account.clone(),
                groups,
            });
        }
        let mut accepted = None;
        for directory in self.directories.of(realm) {
            let name = directory.name();
            match directory
                .login(username, password, &mut Trace::off())
                .await?
            {
                Login::NotFound => continue,
                Login::Ambiguous => {
                    tracing::warn!(directory = %name, user = %username, "several entries match the name: check user_filter");
                    return Ok(refused(
                        "several directory entries match the name",
                        Some(name),
                    ));
                }
                Login::WrongPassword => return Ok(refused("wrong password", Some(name))),
                Login::Accepted(entry) => {
                    accepted = Some((directory, entry));
                    break;
                }
            }
        }
        let Some((directory, entry)) = accepted else {
            return Ok(refused("unknown user", None));
        };
        let name = directory.name();
        let account = match found {
            Some(account) => account,
            None => {
                self.store
                    .create_external_user(realm, username, &Source::Directory(name.clone()))
                    .await?;
                let record =
                    self.store
                        .find_user(realm, username)
                        .await?
                        .ok_or(AuthnError::Rejected(
                            "account deleted during its first login",
                        ))?;
                tracing::info!(target: "audit", event = "directory_account_created", realm = %realm, user = %username, directory = %name, dn = %entry.dn);
                Arc::new(Account::load(&self.store, record).await?)
            }
        };
        match &account.record.source {
            Source::Directory(owner) if owner == name => {}
            Source::Directory(owner) => {
                tracing::warn!(
                    realm = %realm,
                    user = %username,
                    directory = %name,
                    owner = %owner,
                    "refused: the account was created by directory {owner}, and directory {name} \
                     accepted the password; delete the account (portcullis user delete) to let \
                     {name} own it"
                );
                return Ok(refused("account belongs to another directory", Some(name)));
            }
            Source::Local => {
                tracing::warn!(realm = %realm, user = %username, directory = %name, "refused: the name is a local account");
                return Ok(refused("name taken by a local account", Some(name)));
            }
            Source::Provider(issuer) => {
                tracing::warn!(realm = %realm, user = %username, directory = %name, issuer = %issuer, "refused: the name is the account of a person who signs in with an OpenID provider");
                return Ok(refused("name taken by a provider's account", Some(name)));
            }
        }
        if account.record.disabled {
            return Ok(refused("user disabled", Some(name)));
        }
        let groups = policy_groups(&entry.groups);
        self.record_groups(account.record.id, groups.clone())
            .await?;
        let claim = Claim {
            realm: realm.as_str(),
            username: username.as_str(),
        };
        self.verifier
            .remember(&claim, password, &account.record.source.as_stored());
        Ok(DirectoryCheck::Accepted { account, groups })
    }

    /// The directory groups (policy names) of `account`, when it is a directory account: as seen
    /// within its directory's `groups_refresh_secs` (by this process, or recorded by any), else
    /// read again now with the search identity.
    pub(in crate::auth) async fn directory_groups(
        &self,
        realm: &RealmName,
        account: &Account,
    ) -> Result<Vec<String>, AuthnError> {
        let Source::Directory(name) = &account.record.source else {
            return Ok(Vec::new());
        };
        let Some(directory) = self.directories.find(realm, name) else {
            return Err(AuthnError::DirectoryRejected {
                directory: name.clone(),
                reason: "the account's directory is not configured",
            });
        };
        let now = unix_now();
        let refresh_secs = i64::try_from(directory.settings().groups_refresh_secs).unwrap_or(0);
        let fresh = |seen: &SeenGroups| now - seen.at < refresh_secs;
        let id = account.record.id;
        if let Some(seen) = self.seen_groups.get(id).filter(fresh) {
            return Ok(seen.groups);
        }
        if let Some(seen) = account.record.directory_groups.clone().filter(fresh) {
            self.seen_groups.put(id, seen.clone());
            return Ok(seen.groups);
        }
        let Some(entry) = directory
            .groups_of(&account.record.username, &mut Trace::off())
            .await?
        else {
            return Err(AuthnError::DirectoryRejected {
                directory: name.clone(),
                reason: "no longer in the directory",
            });
        };
        let groups = policy_groups(&entry.groups);
        self.record_groups(id, groups.clone()).await?;
        Ok(groups)
    }

    /// Keeps the groups just read, here and in the account's row.
    async fn record_groups(&self, user_id: i64, groups: Vec<String>) -> Result<(), AuthnError> {
        let seen = SeenGroups {
            groups,
            at: unix_now(),
        };
        self.store.set_directory_groups(user_id, &seen).await?;
        self.seen_groups.put(user_id, seen);
        Ok(())
    }
}
