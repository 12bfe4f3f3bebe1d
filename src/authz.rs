//! Authorization: a pure function of (principal, requested scopes) to granted scopes, always a subset
//! of what was asked. The policy is fixed for now: realm admins may do everything (catalog included);
//! every user may do everything in their own namespace `<username>/...`; anonymous callers get nothing.

use std::collections::BTreeSet;

use crate::authn::Principal;
use crate::scope::{Scope, ALL_ACTIONS, REGISTRY, REPOSITORY};
use crate::store::Role;

/// Actions that exist on repositories.
const REPOSITORY_ACTIONS: [&str; 4] = ["pull", "push", "delete", ALL_ACTIONS];
/// The registry-wide resource that can be granted, and its actions.
const CATALOG: &str = "catalog";
const CATALOG_ACTIONS: [&str; 2] = [ALL_ACTIONS, "search"];

/// Requested ∩ allowed, per scope; scopes granted nothing are left out.
pub fn authorize(principal: &Principal, requested: &[Scope]) -> Vec<Scope> {
    requested
        .iter()
        .filter_map(|scope| {
            let granted: BTreeSet<String> = scope
                .actions()
                .iter()
                .filter(|action| allows(principal, scope, action))
                .cloned()
                .collect();
            (!granted.is_empty()).then(|| scope.with_actions(granted))
        })
        .collect()
}

fn allows(principal: &Principal, scope: &Scope, action: &str) -> bool {
    let Some(user) = &principal.user else {
        return false;
    };
    let exists = match scope.kind() {
        REPOSITORY => REPOSITORY_ACTIONS.contains(&action),
        REGISTRY => scope.name() == CATALOG && CATALOG_ACTIONS.contains(&action),
        _ => false,
    };
    if !exists {
        return false;
    }
    if user.role == Role::Admin {
        return true;
    }
    scope.kind() == REPOSITORY
        && scope
            .name()
            .strip_prefix(user.username.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::{Method, User};
    use crate::domain::Username;
    use crate::scope::parse_all;

    fn user(name: &str, role: Role) -> Principal {
        Principal {
            user: Some(User {
                id: 1,
                username: Username::parse(name).unwrap(),
                role,
            }),
            method: Method::Password,
            token_id: None,
        }
    }

    fn granted(principal: &Principal, scopes: &str) -> Vec<String> {
        authorize(principal, &parse_all([scopes]).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn users_own_their_namespace_only() {
        let alice = user("alice", Role::User);
        assert_eq!(
            granted(&alice, "repository:alice/app:pull,push"),
            ["repository:alice/app:pull,push"]
        );
        assert_eq!(
            granted(&alice, "repository:alice/a/b:*"),
            ["repository:alice/a/b:*"]
        );
        assert!(granted(&alice, "repository:bob/app:pull").is_empty());
        assert!(granted(&alice, "repository:alice:pull").is_empty());
        assert!(granted(&alice, "repository:alicea/app:pull").is_empty());
        assert!(granted(&alice, "registry:catalog:*").is_empty());
        assert_eq!(
            granted(&alice, "repository:alice/x:pull repository:bob/x:pull"),
            ["repository:alice/x:pull"]
        );
    }

    #[test]
    fn admins_get_what_they_ask_for_but_not_made_up_actions() {
        let admin = user("root", Role::Admin);
        assert_eq!(
            granted(&admin, "registry:catalog:*"),
            ["registry:catalog:*"]
        );
        assert_eq!(
            granted(&admin, "repository:any/thing:delete"),
            ["repository:any/thing:delete"]
        );
        assert_eq!(
            granted(&admin, "repository:a:pull,frobnicate"),
            ["repository:a:pull"]
        );
        assert!(granted(&admin, "registry:other:*").is_empty());
        assert!(granted(&admin, "plugin:x:pull").is_empty());
    }

    #[test]
    fn anonymous_gets_nothing() {
        let anonymous = Principal {
            user: None,
            method: Method::Anonymous,
            token_id: None,
        };
        assert!(granted(&anonymous, "repository:library/alpine:pull").is_empty());
    }
}
