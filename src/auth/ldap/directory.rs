//! One directory as a login backend: find the user's entry (a search with the escaped name, or the
//! DN a bind template makes), bind as it with the password, and read the user's groups with the
//! search identity. "Not found" and "wrong password" are answers; an unreachable, slow or refusing
//! directory is a [`DirectoryError`]. No password ever reaches a trace or a log line.

use std::collections::HashMap;
use std::sync::Arc;

use ldap3::Scope;
use secrecy::{ExposeSecret, SecretString};

use super::escape::{dn_value, filter_value};
use super::groups::{self, all_values, DirectoryGroup, Member};
use super::pool::{Bind, Lease, Pool};
use super::settings::{DirectorySettings, UserLookup};
use super::trace::{Step, Trace};
use super::DirectoryError;
use crate::metrics::Metrics;
use crate::names::{DirectoryName, Username};

/// What a directory said about a login.
#[derive(Debug)]
pub enum Login {
    /// The password is right: the user's DN and groups.
    Accepted(Found),
    /// The user exists and the password is wrong (or empty: refused before any bind).
    WrongPassword,
    /// No entry for this name.
    NotFound,
    /// Several entries match the name: the filter is too loose; nobody logs in with it.
    Ambiguous,
}

/// A user the directory knows.
#[derive(Debug)]
pub struct Found {
    pub dn: String,
    pub groups: Vec<DirectoryGroup>,
}

/// Where an entry lookup ended.
enum Located {
    Entry {
        dn: String,
        attributes: HashMap<String, Vec<String>>,
    },
    NotFound,
    Ambiguous,
}

/// One configured directory and its connections.
pub struct Directory {
    settings: Arc<DirectorySettings>,
    pool: Pool,
}

impl Directory {
    /// The directory of `settings`, its service account's password read already.
    pub fn new(
        settings: DirectorySettings,
        service_password: Option<SecretString>,
        metrics: Arc<Metrics>,
    ) -> Result<Directory, String> {
        let settings = Arc::new(settings);
        Ok(Directory {
            pool: Pool::new(settings.clone(), service_password, metrics)?,
            settings,
        })
    }

    pub fn name(&self) -> &DirectoryName {
        &self.settings.name
    }

    pub fn settings(&self) -> &DirectorySettings {
        &self.settings
    }

    /// Checks `password` for `username`. An empty password is refused here, before any
    /// connection: many directories take a bind with an empty password for an anonymous one.
    pub async fn login(
        &self,
        username: &Username,
        password: &SecretString,
        trace: &mut Trace,
    ) -> Result<Login, DirectoryError> {
        if password.expose_secret().is_empty() {
            return Ok(Login::WrongPassword);
        }
        let mut lease = self.pool.lease(trace).await?;
        let (dn, attributes) = match &self.settings.users {
            UserLookup::Search { .. } => {
                let (dn, attributes) = match self.locate(&mut lease, username, trace).await? {
                    Located::Entry { dn, attributes } => (dn, attributes),
                    Located::NotFound => return Ok(Login::NotFound),
                    Located::Ambiguous => return Ok(Login::Ambiguous),
                };
                if self.bind_user(&mut lease, &dn, password, trace).await? == Bind::Refused {
                    return Ok(Login::WrongPassword);
                }
                lease.as_service(trace).await?;
                (dn, attributes)
            }
            UserLookup::Bind { template } => {
                let dn = template.fill(&[&dn_value(username.as_str())]);
                let bound = self.bind_user(&mut lease, &dn, password, trace).await?;
                lease.as_service(trace).await?;
                // Who the service identity sees: whether a refused name exists, the entry's
                // attributes when it was accepted (none when it may not read them).
                let located = self.locate(&mut lease, username, trace).await?;
                match (bound, located) {
                    (Bind::Refused, Located::NotFound) => return Ok(Login::NotFound),
                    (Bind::Refused, _) => return Ok(Login::WrongPassword),
                    (Bind::Accepted, Located::Entry { attributes, .. }) => (dn, attributes),
                    (Bind::Accepted, _) => (dn, HashMap::new()),
                }
            }
        };
        let groups = self
            .groups(&mut lease, username, &dn, &attributes, trace)
            .await?;
        Ok(Login::Accepted(Found { dn, groups }))
    }

    /// The groups of `username` as the search identity reads them now; `None` when the directory
    /// no longer has (exactly one) entry for the name.
    pub async fn groups_of(
        &self,
        username: &Username,
        trace: &mut Trace,
    ) -> Result<Option<Found>, DirectoryError> {
        let mut lease = self.pool.lease(trace).await?;
        let Located::Entry { dn, attributes } = self.locate(&mut lease, username, trace).await?
        else {
            return Ok(None);
        };
        let groups = self
            .groups(&mut lease, username, &dn, &attributes, trace)
            .await?;
        Ok(Some(Found { dn, groups }))
    }

    async fn bind_user(
        &self,
        lease: &mut Lease<'_>,
        dn: &str,
        password: &SecretString,
        trace: &mut Trace,
    ) -> Result<Bind, DirectoryError> {
        let bound = lease.bind(dn, password).await?;
        trace.note(|| Step::UserBind {
            dn: dn.to_owned(),
            accepted: bound == Bind::Accepted,
        });
        Ok(bound)
    }

    /// The user's entry as the search identity sees it.
    async fn locate(
        &self,
        lease: &mut Lease<'_>,
        username: &Username,
        trace: &mut Trace,
    ) -> Result<Located, DirectoryError> {
        let settings = &self.settings;
        let mut attributes = vec![settings.username_attribute.as_str()];
        if let Some(group_attribute) = &settings.groups.attribute {
            attributes.push(group_attribute);
        }
        let (base, scope, filter) = match &settings.users {
            UserLookup::Search { base, filter } => (
                base.clone(),
                Scope::Subtree,
                filter.fill(&[&filter_value(username.as_str())]),
            ),
            UserLookup::Bind { template } => (
                template.fill(&[&dn_value(username.as_str())]),
                Scope::Base,
                "(objectClass=*)".to_owned(),
            ),
        };
        // Two are enough to know the name is ambiguous.
        let entries = lease.search(&base, scope, &filter, &attributes, 2).await?;
        trace.note(|| Step::Search {
            base: base.clone(),
            filter: filter.clone(),
            found: entries.iter().map(|e| e.dn.clone()).collect(),
        });
        let count = entries.len();
        let Some(entry) = entries.into_iter().next().filter(|_| count == 1) else {
            return Ok(if count == 0 {
                Located::NotFound
            } else {
                Located::Ambiguous
            });
        };
        let names: Vec<&String> = all_values(&entry.attrs, &settings.username_attribute).collect();
        let carries_name = names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(username.as_str()));
        if matches!(scope, Scope::Subtree) && !carries_name {
            tracing::warn!(
                directory = %settings.name,
                user = %username,
                dn = %entry.dn,
                "user_filter found an entry whose {} is not the login name: treated as not found",
                settings.username_attribute
            );
            return Ok(Located::NotFound);
        }
        Ok(Located::Entry {
            dn: entry.dn,
            attributes: entry.attrs,
        })
    }

    async fn groups(
        &self,
        lease: &mut Lease<'_>,
        username: &Username,
        dn: &str,
        attributes: &HashMap<String, Vec<String>>,
        trace: &mut Trace,
    ) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let group_dns = match &self.settings.groups.attribute {
            Some(attribute) => all_values(attributes, attribute).cloned().collect(),
            None => Vec::new(),
        };
        let member = Member {
            dn,
            username,
            group_dns,
        };
        groups::resolve(&self.settings, lease, member, trace).await
    }
}
