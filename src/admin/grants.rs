//! Grant use cases: policy rules kept in the database, effective at once. A grant is checked as a
//! rule (the checks a policy file's rules get) before it is stored.

use super::AdminError;
use crate::names::RealmName;
use crate::policy::source as policies;
use crate::policy::{Rule, RuleError};
use crate::store::{GrantRecord, Store};

/// A rule's fields as text, as in a policy file.
pub struct NewGrant {
    /// `user:NAME`, `group:NAME`, `anonymous`, `authenticated` or `any`.
    pub subject: String,
    /// `repository` or `registry`.
    pub resource: String,
    /// The name pattern.
    pub name: String,
    pub actions: Vec<String>,
    /// `allow` or `deny`.
    pub effect: String,
}

/// A stored grant: its id and its rule, or why its stored text no longer parses.
pub struct ListedGrant {
    pub id: i64,
    pub rule: Result<Rule, RuleError>,
}

/// Adds a rule after the realm's file rules; returns its id and the rule as parsed.
pub async fn add(
    store: &Store,
    realm: &RealmName,
    grant: NewGrant,
) -> Result<(i64, Rule), AdminError> {
    let record = GrantRecord {
        id: 0,
        subject: grant.subject,
        resource: grant.resource,
        name: grant.name,
        actions: grant.actions,
        effect: grant.effect,
    };
    let rule = policies::grant_rule(&record)?;
    let id = store.add_grant(realm, &record).await?;
    Ok((id, rule))
}

/// Removes a grant by id.
pub async fn remove(store: &Store, realm: &RealmName, id: i64) -> Result<(), AdminError> {
    store.remove_grant(realm, id).await?;
    Ok(())
}

/// A realm's grants, in the order they apply.
pub async fn list(store: &Store, realm: &RealmName) -> Result<Vec<ListedGrant>, AdminError> {
    Ok(store
        .list_grants(realm)
        .await?
        .iter()
        .map(|grant| ListedGrant {
            id: grant.id,
            rule: policies::grant_rule(grant),
        })
        .collect())
}
