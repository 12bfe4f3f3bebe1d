//! Import use cases: read an htpasswd file or a docker_auth configuration, and create its users
//! with their bcrypt hashes (replaced with argon2id at each user's first login). Users that exist
//! already are left as they are and reported.

use super::AdminError;
use crate::import::{self, Import, ImportError};
use crate::names::{RealmName, Username};
use crate::store::{Role, Store, StoreError};

/// The kinds of file users are imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `htpasswd -B` output: users only.
    Htpasswd,
    /// A cesanta/docker_auth configuration: users and an ACL.
    DockerAuth,
}

/// The users an import created and those it left alone.
pub struct ImportedUsers {
    pub created: usize,
    /// Users that already existed in the realm, in file order.
    pub existing: Vec<Username>,
}

/// Reads a file's text as `source`: its users, its rules, and what cannot be carried over.
pub fn read(source: Source, text: &str) -> Result<Import, ImportError> {
    match source {
        Source::Htpasswd => Ok(import::htpasswd::parse(text)),
        Source::DockerAuth => import::docker_auth::parse(text),
    }
}

/// Creates the imported users in `realm`, as users (not admins).
pub async fn create_users(
    store: &Store,
    realm: &RealmName,
    imported: &Import,
) -> Result<ImportedUsers, AdminError> {
    let mut result = ImportedUsers {
        created: 0,
        existing: Vec::new(),
    };
    for user in &imported.users {
        let name = Username::parse(&user.name)?;
        match store
            .create_user(realm, &name, Some(&user.password_hash), Role::User)
            .await
        {
            Ok(()) => result.created += 1,
            Err(StoreError::Conflict(_)) => result.existing.push(name),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(result)
}
