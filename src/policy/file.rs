//! The policy file: TOML text to a [`Policy`], refusing the whole file at the first error with its
//! line, column and rule number. Reading, watching and reloading the file are the caller's job.

use std::fmt;
use std::ops::Range;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use super::action::Resource;
use super::rule::{Effect, Rule, RuleError, RuleText};
use super::{Evaluation, Policy};

/// The resource type of a `[[rule]]` without `resource`.
pub const DEFAULT_RESOURCE: Resource = Resource::Repository;
/// The effect of a `[[rule]]` without `effect`.
pub const DEFAULT_EFFECT: Effect = Effect::Allow;

/// Where in the policy file an error is: line and column from 1 (columns count characters), and
/// the rule, counted from 1, when the error is inside a `[[rule]]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
    /// The rule, from 1, if the error is inside one.
    pub rule: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        match self.rule {
            Some(rule) => write!(f, " (rule {rule})"),
            None => Ok(()),
        }
    }
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, or not the shape of a policy file: unknown key, missing field, wrong type.
    #[error("{}: {message}", located(.at))]
    Format {
        /// Where, when the TOML parser could tell.
        at: Option<Position>,
        /// The TOML parser's message.
        message: String,
    },
    /// A rule whose value is refused (bad subject, action or pattern, invalid regex, ...).
    #[error("{at}: {source}")]
    Rule {
        /// Where: the start of the value at fault.
        at: Position,
        /// What is wrong with it.
        source: RuleError,
    },
}

fn located(at: &Option<Position>) -> String {
    at.map_or_else(|| "policy file".to_owned(), |at| at.to_string())
}

/// The file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    evaluation: Evaluation,
    #[serde(default)]
    rule: Vec<RuleTable>,
}

/// One `[[rule]]` table, each value with its place in the text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTable {
    subject: Spanned<String>,
    resource: Option<Spanned<String>>,
    name: Spanned<String>,
    actions: Spanned<Vec<Spanned<String>>>,
    effect: Option<Spanned<String>>,
}

/// Only where each `[[rule]]` table is, to tell which rule a format error is in.
#[derive(Deserialize)]
struct Outline {
    #[serde(default)]
    rule: Vec<Spanned<IgnoredAny>>,
}

/// Parses and compiles a policy file.
pub(super) fn parse(text: &str) -> Result<Policy, PolicyError> {
    let file: PolicyFile = toml::from_str(text).map_err(|error| format_error(text, &error))?;
    let rules = file
        .rule
        .iter()
        .enumerate()
        .map(|(i, table)| {
            table.parse().map_err(|(span, source)| PolicyError::Rule {
                at: position(text, span.start, Some(i + 1)),
                source,
            })
        })
        .collect::<Result<Vec<Rule>, PolicyError>>()?;
    Ok(Policy::new(file.evaluation, rules))
}

fn format_error(text: &str, error: &toml::de::Error) -> PolicyError {
    let at = error.span().map(|span| {
        let rule = toml::from_str::<Outline>(text).ok().and_then(|outline| {
            outline
                .rule
                .iter()
                .position(|table| table.span().contains(&span.start))
        });
        position(text, span.start, rule.map(|i| i + 1))
    });
    PolicyError::Format {
        at,
        message: error.message().trim_end().to_owned(),
    }
}

/// Line and column (from 1, columns in characters) of byte `offset`.
fn position(text: &str, offset: usize, rule: Option<usize>) -> Position {
    let before: Vec<char> = text
        .char_indices()
        .take_while(|&(i, _)| i < offset)
        .map(|(_, c)| c)
        .collect();
    let line_start = before.iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
    Position {
        line: before.iter().filter(|&&c| c == '\n').count() + 1,
        column: before.len() - line_start + 1,
        rule,
    }
}

