//! The directory use case: `portcullis ldap test` walks one user's login through a realm's
//! directories as the server would (in order, stopping where the user is found or a directory
//! fails) and reports each step: the connection and its TLS, the search identity's bind, the
//! filter with the escaped name and what it found, the groups and their policy names, and, given a
//! password, the user's bind. It writes nothing: no account is created, no failure counted.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::AdminError;
use crate::auth::ldap::{Directory, Login, Step, Trace};
use crate::auth::trust::read_secret_file;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::names::{DirectoryName, RealmName, Username};

/// How one directory answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right (or, without one, the user was found).
    Accepted,
    Found,
    WrongPassword,
    /// An empty password: refused before any connection, as the server does.
    EmptyPassword,
    NotFound,
    Ambiguous,
    /// The directory could not be asked: the server would answer 503.
    Failed(String),
}

/// What one directory did.
pub struct Report {
    pub directory: DirectoryName,
    pub steps: Vec<Step>,
    pub outcome: Outcome,
}

/// Tests `user` (with `password`, when given) against `realm`'s directories in order, or only
/// against `only`. Stops after the directory that finds the user or fails, as a login does.
pub async fn test(
    settings: &Settings,
    realm: &RealmName,
    only: Option<&DirectoryName>,
    user: &Username,
    password: Option<SecretString>,
) -> Result<Vec<Report>, AdminError> {
    let directories = settings
        .directories()
        .map_err(|e| AdminError::Directory(e.to_string()))?
        .into_iter()
        .find(|(name, _)| name == realm)
        .map(|(_, directories)| directories)
        .unwrap_or_default();
    if directories.is_empty() {
        return Err(AdminError::NoDirectories(realm.clone()));
    }
    let chosen: Vec<_> = directories
        .into_iter()
        .filter(|d| only.is_none_or(|name| *name == d.name))
        .collect();
    if let (true, Some(name)) = (chosen.is_empty(), only) {
        return Err(AdminError::NoSuchDirectory {
            realm: realm.clone(),
            directory: name.clone(),
        });
    }
    let metrics = Arc::new(Metrics::new());
    let mut reports = Vec::new();
    for settings in chosen {
        let name = settings.name.clone();
        let service_password = match &settings.service {
            Some(service) => Some(
                read_secret_file("bind_password_file", &service.password_file)
                    .map_err(|e| AdminError::Directory(format!("directory {name}: {e}")))?,
            ),
            None => None,
        };
        let directory = Directory::new(settings, service_password, metrics.clone())
            .map_err(|e| AdminError::Directory(format!("directory {name}: {e}")))?;
        let mut trace = Trace::on();
        let outcome = match &password {
            Some(password) if password.expose_secret().is_empty() => Outcome::EmptyPassword,
            Some(password) => match directory.login(user, password, &mut trace).await {
                Ok(Login::Accepted(_)) => Outcome::Accepted,
                Ok(Login::WrongPassword) => Outcome::WrongPassword,
                Ok(Login::NotFound) => Outcome::NotFound,
                Ok(Login::Ambiguous) => Outcome::Ambiguous,
                Err(e) => Outcome::Failed(e.to_string()),
            },
            None => match directory.groups_of(user, &mut trace).await {
                Ok(Some(_)) => Outcome::Found,
                Ok(None) => Outcome::NotFound,
                Err(e) => Outcome::Failed(e.to_string()),
            },
        };
        let done = !matches!(outcome, Outcome::NotFound);
        reports.push(Report {
            directory: name,
            steps: trace.steps(),
            outcome,
        });
        if done {
            break;
        }
    }
    Ok(reports)
}
