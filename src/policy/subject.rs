//! Who a rule is for ([`SubjectPattern`]) and who is asking ([`Subject`]). Authentication happens
//! elsewhere: a [`Subject`] is built from a principal that is already proven.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::rule::RuleError;
use crate::claims::{self, ClaimPath};
use crate::names::{is_oidc_value, is_policy_group, IssuerName, Username, OIDC_PREFIX};

/// The principal a decision is made for: an account, a workload or nobody, and its groups. Realm
/// administrators are members of a group, `admins` by convention.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    who: Who<'a>,
    groups: &'a [String],
}

#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Anonymous,
    Account(&'a str),
    /// A principal proven by an external JWT: its `oidc:…` name and its verified claims.
    Workload {
        name: &'a str,
        claims: &'a Value,
    },
}

impl<'a> Subject<'a> {
    /// A caller that did not authenticate: no account, no groups.
    pub fn anonymous() -> Self {
        Subject {
            who: Who::Anonymous,
            groups: &[],
        }
    }

    /// An authenticated account and its groups.
    pub fn account(name: &'a str, groups: &'a [String]) -> Self {
        Subject {
            who: Who::Account(name),
            groups,
        }
    }

    /// A workload (`oidc:<issuer>:<subject>`), its groups and the claims of its JWT. It is no
    /// account: `authenticated`, `user:` rules and `${account}` never match it.
    pub fn workload(name: &'a str, groups: &'a [String], claims: &'a Value) -> Self {
        Subject {
            who: Who::Workload { name, claims },
            groups,
        }
    }

    /// The account name, `None` when anonymous or a workload.
    pub fn account_name(&self) -> Option<&'a str> {
        match self.who {
            Who::Account(name) => Some(name),
            Who::Anonymous | Who::Workload { .. } => None,
        }
    }

    /// The workload's name, `None` unless a workload.
    pub fn workload_name(&self) -> Option<&'a str> {
        match self.who {
            Who::Workload { name, .. } => Some(name),
            Who::Anonymous | Who::Account(_) => None,
        }
    }

    /// Whether nobody authenticated.
    pub fn is_anonymous(&self) -> bool {
        matches!(self.who, Who::Anonymous)
    }

    /// The text of the workload's claim at `path`; `None` for accounts, anonymous callers and
    /// claims without text.
    pub fn claim(&self, path: &ClaimPath) -> Option<std::borrow::Cow<'a, str>> {
        match self.who {
            Who::Workload { claims, .. } => claims::text(claims, path),
            Who::Anonymous | Who::Account(_) => None,
        }
    }

    /// The account's groups.
    pub fn groups(&self) -> &'a [String] {
        self.groups
    }
}

/// The subject of a rule, as written in a policy: `user:NAME`, `group:NAME`, `anonymous`,
/// `authenticated` (every account), `any` (everyone, anonymous callers and workloads included) or
/// `oidc:ISSUER:PATTERN` (the workloads whose name matches; see [`WorkloadPattern`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectPattern {
    /// One account.
    User(String),
    /// Every member of one group.
    Group(String),
    /// Callers without an account.
    Anonymous,
    /// Every account.
    Authenticated,
    /// Everyone.
    Any,
    /// Workloads whose name matches.
    Workload(WorkloadPattern),
}

/// Workload names a rule is for, `oidc:ISSUER:PATTERN`: the issuer's name exactly, then a pattern
/// in which `*` matches any run of characters, `/` and `:` included (subjects such as
/// `repo:acme/app:ref:refs/heads/main` hold both), and every other character itself.
/// `oidc:github:*` is every workload of the issuer `github`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadPattern {
    /// As written, `oidc:` included.
    source: String,
}

impl WorkloadPattern {
    fn parse(text: &str) -> Option<WorkloadPattern> {
        let rest = text.strip_prefix(OIDC_PREFIX)?;
        let (issuer, pattern) = rest.split_once(':')?;
        (IssuerName::parse(issuer).is_ok() && is_oidc_value(pattern)).then(|| WorkloadPattern {
            source: text.to_owned(),
        })
    }

    /// Whether the workload `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        claims::star_match(&self.source, name)
    }
}

impl fmt::Display for WorkloadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

const USER_PREFIX: &str = "user:";
const GROUP_PREFIX: &str = "group:";
const ANONYMOUS: &str = "anonymous";
const AUTHENTICATED: &str = "authenticated";
const ANY: &str = "any";

