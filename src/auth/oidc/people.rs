//! Accounts of people who sign in to the console with a realm's provider (an issuer with a
//! `console` client): the first sign-in creates the account (`source` = `oidc:<issuer>`, no
//! password), every sign-in records the groups its ID token gave. The rules, stated once
//! (docs/console.md says them to operators):
//! - A provider never signs in to an account it did not create: a local, directory or other
//!   provider's account of the same name is refused until an operator deletes it.
//! - A disabled account is refused; the provider's word does not enable it.
//! - The groups recorded count for the account's tokens for the client's `groups_valid_secs`
//!   (`Authenticator::source_groups`); recording them moves the accounts counter, so every
//!   instance reads them at its next request.

use url::Url;

use super::sign_in::{self, Pending, SignInError};
use super::Issuer;
use crate::auth::Authenticator;
use crate::names::{IssuerName, RealmName};
use crate::store::{unix_now, SeenGroups, Source, UserRecord};

/// A provider the console offers a realm's people: its name and the button's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: IssuerName,
    pub label: String,
}

impl Authenticator {
    /// The providers people of `realm` may sign in to the console with, in configuration order.
    pub fn console_providers(&self, realm: &RealmName) -> Vec<Provider> {
        self.issuers
            .of(realm)
            .iter()
            .filter_map(|issuer| {
                issuer.settings.console.as_ref().map(|console| Provider {
                    name: issuer.settings.name.clone(),
                    label: console.label.clone(),
                })
            })
            .collect()
    }

    fn console_issuer(&self, realm: &RealmName, name: &IssuerName) -> Result<&Issuer, SignInError> {
        self.issuers
            .of(realm)
            .iter()
            .find(|issuer| issuer.settings.name == *name && issuer.settings.console.is_some())
            .map(AsRef::as_ref)
            .ok_or(SignInError::NoClient)
    }

    /// Where to send the browser to sign in with provider `name` of `realm`.
    pub async fn provider_sign_in_url(
        &self,
        realm: &RealmName,
        name: &IssuerName,
        redirect_uri: &str,
        pending: &Pending,
    ) -> Result<Url, SignInError> {
        let issuer = self.console_issuer(realm, name)?;
        sign_in::authorization_url(issuer, redirect_uri, pending).await
    }

    /// Completes a sign-in with provider `name` of `realm` from the `code` it returned: the
    /// account, created at the person's first sign-in, with the groups just recorded.
    pub async fn provider_sign_in(
        &self,
        realm: &RealmName,
        name: &IssuerName,
        redirect_uri: &str,
        code: &str,
        pending: &Pending,
    ) -> Result<UserRecord, SignInError> {
        let issuer = self.console_issuer(realm, name)?;
        let now = unix_now();
        let person = sign_in::finish(
            issuer,
            redirect_uri,
            code,
            pending,
            now.max(0).unsigned_abs(),
        )
        .await?;
        let source = Source::Provider(name.clone());
        let record = match self.store.find_user(realm, &person.username).await? {
            Some(record) => record,
            None => {
                self.store
                    .create_external_user(realm, &person.username, &source)
                    .await?;
                let record = self
                    .store
                    .find_user(realm, &person.username)
                    .await?
                    .ok_or_else(|| SignInError::NameTaken(person.username.clone()))?;
                tracing::info!(target: "audit", event = "provider_account_created", realm = %realm, user = %person.username, issuer = %name, subject = %person.subject);
                record
            }
        };
        if record.source != source {
            return Err(SignInError::NameTaken(person.username));
        }
        if record.disabled {
            return Err(SignInError::Disabled(person.username));
        }
        let seen = SeenGroups {
            groups: person.groups,
            at: now,
        };
        self.store.set_provider_groups(record.id, &seen).await?;
        tracing::debug!(realm = %realm, user = %person.username, rule = %person.rule, groups = ?seen.groups, "provider sign-in");
        Ok(UserRecord {
            directory_groups: Some(seen),
            ..record
        })
    }
}
