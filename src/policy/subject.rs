//! Who a rule is for ([`SubjectPattern`]) and who is asking ([`Subject`]). Authentication happens
//! elsewhere: a [`Subject`] is built from a principal that is already proven.

use std::fmt;
use std::str::FromStr;

use super::rule::RuleError;
use crate::names::{is_policy_group, Username};

/// The principal a decision is made for: an account name (`None` when anonymous) and the groups
/// the account belongs to. Realm administrators are members of a group, `admins` by convention.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    account: Option<&'a str>,
    groups: &'a [String],
}

impl<'a> Subject<'a> {
    /// A caller that did not authenticate: no account, no groups.
    pub fn anonymous() -> Self {
        Subject {
            account: None,
            groups: &[],
        }
    }

    /// An authenticated account and its groups.
    pub fn account(name: &'a str, groups: &'a [String]) -> Self {
        Subject {
            account: Some(name),
            groups,
        }
    }

    /// The account name, `None` when anonymous.
    pub fn account_name(&self) -> Option<&'a str> {
        self.account
    }

    /// The account's groups.
    pub fn groups(&self) -> &'a [String] {
        self.groups
    }
}

/// The subject of a rule, as written in a policy: `user:NAME`, `group:NAME`, `anonymous`,
/// `authenticated` (every account) or `any` (everyone, anonymous callers included).
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
                if let Some(name) = s.strip_prefix(USER_PREFIX) {
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
        ] {
            let parsed: SubjectPattern = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
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
