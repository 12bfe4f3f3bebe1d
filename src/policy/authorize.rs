//! Authorization: a pure function of (policy, principal, requested scopes) to the granted scopes,
//! always a subset of what was asked, plus the rules that decided it for the audit log. Realm
//! admins are members of the policy's admin group; an access token's scopes cap what it can get.

use crate::auth::Principal;
use crate::policy::{Policy, RuleRef, Subject};
use crate::scope::Scope;

/// What was granted, and which rules decided it.
pub struct Authorization {
    /// Requested ∩ allowed, per scope; scopes granted nothing are left out.
    pub granted: Vec<Scope>,
    /// The deciding rules, each once, in the order they first decided something; each displays as
    /// `rule 3 (allow * on repository "${account}/**" to ...)`.
    pub rules: Vec<RuleRef>,
}

/// Decides every requested scope for `principal` under `policy`.
pub fn authorize(policy: &Policy, principal: &Principal, requested: &[Scope]) -> Authorization {
    let subject = match &principal.user {
        Some(user) => Subject::account(user.username.as_str(), &user.groups),
        None => Subject::anonymous(),
    };
    let mut authorization = Authorization {
        granted: Vec::new(),
        rules: Vec::new(),
    };
    for requested in requested {
        // An access token narrows the request to its own scopes before the policy decides.
        let limited;
        let scope = match &principal.limit {
            Some(limit) => match limit.decide(&subject, requested).into_granted() {
                Some(within) => {
                    limited = within;
                    &limited
                }
                None => continue,
            },
            None => requested,
        };
        let decision = policy.decide(&subject, scope);
        for rule in decision.rules() {
            if !authorization
                .rules
                .iter()
                .any(|r| r.number() == rule.number())
            {
                authorization.rules.push(rule.clone());
            }
        }
        authorization.granted.extend(decision.into_granted());
    }
    authorization
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Method, User};
    use crate::domain::Username;
    use crate::policy::ADMIN_GROUP;
    use crate::scope::parse_all;

    fn user(name: &str, groups: &[&str]) -> Principal {
        Principal {
            user: Some(User {
                id: 1,
                username: Username::parse(name).unwrap(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            }),
            method: Method::Password,
            token_id: None,
            limit: None,
            platform: None,
        }
    }

    fn granted(principal: &Principal, scopes: &str) -> Vec<String> {
        let policy = Policy::default_policy();
        authorize(&policy, principal, &parse_all([scopes]).unwrap())
            .granted
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn users_own_their_namespace_only() {
        let alice = user("alice", &[]);
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
        let admin = user("root", &[ADMIN_GROUP]);
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
    fn an_access_token_gets_the_policy_intersected_with_its_scopes() {
        let mut alice = user("alice", &[]);
        alice.limit = Some(std::sync::Arc::new(
            crate::policy::scope_limit("repository:alice/ci/**:pull,push repository:team/**:pull")
                .unwrap(),
        ));
        assert_eq!(
            granted(&alice, "repository:alice/ci/app:pull,push,delete"),
            ["repository:alice/ci/app:pull,push"]
        );
        assert!(
            granted(&alice, "repository:alice/other:pull").is_empty(),
            "outside the token"
        );
        assert!(
            granted(&alice, "repository:team/app:pull").is_empty(),
            "outside the policy"
        );
        assert!(
            granted(&alice, "repository:alice/ci/app:*").is_empty(),
            "* is more than the token"
        );
    }

    #[test]
    fn anonymous_gets_nothing_and_deciding_rules_are_named() {
        let anonymous = Principal {
            user: None,
            method: Method::Anonymous,
            token_id: None,
            limit: None,
            platform: None,
        };
        assert!(granted(&anonymous, "repository:library/alpine:pull").is_empty());
        let policy = Policy::default_policy();
        let scopes = parse_all(["repository:alice/app:pull"]).unwrap();
        let authorization = authorize(&policy, &user("alice", &[]), &scopes);
        assert_eq!(authorization.rules.len(), 1);
        let rule = authorization.rules[0].to_string();
        assert!(rule.contains("${account}/**"), "{rule}");
        let scopes = parse_all(["repository:alice/app:pull repository:alice/b:push"]).unwrap();
        let authorization = authorize(&policy, &user("alice", &[]), &scopes);
        assert_eq!(
            authorization.rules.len(),
            1,
            "a rule that decides two scopes is named once"
        );
    }
}
