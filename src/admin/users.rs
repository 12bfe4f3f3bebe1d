//! User use cases: add people (with a password) and robots (access tokens only), change passwords,
//! roles and states, delete and list users. A new password is a [`NewPassword`], which holds only
//! what could log in.

use secrecy::{ExposeSecret, SecretString};

use super::AdminError;
use crate::auth::munge as munge_door;
use crate::auth::password::{Hasher, MAX_PASSWORD_LEN};
use crate::auth::token::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX};
use crate::names::{RealmName, Username};
use crate::store::{Role, Source, Store, UserKind, UserRecord};

/// A password that could log in: not empty, at most [`MAX_PASSWORD_LEN`] bytes, and not shaped
/// like a token, a MUNGE credential or a JWT (the server would take it for one and never check it
/// as a password).
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks `password` in that order: token prefixes, MUNGE shape, JWT shape, empty, length.
    pub fn parse(password: SecretString) -> Result<NewPassword, AdminError> {
        let text = password.expose_secret();
        if text.starts_with(REFRESH_TOKEN_PREFIX) || text.starts_with(ACCESS_TOKEN_PREFIX) {
            return Err(AdminError::PasswordLikeToken);
        }
        if munge_door::armored(text).is_some() {
            return Err(AdminError::PasswordLikeMunge);
        }
        if crate::auth::oidc::looks_like_jwt(text) {
            return Err(AdminError::PasswordLikeJwt);
        }
        if text.is_empty() {
            return Err(AdminError::EmptyPassword);
        }
        if text.len() > MAX_PASSWORD_LEN {
            return Err(AdminError::LongPassword);
        }
        Ok(NewPassword(password))
    }
}

/// How a new user logs in.
pub enum Login {
    /// A person, with a password.
    Password(NewPassword),
    /// A robot: no password, only its access tokens.
    Robot,
}

/// A user to add.
pub struct NewUser {
    pub realm: RealmName,
    pub name: Username,
    pub role: Role,
    pub login: Login,
}

/// Adds a user, hashing its password with `hasher` (argon2id).
pub async fn add(store: &Store, hasher: &Hasher, user: NewUser) -> Result<(), AdminError> {
    let hash = match &user.login {
        Login::Password(password) => Some(hasher.hash(&password.0)?),
        Login::Robot => None,
    };
    store
        .create_user(&user.realm, &user.name, hash.as_deref(), user.role)
        .await?;
    Ok(())
}

/// Refuses a robot, which has no password to change, a directory account, whose password is its
/// directory's, and a provider's account, which signs in there; an unknown user passes (changing its password
/// then says it is not found). Lets a front end refuse before it asks for the password.
pub async fn check_has_password(
    store: &Store,
    realm: &RealmName,
    name: &Username,
) -> Result<(), AdminError> {
    let Some(record) = store.find_user(realm, name).await? else {
        return Ok(());
    };
    if record.kind == UserKind::Robot {
        return Err(AdminError::Robot(name.clone()));
    }
    match record.source {
        Source::Directory(directory) => Err(AdminError::DirectoryAccount {
            user: name.clone(),
            directory,
        }),
        Source::Provider(issuer) => Err(AdminError::ProviderAccount {
            user: name.clone(),
            issuer,
        }),
        Source::Local => Ok(()),
    }
}

/// Replaces a person's password (robots have none).
pub async fn set_password(
    store: &Store,
    hasher: &Hasher,
    realm: &RealmName,
    name: &Username,
    password: NewPassword,
) -> Result<(), AdminError> {
    check_has_password(store, realm, name).await?;
    let hash = hasher.hash(&password.0)?;
    store.set_password(realm, name, &hash).await?;
    Ok(())
}

/// Disables a user (`disabled = true`: their credentials are refused) or enables them again.
pub async fn set_disabled(
    store: &Store,
    realm: &RealmName,
    name: &Username,
    disabled: bool,
) -> Result<(), AdminError> {
    store.set_disabled(realm, name, disabled).await?;
    Ok(())
}

/// Deletes a user.
pub async fn delete(store: &Store, realm: &RealmName, name: &Username) -> Result<(), AdminError> {
    store.delete_user(realm, name).await?;
    Ok(())
}

/// Sets a user's role.
pub async fn set_role(
    store: &Store,
    realm: &RealmName,
    name: &Username,
    role: Role,
) -> Result<(), AdminError> {
    store.set_role(realm, name, role).await?;
    Ok(())
}

/// A realm's users, by name.
pub async fn list(store: &Store, realm: &RealmName) -> Result<Vec<UserRecord>, AdminError> {
    Ok(store.list_users(realm).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(password: &str) -> Option<String> {
        NewPassword::parse(SecretString::from(password.to_owned()))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn passwords_that_could_not_log_in_are_refused() {
        assert!(refusal("pcat_x").unwrap().contains("mark tokens"));
        assert!(refusal("pcrt_x").unwrap().contains("mark tokens"));
        assert!(refusal(" MUNGE:x").unwrap().contains("MUNGE"));
        // eyJhbGciOiJSUzI1NiJ9 is {"alg":"RS256"}: a JWT would log in as a workload, never as this user.
        assert!(refusal("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
            .unwrap()
            .contains("shape of a JWT"));
        assert_eq!(refusal("not.a.jwt"), None);
        assert_eq!(refusal("").unwrap(), "the password is empty");
        assert!(refusal(&"x".repeat(MAX_PASSWORD_LEN + 1))
            .unwrap()
            .contains("longer than"));
        assert_eq!(refusal(&"x".repeat(MAX_PASSWORD_LEN)), None);
        assert_eq!(refusal("s3cret"), None);
    }
}
