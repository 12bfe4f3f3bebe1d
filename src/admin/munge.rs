//! MUNGE mapping use cases: map a platform's uid to a user (credentials with an empty payload then
//! act as that user), remove and list mappings, and map the uids of a passwd file.

use super::AdminError;
use crate::names::{RealmName, Username};
use crate::store::{Store, StoreError};

/// One mapping: a platform's uid and the user it acts as.
pub struct Mapping {
    pub platform: String,
    pub uid: i64,
    pub user: String,
}

/// What mapping a passwd file did.
pub struct PasswdImport {
    /// Lines whose uid was mapped.
    pub mapped: usize,
    /// Lines that name no user of the realm (or no valid user name or uid).
    pub skipped: usize,
}

/// Maps `platform`'s `uid` to `user`.
pub async fn map(
    store: &Store,
    realm: &RealmName,
    platform: &str,
    uid: u32,
    user: &Username,
) -> Result<(), AdminError> {
    store.munge_map(realm, platform, uid, user).await?;
    Ok(())
}

/// Removes the mapping of `platform`'s `uid`.
pub async fn unmap(
    store: &Store,
    realm: &RealmName,
    platform: &str,
    uid: u32,
) -> Result<(), AdminError> {
    store.munge_unmap(realm, platform, uid).await?;
    Ok(())
}

/// A realm's mappings, by platform and uid.
pub async fn list(store: &Store, realm: &RealmName) -> Result<Vec<Mapping>, AdminError> {
    Ok(store
        .munge_mappings(realm)
        .await?
        .into_iter()
        .map(|(platform, uid, user)| Mapping {
            platform,
            uid,
            user,
        })
        .collect())
}

/// Maps the uid of every line of a passwd file (`name:x:uid:...`, as text) whose name is an
/// existing user of the realm; lines without a name and uid field are ignored.
pub async fn import_passwd(
    store: &Store,
    realm: &RealmName,
    platform: &str,
    passwd: &str,
) -> Result<PasswdImport, AdminError> {
    let mut counts = PasswdImport {
        mapped: 0,
        skipped: 0,
    };
    for (number, line) in passwd.lines().enumerate() {
        let fields: Vec<&str> = line.split(':').collect();
        let (Some(name), Some(uid)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let (Ok(user), Ok(uid)) = (Username::parse(name), uid.parse::<u32>()) else {
            counts.skipped += 1;
            continue;
        };
        match store.munge_map(realm, platform, uid, &user).await {
            Ok(()) => counts.mapped += 1,
            Err(StoreError::NotFound(_)) => counts.skipped += 1,
            Err(error) => {
                return Err(AdminError::PasswdLine {
                    line: number + 1,
                    error,
                })
            }
        }
    }
    Ok(counts)
}
