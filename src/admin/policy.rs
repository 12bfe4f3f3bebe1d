//! Policy use cases: check a policy file offline, and explain what a realm's complete policy (its
//! file or the default, then its grants) decides for a user, an anonymous caller or a workload
//! proven by an external JWT.

use std::path::Path;

use super::AdminError;
use crate::auth::accounts::Account;
use crate::auth::oidc::Workload;
use crate::names::{RealmName, Username};
use crate::policy::source as policies;
use crate::policy::{Decision, Policy, Subject};
use crate::scope;
use crate::store::{SeenGroups, Store};

/// Reads and compiles a policy file.
pub fn check(file: &Path) -> Result<Policy, AdminError> {
    Ok(policies::read_policy(file)?)
}

/// What `explain` decided, and from which directory groups.
pub struct Explanation {
    /// Per scope, in the order asked.
    pub decisions: Vec<Decision>,
    /// A directory account's groups as last read from its directory (and when), which the
    /// decisions include; a request after the directory's `groups_refresh_secs` reads them again.
    pub directory_groups: Option<SeenGroups>,
}

/// The decision, per scope, for `user` with their groups (`None`: an anonymous caller), under the
/// realm's policy file `file` (`None`: the default policy) and its grants. A directory account is
/// decided with the groups its directory gave it when last read.
pub async fn explain(
    store: &Store,
    file: Option<&Path>,
    realm: &RealmName,
    user: Option<&Username>,
    scopes: &[String],
) -> Result<Explanation, AdminError> {
    let policy = policies::load(store, file, realm).await?;
    let scopes = scope::parse_all(scopes.iter().map(String::as_str))?;
    let mut directory_groups = None;
    let groups = match user {
        Some(name) => {
            let record =
                store
                    .find_user(realm, name)
                    .await?
                    .ok_or_else(|| AdminError::NoSuchUser {
                        user: name.clone(),
                        realm: realm.clone(),
                    })?;
            let seen = record.directory_groups.clone();
            let mut groups = Account::load(store, record).await?.groups;
            if let Some(seen) = &seen {
                groups.extend(
                    seen.groups
                        .iter()
                        .filter(|g| !groups.contains(g))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            directory_groups = seen;
            groups
        }
        None => Vec::new(),
    };
    let subject = match user {
        Some(name) => Subject::account(name.as_str(), &groups),
        None => Subject::anonymous(),
    };
    Ok(Explanation {
        decisions: scopes
            .iter()
            .map(|scope| policy.decide(&subject, scope))
            .collect(),
        directory_groups,
    })
}

/// The decision, per scope, for `workload` (its name, groups and claims, from `oidc::test`) under
/// the realm's policy file `file` (`None`: the default policy) and its grants.
pub async fn explain_workload(
    store: &Store,
    file: Option<&Path>,
    realm: &RealmName,
    workload: &Workload,
    scopes: &[String],
) -> Result<Vec<Decision>, AdminError> {
    let policy = policies::load(store, file, realm).await?;
    let scopes = scope::parse_all(scopes.iter().map(String::as_str))?;
    let subject = Subject::workload(&workload.name, &workload.groups, &workload.claims);
    Ok(scopes
        .iter()
        .map(|scope| policy.decide(&subject, scope))
        .collect())
}
