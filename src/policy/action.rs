//! Resource types and their actions, held as a small bit set so the evaluator unites and subtracts
//! them in one instruction. It knows which action exists on which type; it decides nothing.

use std::fmt;
use std::ops::{BitAnd, BitOr, Not};
use std::str::FromStr;

use super::rule::RuleError;
use crate::scope::{ALL_ACTIONS, REGISTRY, REPOSITORY};

/// Read a repository's manifests and blobs.
pub const PULL: &str = "pull";
/// Upload to a repository.
pub const PUSH: &str = "push";
/// Delete a repository's manifests and blobs.
pub const DELETE: &str = "delete";
/// Search the catalog (the only named action on `registry:catalog`).
pub const SEARCH: &str = "search";

/// The resource types a rule can name; they are the scope types the registry asks tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Images: `repository:NAME:ACTIONS`.
    Repository,
    /// Registry-wide resources, of which the registry knows one: `registry:catalog:*`.
    Registry,
}

impl Resource {
    /// Every resource type.
    pub const ALL: [Resource; 2] = [Resource::Repository, Resource::Registry];

    /// The resource type of a scope, `None` for types no rule can name (`plugin`, ...).
    pub fn of_scope_kind(kind: &str) -> Option<Resource> {
        match kind {
            REPOSITORY => Some(Resource::Repository),
            REGISTRY => Some(Resource::Registry),
            _ => None,
        }
    }

    /// The type's name, as in scopes and policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Repository => REPOSITORY,
            Resource::Registry => REGISTRY,
        }
    }

    /// A dense index for per-type tables.
    pub(super) fn slot(self) -> usize {
        match self {
            Resource::Repository => 0,
            Resource::Registry => 1,
        }
    }

    /// The named actions of this type, `*` excluded.
    fn named_actions(self) -> &'static [(&'static str, ActionSet)] {
        match self {
            Resource::Repository => &[
                (PULL, ActionSet::PULL),
                (PUSH, ActionSet::PUSH),
                (DELETE, ActionSet::DELETE),
            ],
            Resource::Registry => &[(SEARCH, ActionSet::SEARCH)],
        }
    }

    /// One action of this type by name (`*` included); `None` for an action the type does not have.
    pub fn action(self, name: &str) -> Option<ActionSet> {
        if name == ALL_ACTIONS {
            return Some(ActionSet::WILDCARD);
        }
        self.named_actions()
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, set)| set)
    }

    /// Every action of this type, `*` included: what a rule listing `*` covers.
    pub fn all_actions(self) -> ActionSet {
        self.named_actions()
            .iter()
            .fold(ActionSet::WILDCARD, |all, &(_, set)| all | set)
    }

    /// The action names of this type for messages: `pull, push, delete or *`.
    pub(super) fn action_list(self) -> String {
        let names: Vec<&str> = self.named_actions().iter().map(|&(n, _)| n).collect();
        format!("{} or {ALL_ACTIONS}", names.join(", "))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resource {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RuleError::Resource(s.to_owned()))
    }
}

/// A set of actions of one resource type. The `*` action is a member of its own: it stands for
/// every action, present and future, so holding pull, push and delete does not imply holding `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSet(u8);

impl ActionSet {
    /// No action.
    pub const EMPTY: ActionSet = ActionSet(0);
    /// `pull`.
    pub const PULL: ActionSet = ActionSet(1);
    /// `push`.
    pub const PUSH: ActionSet = ActionSet(1 << 1);
    /// `delete`.
    pub const DELETE: ActionSet = ActionSet(1 << 2);
    /// `search`.
    pub const SEARCH: ActionSet = ActionSet(1 << 3);
    /// `*` itself.
    pub const WILDCARD: ActionSet = ActionSet(1 << 4);

    /// Whether every action of `other` is in `self`.
    pub fn contains(self, other: ActionSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the actions in the set, in the fixed order pull, push, delete, search, `*`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (PULL, ActionSet::PULL),
            (PUSH, ActionSet::PUSH),
            (DELETE, ActionSet::DELETE),
            (SEARCH, ActionSet::SEARCH),
            (ALL_ACTIONS, ActionSet::WILDCARD),
        ]
        .into_iter()
        .filter(move |&(_, set)| self.contains(set))
        .map(|(name, _)| name)
    }
}

impl BitOr for ActionSet {
    type Output = ActionSet;
    fn bitor(self, rhs: ActionSet) -> ActionSet {
        ActionSet(self.0 | rhs.0)
    }
}

impl BitAnd for ActionSet {
    type Output = ActionSet;
    fn bitand(self, rhs: ActionSet) -> ActionSet {
        ActionSet(self.0 & rhs.0)
    }
}

impl Not for ActionSet {
    type Output = ActionSet;
    fn not(self) -> ActionSet {
        ActionSet(!self.0)
    }
}

impl fmt::Display for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_exist_per_resource_type() {
        let repo = Resource::Repository;
        assert_eq!(repo.action("pull"), Some(ActionSet::PULL));
        assert_eq!(repo.action("*"), Some(ActionSet::WILDCARD));
        assert_eq!(repo.action("search"), None);
        assert_eq!(repo.action("frobnicate"), None);
        let registry = Resource::Registry;
        assert_eq!(registry.action("search"), Some(ActionSet::SEARCH));
        assert_eq!(registry.action("pull"), None);
        assert_eq!(repo.all_actions().to_string(), "pull,push,delete,*");
        assert_eq!(registry.all_actions().to_string(), "search,*");
        assert_eq!(repo.action_list(), "pull, push, delete or *");
    }

    #[test]
    fn resource_names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(r.as_str().parse::<Resource>().unwrap(), r);
            assert_eq!(Resource::of_scope_kind(r.as_str()), Some(r));
        }
        assert!("plugin".parse::<Resource>().is_err());
        assert_eq!(Resource::of_scope_kind("plugin"), None);
    }

    #[test]
    fn set_operations() {
        let pp = ActionSet::PULL | ActionSet::PUSH;
        assert!(pp.contains(ActionSet::PULL));
        assert!(!pp.contains(ActionSet::WILDCARD));
        assert_eq!(pp & !ActionSet::PUSH, ActionSet::PULL);
        assert_eq!(pp & ActionSet::DELETE, ActionSet::EMPTY);
    }
}
