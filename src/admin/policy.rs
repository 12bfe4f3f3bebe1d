//! Policy use cases: check a policy file offline, and explain what a realm's complete policy (its
//! file or the default, then its grants) decides for a user or an anonymous caller.

use std::path::Path;

use super::AdminError;
use crate::auth::accounts::Account;
use crate::names::{RealmName, Username};
use crate::policy::source as policies;
use crate::policy::{Decision, Policy, Subject};
use crate::scope;
use crate::store::Store;

/// Reads and compiles a policy file.
pub fn check(file: &Path) -> Result<Policy, AdminError> {
    Ok(policies::read_policy(file)?)
}

/// The decision, per scope, for `user` with their groups (`None`: an anonymous caller), under the
/// realm's policy file `file` (`None`: the default policy) and its grants.
pub async fn explain(
    store: &Store,
    file: Option<&Path>,
    realm: &RealmName,
    user: Option<&Username>,
    scopes: &[String],
) -> Result<Vec<Decision>, AdminError> {
    let policy = policies::load(store, file, realm).await?;
    let scopes = scope::parse_all(scopes.iter().map(String::as_str))?;
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
            Account::load(store, record).await?.groups
        }
        None => Vec::new(),
    };
    let subject = match user {
        Some(name) => Subject::account(name.as_str(), &groups),
        None => Subject::anonymous(),
    };
    Ok(scopes
        .iter()
        .map(|scope| policy.decide(&subject, scope))
        .collect())
}
