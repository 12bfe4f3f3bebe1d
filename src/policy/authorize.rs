//! Authorization: who a principal is to the policy (its [`Subject`]: account name and groups, realm
//! admins in [`ADMIN_GROUP`]), and a pure function of (policy, principal, requested scopes) to the
//! granted scopes, always a subset of what was asked, plus the rules that decided it for the audit
//! log. An access token's scopes cap what it can get. It does not authenticate or load policies.

use crate::auth::Principal;
use crate::policy::{Policy, RuleRef, Subject, ADMIN_GROUP};
use crate::scope::Scope;
use crate::store::Role;

/// What was granted, and which rules decided it.
pub struct Authorization {
    /// Requested ∩ allowed, per scope; scopes granted nothing are left out.
    pub granted: Vec<Scope>,
    /// The deciding rules, each once, in the order they first decided something; each displays as
    /// `rule 3 (allow * on repository "${account}/**" to ...)`.
    pub rules: Vec<RuleRef>,
}

/// The groups a user's decisions are made with: the groups they are in, and [`ADMIN_GROUP`] too
/// when they are a realm admin. Computed once when an account is read, not per request.
pub fn policy_groups(role: Role, mut groups: Vec<String>) -> Vec<String> {
    if role == Role::Admin {
        groups.push(ADMIN_GROUP.to_owned());
    }
    groups
}

/// Who `principal` is to the policy.
pub fn subject(principal: &Principal) -> Subject<'_> {
    match (&principal.user, &principal.workload) {
        (Some(user), _) => Subject::account(user.username.as_str(), &user.groups),
        (None, Some(w)) => Subject::workload(&w.name, &w.groups, &w.claims),
        (None, None) => Subject::anonymous(),
    }
}

/// Decides every requested scope for `principal` under `policy`.
pub fn authorize(policy: &Policy, principal: &Principal, requested: &[Scope]) -> Authorization {
    let subject = subject(principal);
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
    use crate::names::Username;
    use crate::scope::parse_all;

    fn user(name: &str, groups: &[&str]) -> Principal {
        Principal {
            user: Some(User {
                id: 1,
                username: Username::parse(name).unwrap(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            }),
            workload: None,
            method: Method::Password,
            token_id: None,
            limit: None,
            platform: None,
            directory: None,
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
    fn realm_admins_are_in_the_admin_group_and_get_what_they_ask_for() {
        let groups = |role| policy_groups(role, vec!["devs".to_owned()]);
        assert_eq!(groups(Role::User), ["devs"]);
        assert_eq!(groups(Role::Admin), ["devs", ADMIN_GROUP]);
        let admin = groups(Role::Admin);
        let root = user(
            "root",
            &admin.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(
            granted(&root, "repository:any/thing:delete"),
            ["repository:any/thing:delete"]
        );
        assert!(granted(&user("dev", &["devs"]), "repository:any/thing:delete").is_empty());
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
        let anonymous = Principal::anonymous();
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
