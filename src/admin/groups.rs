//! Group use cases: add and delete groups, put users in and take them out, list groups with their
//! members.

use super::AdminError;
use crate::names::{GroupName, RealmName, Username};
use crate::store::Store;

/// A group and its members' names, both sorted by name.
pub struct GroupMembers {
    pub name: String,
    pub members: Vec<String>,
}

/// Adds a group.
pub async fn add(store: &Store, realm: &RealmName, name: &GroupName) -> Result<(), AdminError> {
    store.create_group(realm, name.as_str()).await?;
    Ok(())
}

/// Deletes a group; its grants stay and match nobody until the group exists again.
pub async fn delete(store: &Store, realm: &RealmName, name: &GroupName) -> Result<(), AdminError> {
    store.delete_group(realm, name.as_str()).await?;
    Ok(())
}

/// Puts a user into a group (`member = true`) or takes them out.
pub async fn set_member(
    store: &Store,
    realm: &RealmName,
    group: &GroupName,
    user: &Username,
    member: bool,
) -> Result<(), AdminError> {
    store
        .set_membership(realm, group.as_str(), user, member)
        .await?;
    Ok(())
}

/// A realm's groups with their members.
pub async fn list(store: &Store, realm: &RealmName) -> Result<Vec<GroupMembers>, AdminError> {
    Ok(store
        .list_groups(realm)
        .await?
        .into_iter()
        .map(|(name, members)| GroupMembers { name, members })
        .collect())
}
