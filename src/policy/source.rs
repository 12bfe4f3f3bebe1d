//! Where each realm's policy comes from and when it is recompiled: the realm's policy file (or the
//! shipped default policy) followed by its database grants. A request checks the file's stamp and
//! the grants' change counter and recompiles only when either changed; a broken file keeps the last
//! good policy. SIGHUP forces every realm to re-read its file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::names::RealmName;
use crate::policy::{Policy, PolicyError, Rule, RuleError, RuleText};
use crate::store::{GrantRecord, Store, StoreError};

/// Loading a realm's policy failed.
#[derive(Debug, thiserror::Error)]
pub enum PoliciesError {
    #[error("policy file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("policy file {path}: {error}")]
    Parse { path: PathBuf, error: PolicyError },
    #[error("grant {id}: {error}")]
    Grant { id: i64, error: RuleError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What identifies one version of a policy file: its modification time and length.
type FileStamp = Option<(SystemTime, u64)>;

struct Compiled {
    policy: Arc<Policy>,
    file_stamp: FileStamp,
    /// The grants change counter the grants were read under.
    grants: i64,
}

/// Every realm's compiled policy.
pub struct Policies {
    store: Store,
    files: HashMap<RealmName, PathBuf>,
    compiled: Mutex<HashMap<RealmName, Arc<Compiled>>>,
}

impl Policies {
    /// `files` names the policy file of each realm that has one; the others use the default policy.
    pub fn new(store: Store, files: HashMap<RealmName, PathBuf>) -> Policies {
        Policies {
            store,
            files,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// Compiles every configured file now, so a broken one stops the server at start.
    pub fn check_files(&self) -> Result<(), PoliciesError> {
        self.files
            .values()
            .try_for_each(|path| read_policy(path).map(drop))
    }

    /// The realm's current policy, recompiled first if its file changed or the grants changed
    /// (`grants`: their change counter, see `store::changes`). When the file is broken the last
    /// good policy stays (the error is logged once per change of the file).
    pub async fn current(
        &self,
        realm: &RealmName,
        grants: i64,
    ) -> Result<Arc<Policy>, PoliciesError> {
        let file = self.files.get(realm);
        let file_stamp = file.and_then(|path| stamp(path));
        let previous = self
            .compiled
            .lock()
            .expect("policy cache lock")
            .get(realm)
            .cloned();
        if let Some(previous) = &previous {
            if previous.grants == grants && previous.file_stamp == file_stamp {
                return Ok(previous.policy.clone());
            }
        }
        let base = match (file, &previous) {
            (None, _) => Ok(Policy::default_policy()),
            (Some(path), previous) => match read_policy(path) {
                Ok(policy) => Ok(policy),
                Err(error) => match previous {
                    Some(previous) => {
                        tracing::error!(realm = %realm, %error, "policy file rejected; keeping the last good policy");
                        Err(previous.clone())
                    }
                    None => return Err(error),
                },
            },
        };
        let policy = match base {
            Ok(mut policy) => {
                policy.extend(grant_rules(&self.store.list_grants(realm).await?)?);
                tracing::info!(realm = %realm, rules = policy.rules().len(), "policy compiled");
                Arc::new(policy)
            }
            // The file is broken: keep serving the last good policy, and remember this stamp so the
            // same broken file is not parsed again on every request.
            Err(previous) => previous.policy.clone(),
        };
        let compiled = Arc::new(Compiled {
            policy: policy.clone(),
            file_stamp,
            grants,
        });
        self.compiled
            .lock()
            .expect("policy cache lock")
            .insert(realm.clone(), compiled);
        Ok(policy)
    }

    /// Forgets every file stamp, so the next request of each realm re-reads its file (SIGHUP).
    pub fn reload(&self) {
        self.compiled.lock().expect("policy cache lock").clear();
        tracing::info!("policy files will be re-read");
    }
}

/// The realm's complete policy as the operator commands see it (same rules as the server).
pub async fn load(
    store: &Store,
    file: Option<&Path>,
    realm: &RealmName,
) -> Result<Policy, PoliciesError> {
    let mut policy = match file {
        Some(path) => read_policy(path)?,
        None => Policy::default_policy(),
    };
    policy.extend(grant_rules(&store.list_grants(realm).await?)?);
    Ok(policy)
}

/// Parses and compiles one policy file.
pub fn read_policy(path: &Path) -> Result<Policy, PoliciesError> {
    let text = std::fs::read_to_string(path).map_err(|error| PoliciesError::Read {
        path: path.to_owned(),
        error,
    })?;
    Policy::from_toml_str(&text).map_err(|error| PoliciesError::Parse {
        path: path.to_owned(),
        error,
    })
}

/// Checks a grant's fields as a rule (the same checks a policy file's rules get).
pub fn grant_rule(grant: &GrantRecord) -> Result<Rule, RuleError> {
    let actions: Vec<&str> = grant.actions.iter().map(String::as_str).collect();
    Rule::parse(&RuleText {
        subject: &grant.subject,
        resource: &grant.resource,
        name: &grant.name,
        actions: &actions,
        effect: &grant.effect,
    })
}

fn grant_rules(grants: &[GrantRecord]) -> Result<Vec<Rule>, PoliciesError> {
    grants
        .iter()
        .map(|grant| {
            grant_rule(grant).map_err(|error| PoliciesError::Grant {
                id: grant.id,
                error,
            })
        })
        .collect()
}

fn stamp(path: &Path) -> FileStamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