impl RuleTable {
    /// The rule, or the error with the span of the value at fault.
    fn parse(&self) -> Result<Rule, (Range<usize>, RuleError)> {
        let actions: Vec<&str> = self
            .actions
            .get_ref()
            .iter()
            .map(|a| a.get_ref().as_str())
            .collect();
        let text = RuleText {
            subject: self.subject.get_ref(),
            resource: self
                .resource
                .as_ref()
                .map_or(DEFAULT_RESOURCE.as_str(), |r| r.get_ref()),
            name: self.name.get_ref(),
            actions: &actions,
            effect: self
                .effect
                .as_ref()
                .map_or(DEFAULT_EFFECT.as_str(), |e| e.get_ref()),
        };
        Rule::parse(&text).map_err(|error| {
            let span = match &error {
                RuleError::Subject(_) | RuleError::SubjectName(_) => self.subject.span(),
                RuleError::Resource(_) => self
                    .resource
                    .as_ref()
                    .map_or_else(|| self.subject.span(), Spanned::span),
                RuleError::Pattern { .. } => self.name.span(),
                RuleError::Action { index, .. } => self.actions.get_ref()[*index].span(),
                RuleError::NoActions => self.actions.span(),
                RuleError::Effect(_) => self
                    .effect
                    .as_ref()
                    .map_or_else(|| self.subject.span(), Spanned::span),
            };
            (span, error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> PolicyError {
        Policy::from_toml_str(text).unwrap_err()
    }

    fn at(error: &PolicyError) -> Position {
        match error {
            PolicyError::Format { at, .. } => at.expect("a position"),
            PolicyError::Rule { at, .. } => *at,
        }
    }

    const TWO_RULES: &str = r#"
evaluation = "union"

[[rule]]
subject = "group:admins"
name = "**"
actions = ["*"]

[[rule]]
subject = "authenticated"
resource = "registry"
name = "catalog"
actions = ["search"]
effect = "deny"
"#;

    #[test]
    fn parses_a_policy() {
        let policy = Policy::from_toml_str(TWO_RULES).unwrap();
        assert_eq!(policy.evaluation(), Evaluation::Union);
        let rules: Vec<String> = policy.rules().map(ToString::to_string).collect();
        assert_eq!(
            rules,
            [
                r#"allow * on repository "**" to group:admins"#,
                r#"deny search on registry "catalog" to authenticated"#,
            ]
        );
        let first = Policy::from_toml_str("evaluation = \"first-match\"").unwrap();
        assert_eq!(first.evaluation(), Evaluation::FirstMatch);
        assert_eq!(first.rules().count(), 0);
    }

    #[test]
    fn a_bad_value_names_rule_line_and_column() {
        let text = TWO_RULES.replace(r#"["search"]"#, r#"["search", "pull"]"#);
        let err = error(&text);
        assert!(matches!(
            err,
            PolicyError::Rule {
                source: RuleError::Action { index: 1, .. },
                ..
            }
        ));
        assert_eq!(
            at(&err),
            Position {
                line: 13,
                column: 22,
                rule: Some(2)
            }
        );
        assert_eq!(
            err.to_string(),
            r#"line 13, column 22 (rule 2): unknown action "pull" on registry: use search or *"#
        );

        let err = error(&TWO_RULES.replace("group:admins", "group:Admins"));
        assert_eq!(
            (at(&err).line, at(&err).column, at(&err).rule),
            (5, 11, Some(1))
        );
        let err = error(&TWO_RULES.replace(r#"name = "**""#, r#"name = "re:(a""#));
        assert!(err
            .to_string()
            .starts_with("line 6, column 8 (rule 1): bad name pattern"));
        let err = error(&TWO_RULES.replace(r#"effect = "deny""#, r#"effect = "refuse""#));
        assert_eq!((at(&err).line, at(&err).rule), (14, Some(2)));
        let err = error(&TWO_RULES.replace(r#"["*"]"#, "[]"));
        assert!(matches!(
            err,
            PolicyError::Rule {
                source: RuleError::NoActions,
                ..
            }
        ));
        assert_eq!((at(&err).line, at(&err).column), (7, 11));
    }

    #[test]
    fn format_errors_name_rule_line_and_column() {
        let err = error(&TWO_RULES.replace("effect = ", "efect = "));
        let message = err.to_string();
        assert!(message.contains("unknown field `efect`"), "{message}");
        assert_eq!(
            at(&err),
            Position {
                line: 14,
                column: 1,
                rule: Some(2)
            }
        );

        let err = error(&TWO_RULES.replace("name = \"catalog\"\n", ""));
        assert!(err.to_string().contains("missing field `name`"), "{err}");
        assert_eq!(at(&err).rule, Some(2));

        let err = error(&TWO_RULES.replace(r#""union""#, r#""frist-match""#));
        assert!(
            err.to_string().contains("unknown variant `frist-match`"),
            "{err}"
        );
        assert_eq!(
            at(&err),
            Position {
                line: 2,
                column: 14,
                rule: None
            }
        );

        let err = error("evaluation = \"union\"\nrules = []\n");
        assert_eq!(
            at(&err),
            Position {
                line: 2,
                column: 1,
                rule: None
            }
        );

        let err = error("[[rule]]\nsubject = \"any\"\nname = \"x\"\nactions = \"pull\"\n");
        assert_eq!(at(&err).rule, Some(1));

        let err = error("[[rule]\n");
        assert_eq!(at(&err).line, 1);
        assert_eq!(at(&err).rule, None);
    }

    #[test]
    fn columns_count_characters() {
        let p = position("ä\nüx", 5, None);
        assert_eq!((p.line, p.column), (2, 2));
        let p = position("abc", 0, None);
        assert_eq!((p.line, p.column), (1, 1));
    }
}
