//! One rule: subject, resource type, name pattern, actions and effect, parsed from text (a policy
//! file or a `grant add` command line) into a [`Rule`] that cannot hold an invalid value.

use std::fmt;
use std::str::FromStr;

use super::action::{ActionSet, Resource};
use super::pattern::{NamePattern, PatternError};
use super::subject::SubjectPattern;

/// Why a rule was refused. Each variant names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// `subject` is none of the five forms.
    #[error("bad subject {0:?}: use user:NAME, group:NAME, anonymous, authenticated or any")]
    Subject(String),
    /// `subject` names a user or group outside the name alphabet.
    #[error("bad subject {0:?}: names are 1-64 of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit")]
    SubjectName(String),
    /// `resource` is not a type a rule can name.
    #[error("unknown resource type {0:?}: use repository or registry")]
    Resource(String),
    /// `name` does not compile.
    #[error("bad name pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        source: PatternError,
    },
    /// One of `actions` does not exist on the resource type.
    #[error("unknown action {action:?} on {resource}: use {}", resource.action_list())]
    Action {
        /// Its position in the list, from 0.
        index: usize,
        /// The action as written.
        action: String,
        /// The rule's resource type.
        resource: Resource,
    },
    /// `actions` is empty.
    #[error("no actions: list at least one")]
    NoActions,
    /// `effect` is neither `allow` nor `deny`.
    #[error("unknown effect {0:?}: use allow or deny")]
    Effect(String),
}

/// Whether a rule grants its actions or takes them away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the actions.
    Allow,
    /// Removes the actions, whatever other rules allow.
    Deny,
}

const ALLOW: &str = "allow";
const DENY: &str = "deny";

impl Effect {
    /// The effect's name, as in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => ALLOW,
            Effect::Deny => DENY,
        }
    }
}

impl FromStr for Effect {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            ALLOW => Ok(Effect::Allow),
            DENY => Ok(Effect::Deny),
            _ => Err(RuleError::Effect(s.to_owned())),
        }
    }
}

/// A rule as text, the shape of a policy file's `[[rule]]` table and of `grant add` arguments.
#[derive(Debug, Clone, Copy)]
pub struct RuleText<'a> {
    /// `user:NAME`, `group:NAME`, `anonymous`, `authenticated` or `any`.
    pub subject: &'a str,
    /// `repository` or `registry`.
    pub resource: &'a str,
    /// A glob, or `re:` and a regular expression; may hold `${account}` and `${group}`.
    pub name: &'a str,
    /// Actions of the resource type, or `*`.
    pub actions: &'a [&'a str],
    /// `allow` or `deny`.
    pub effect: &'a str,
}

/// A parsed rule. Displays as one line: `allow pull,push on repository "team/**" to group:devs`.
#[derive(Debug, Clone)]
pub struct Rule {
    subject: SubjectPattern,
    resource: Resource,
    pattern: NamePattern,
    /// The actions as listed (deduplicated).
    actions: ActionSet,
    effect: Effect,
}

impl Rule {
    /// Parses every field; the error names the first field at fault.
    pub fn parse(text: &RuleText<'_>) -> Result<Rule, RuleError> {
        let subject: SubjectPattern = text.subject.parse()?;
        let resource: Resource = text.resource.parse()?;
        let pattern = NamePattern::parse(text.name).map_err(|source| RuleError::Pattern {
            pattern: text.name.to_owned(),
            source,
        })?;
        if text.actions.is_empty() {
            return Err(RuleError::NoActions);
        }
        let mut actions = ActionSet::EMPTY;
        for (index, &action) in text.actions.iter().enumerate() {
            actions = actions
                | resource.action(action).ok_or_else(|| RuleError::Action {
                    index,
                    action: action.to_owned(),
                    resource,
                })?;
        }
        let effect: Effect = text.effect.parse()?;
        Ok(Rule {
            subject,
            resource,
            pattern,
            actions,
            effect,
        })
    }

    /// Who the rule is for.
    pub fn subject(&self) -> &SubjectPattern {
        &self.subject
    }

    /// The resource type it covers.
    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// The names it covers.
    pub fn pattern(&self) -> &NamePattern {
        &self.pattern
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The actions as written in the rule (`*` kept as `*`).
    pub fn actions(&self) -> ActionSet {
        self.actions
    }

    /// What the rule acts on: for an allow, the actions it grants (`*` grants every action of the
    /// type and `*` itself); for a deny, the actions it removes, where removing any action also
    /// removes `*` (which would imply it) and denying `*` removes everything.
    pub fn effective_actions(&self) -> ActionSet {
        let every = self.resource.all_actions();
        if self.actions.contains(ActionSet::WILDCARD) {
            every
        } else {
            match self.effect {
                Effect::Allow => self.actions,
                Effect::Deny => self.actions | ActionSet::WILDCARD,
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} on {} {:?} to {}",
            self.effect.as_str(),
            self.actions,
            self.resource,
            self.pattern.to_string(),
            self.subject
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(actions: &'a [&'a str]) -> RuleText<'a> {
        RuleText {
            subject: "group:devs",
            resource: "repository",
            name: "team/**",
            actions,
            effect: "allow",
        }
    }

    #[test]
    fn parses_and_displays() {
        let rule = Rule::parse(&text(&["push", "pull", "pull"])).unwrap();
        assert_eq!(
            rule.to_string(),
            r#"allow pull,push on repository "team/**" to group:devs"#
        );
        assert_eq!(rule.effective_actions(), ActionSet::PULL | ActionSet::PUSH);
        let catalog = Rule::parse(&RuleText {
            subject: "any",
            resource: "registry",
            name: "catalog",
            actions: &["search"],
            effect: "deny",
        })
        .unwrap();
        assert_eq!(
            catalog.to_string(),
            r#"deny search on registry "catalog" to any"#
        );
        assert_eq!(
            catalog.effective_actions(),
            ActionSet::SEARCH | ActionSet::WILDCARD
        );
    }

    #[test]
    fn wildcard_covers_the_whole_type() {
        let rule = Rule::parse(&text(&["*"])).unwrap();
        assert_eq!(rule.effective_actions(), Resource::Repository.all_actions());
        assert_eq!(rule.to_string().split(' ').nth(1), Some("*"));
    }

    #[test]
    fn each_field_is_checked() {
        let with = |f: fn(&mut RuleText<'static>)| {
            let mut t = text(&["pull"]);
            f(&mut t);
            Rule::parse(&t).unwrap_err()
        };
        assert!(matches!(
            with(|t| t.subject = "root"),
            RuleError::Subject(_)
        ));
        assert!(matches!(
            with(|t| t.subject = "user:Root"),
            RuleError::SubjectName(_)
        ));
        assert!(matches!(
            with(|t| t.resource = "plugin"),
            RuleError::Resource(_)
        ));
        assert!(matches!(
            with(|t| t.name = "a/***"),
            RuleError::Pattern { .. }
        ));
        assert!(matches!(with(|t| t.actions = &[]), RuleError::NoActions));
        assert!(matches!(
            with(|t| t.actions = &["pull", "search"]),
            RuleError::Action { index: 1, .. }
        ));
        assert!(matches!(
            with(|t| t.effect = "permit"),
            RuleError::Effect(_)
        ));
        let message = with(|t| t.actions = &["pul"]).to_string();
        assert_eq!(
            message,
            r#"unknown action "pul" on repository: use pull, push, delete or *"#
        );
    }
}