impl FromStr for SubjectPattern {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let named = |name: &str, build: fn(String) -> SubjectPattern| {
            if is_subject_name(name) {
                Ok(build(name.to_owned()))
            } else {
                Err(RuleError::SubjectName(s.to_owned()))
            }
        };
        match s {
            ANONYMOUS => Ok(SubjectPattern::Anonymous),
            AUTHENTICATED => Ok(SubjectPattern::Authenticated),
            ANY => Ok(SubjectPattern::Any),
            _ => {
                if s.starts_with(OIDC_PREFIX) {
                    WorkloadPattern::parse(s)
                        .map(SubjectPattern::Workload)
                        .ok_or_else(|| RuleError::SubjectName(s.to_owned()))
                } else if let Some(name) = s.strip_prefix(USER_PREFIX) {
                    named(name, SubjectPattern::User)
                } else if let Some(name) = s.strip_prefix(GROUP_PREFIX) {
                    if is_policy_group(name) {
                        Ok(SubjectPattern::Group(name.to_owned()))
                    } else {
                        Err(RuleError::SubjectName(s.to_owned()))
                    }
                } else {
                    Err(RuleError::Subject(s.to_owned()))
                }
            }
        }
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectPattern::User(name) => write!(f, "{USER_PREFIX}{name}"),
            SubjectPattern::Group(name) => write!(f, "{GROUP_PREFIX}{name}"),
            SubjectPattern::Anonymous => f.write_str(ANONYMOUS),
            SubjectPattern::Authenticated => f.write_str(AUTHENTICATED),
            SubjectPattern::Any => f.write_str(ANY),
            SubjectPattern::Workload(pattern) => pattern.fmt(f),
        }
    }
}

/// The user name alphabet ([`Username`]), so a rule can only name users that can exist; group
/// names follow it too, or name a directory's group (`ldap:<directory>:<group>`, see
/// [`is_policy_group`]).
fn is_subject_name(s: &str) -> bool {
    Username::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip() {
        for text in [
            "user:alice",
            "group:admins",
            "anonymous",
            "authenticated",
            "any",
            "user:ci_bot-2.x",
            "group:ldap:corp:registry-admins",
            "group:oidc:gitlab:acme/platform",
            "oidc:github:*",
            "oidc:github:repo:acme/app:ref:refs/heads/main",
        ] {
            let parsed: SubjectPattern = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn workload_patterns_star_across_slashes_and_colons() {
        let matches = |pattern: &str, name: &str| match pattern.parse::<SubjectPattern>() {
            Ok(SubjectPattern::Workload(p)) => p.matches(name),
            other => panic!("{pattern}: {other:?}"),
        };
        let main = "oidc:github:repo:acme/app:ref:refs/heads/main";
        assert!(matches("oidc:github:*", main));
        assert!(matches("oidc:github:repo:acme/*:ref:refs/heads/main", main));
        assert!(matches(main, main));
        assert!(!matches("oidc:gitlab:*", main));
        assert!(!matches("oidc:github:repo:acme/app", main));
        assert!(!matches("oidc:github:*:ref:refs/heads/dev", main));
        for bad in [
            "oidc:",
            "oidc:github",
            "oidc:GitHub:*",
            "oidc:github:a b",
            "oidc:github:",
        ] {
            assert!(bad.parse::<SubjectPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_subjects_are_refused() {
        for bad in ["", "everyone", "User:alice", "users:alice", "Anonymous"] {
            assert!(
                matches!(bad.parse::<SubjectPattern>(), Err(RuleError::Subject(_))),
                "{bad}"
            );
        }
        for bad in [
            "user:",
            "user:Alice",
            "group:a b",
            "group:-x",
            "user:a/b",
            "user:ldap:corp:alice",
            "group:ldap:corp",
            "group:ldap:Corp:admins",
            "group:ldap:corp:a:b",
            "group:other:corp:admins",
        ] {
            assert!(
                matches!(
                    bad.parse::<SubjectPattern>(),
                    Err(RuleError::SubjectName(_))
                ),
                "{bad}"
            );
        }
        let long = format!("user:{}", "a".repeat(crate::names::MAX_USERNAME_LEN + 1));
        assert!(long.parse::<SubjectPattern>().is_err());
    }
}
