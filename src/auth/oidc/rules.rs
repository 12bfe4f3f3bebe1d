//! Claim rules: a verified token's claims to a workload principal. Pure: it reads no keys and
//! checks no signatures (that is `auth::oidc`'s). The contract, stated once (docs/workload-identity.md
//! says it to operators):
//! - Rules are tried in order; the first whose conditions all hold maps the token. None: refused.
//! - A condition holds when the claim at its path has text (a string, number or boolean; for a
//!   list, any one element) that equals the value, matches the glob (`*`: any run of characters,
//!   `/` and `:` included; nothing else is special) or is one of the listed values.
//!   An absent claim fails every condition.
//! - The principal's name is `oidc:<issuer name>:` and the issuer's subject template filled in
//!   (`${iss-name}`, `${sub}`, `${claim.PATH}`); a template whose claim has no text, or a result
//!   that is not 1–255 visible ASCII characters, refuses the token.
//! - Groups are `oidc:<issuer name>:<value>`, from the rule's group templates and the strings of
//!   its `groups_claim`; a value that is missing or not 1–255 visible ASCII characters is no group.

use std::fmt;

use serde_json::Value;

use crate::claims::{self, ClaimPath};
use crate::names::{is_oidc_value, IssuerName, OIDC_PREFIX};

/// `${iss-name}`: the issuer's configured name.
const ISSUER_NAME: &str = "${iss-name}";
/// `${sub}`: the `sub` claim.
const SUB: &str = "${sub}";
/// `${claim.PATH}`: the claim at PATH (a top-level name or a JSON Pointer).
const CLAIM_OPEN: &str = "${claim.";

/// Text with placeholders for claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    IssuerName,
    Claim(ClaimPath),
}

impl Template {
    /// Parses `${iss-name}`, `${sub}` and `${claim.PATH}`; any other `${` is refused.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let open = &rest[start..];
            let end = open
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {source:?}"))?;
            let placeholder = &open[..=end];
            pieces.push(if placeholder == ISSUER_NAME {
                Piece::IssuerName
            } else if placeholder == SUB {
                Piece::Claim(ClaimPath::parse("sub").map_err(|e| e.to_string())?)
            } else if let Some(path) = placeholder
                .strip_prefix(CLAIM_OPEN)
                .and_then(|p| p.strip_suffix('}'))
            {
                Piece::Claim(ClaimPath::parse(path).map_err(|e| e.to_string())?)
            } else {
                return Err(format!(
                    "unknown placeholder {placeholder:?}: use {ISSUER_NAME}, {SUB} or ${{claim.PATH}}"
                ));
            });
            rest = &open[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        if pieces.is_empty() {
            return Err("the template is empty".into());
        }
        Ok(Template {
            source: source.to_owned(),
            pieces,
        })
    }

    /// The template filled in; `None` when a claim it names has no text.
    pub fn fill(&self, issuer: &IssuerName, claims: &Value) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::IssuerName => out.push_str(issuer.as_str()),
                Piece::Claim(path) => out.push_str(&claims::text(claims, path)?),
            }
        }
        Some(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A glob whose only special character is `*`, matching any run of characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_owned())
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        claims::star_match(&self.0, text)
    }
}

/// What a claim's text must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals(String),
    Glob(Glob),
    OneOf(Vec<String>),
}

impl Condition {
    fn holds_for(&self, text: &str) -> bool {
        match self {
            Condition::Equals(value) => text == value,
            Condition::Glob(glob) => glob.matches(text),
            Condition::OneOf(values) => values.iter().any(|v| v == text),
        }
    }

    /// Whether the claim (its text, or any element's text for a list) satisfies this condition.
    fn holds(&self, claim: Option<&Value>) -> bool {
        match claim {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(claims::text_of)
                .any(|text| self.holds_for(&text)),
            Some(value) => claims::text_of(value).is_some_and(|text| self.holds_for(&text)),
            None => false,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Equals(value) => write!(f, "= {value:?}"),
            Condition::Glob(glob) => write!(f, "matches {:?}", glob.0),
            Condition::OneOf(values) => write!(f, "one of {values:?}"),
        }
    }
}

/// One claim rule of an issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRule {
    pub name: String,
    pub conditions: Vec<(ClaimPath, Condition)>,
    pub groups: Vec<Template>,
    pub groups_claim: Option<ClaimPath>,
}

impl ClaimRule {
    /// The first condition that does not hold, shown as `/path = "value"`; `None` when all hold.
    pub fn first_failing(&self, claims: &Value) -> Option<String> {
        self.conditions
            .iter()
            .find(|(path, condition)| !condition.holds(path.find(claims)))
            .map(|(path, condition)| format!("{path} {condition}"))
    }

    /// The policy groups a token this rule maps gets.
    fn policy_groups(&self, issuer: &IssuerName, claims: &Value) -> Vec<String> {
        let mut values: Vec<String> = self
            .groups
            .iter()
            .filter_map(|template| template.fill(issuer, claims))
            .collect();
        if let Some(path) = &self.groups_claim {
            match path.find(claims) {
                Some(Value::Array(items)) => {
                    values.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
                }
                Some(Value::String(one)) => values.push(one.clone()),
                _ => {}
            }
        }
        let mut groups: Vec<String> = Vec::new();
        for value in values.into_iter().filter(|v| is_oidc_value(v)) {
            let group = format!("{OIDC_PREFIX}{issuer}:{value}");
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }
}

/// A token mapped to a principal.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping<'r> {
    /// The rule that matched.
    pub rule: &'r ClaimRule,
    /// `oidc:<issuer name>:<subject>`.
    pub name: String,
    pub groups: Vec<String>,
}

/// Why a verified token maps to no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    #[error("no rule matched")]
    NoRuleMatched,
    #[error("the subject template names a claim the token lacks, or makes no usable name")]
    SubjectUnusable,
}

/// The first rule whose conditions hold, and the principal it makes of `claims`.
pub fn map<'r>(
    issuer: &IssuerName,
    subject: &Template,
    rules: &'r [ClaimRule],
    claims: &Value,
) -> Result<Mapping<'r>, Unmapped> {
    let rule = rules
        .iter()
        .find(|rule| rule.first_failing(claims).is_none())
        .ok_or(Unmapped::NoRuleMatched)?;
    let name = subject
        .fill(issuer, claims)
        .filter(|name| is_oidc_value(name))
        .ok_or(Unmapped::SubjectUnusable)?;
    Ok(Mapping {
        rule,
        name: format!("{OIDC_PREFIX}{name}"),
        groups: rule.policy_groups(issuer, claims),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).unwrap()
    }

    fn github() -> IssuerName {
        IssuerName::parse("github").unwrap()
    }

    fn rule(name: &str, conditions: Vec<(&str, Condition)>, groups: &[&str]) -> ClaimRule {
        ClaimRule {
            name: name.into(),
            conditions: conditions.into_iter().map(|(p, c)| (path(p), c)).collect(),
            groups: groups.iter().map(|g| Template::parse(g).unwrap()).collect(),
            groups_claim: None,
        }
    }

    fn token() -> Value {
        json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:acme/app:ref:refs/heads/main",
            "repository": "acme/app",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "environment": "prod",
            "kubernetes.io": {"namespace": "ci"},
            "roles": ["builder", "reader"],
        })
    }

    #[test]
    fn the_first_rule_whose_conditions_hold_maps_the_token() {
        let subject = Template::parse("${iss-name}:${sub}").unwrap();
        let rules = [
            rule(
                "releases",
                vec![("ref", Condition::Glob(Glob::new("refs/tags/*")))],
                &["release"],
            ),
            rule(
                "main",
                vec![
                    ("repository_owner", Condition::Equals("acme".into())),
                    ("ref", Condition::Equals("refs/heads/main".into())),
                    (
                        "environment",
                        Condition::OneOf(vec!["staging".into(), "prod".into()]),
                    ),
                    ("/kubernetes.io/namespace", Condition::Equals("ci".into())),
                ],
                &["ci", "${claim.repository_owner}", "${claim.missing}"],
            ),
        ];
        let mapping = map(&github(), &subject, &rules, &token()).unwrap();
        assert_eq!(mapping.rule.name, "main");
        assert_eq!(
            mapping.name,
            "oidc:github:repo:acme/app:ref:refs/heads/main"
        );
        assert_eq!(mapping.groups, ["oidc:github:ci", "oidc:github:acme"]);
        let mut other = token();
        other["repository_owner"] = json!("evil");
        assert_eq!(
            map(&github(), &subject, &rules, &other),
            Err(Unmapped::NoRuleMatched)
        );
        assert_eq!(
            rules[1].first_failing(&other).as_deref(),
            Some("/repository_owner = \"acme\"")
        );
    }

    #[test]
    fn lists_satisfy_a_condition_with_any_element_and_give_groups() {
        let mut r = rule(
            "builders",
            vec![("roles", Condition::Equals("builder".into()))],
            &[],
        );
        r.groups_claim = Some(path("roles"));
        let subject = Template::parse("${claim.repository}").unwrap();
        let rules = [r];
        let mapping = map(&github(), &subject, &rules, &token()).unwrap();
        assert_eq!(mapping.name, "oidc:acme/app");
        assert_eq!(
            mapping.groups,
            ["oidc:github:builder", "oidc:github:reader"]
        );
    }

    #[test]
    fn absent_claims_fail_conditions_and_unusable_subjects_refuse() {
        let rules = [rule(
            "x",
            vec![("missing", Condition::Glob(Glob::new("*")))],
            &[],
        )];
        let subject = Template::parse("${sub}").unwrap();
        assert_eq!(
            map(&github(), &subject, &rules, &token()),
            Err(Unmapped::NoRuleMatched)
        );
        let open = [rule("open", vec![], &[])];
        let lacking = Template::parse("${claim.nothing}").unwrap();
        assert_eq!(
            map(&github(), &lacking, &open, &token()),
            Err(Unmapped::SubjectUnusable)
        );
        let spaced = json!({"sub": "a b"});
        assert_eq!(
            map(&github(), &subject, &open, &spaced),
            Err(Unmapped::SubjectUnusable)
        );
    }

    #[test]
    fn templates_refuse_unknown_placeholders() {
        assert!(Template::parse("${user}").is_err());
        assert!(Template::parse("${claim.a b}").is_err());
        assert!(Template::parse("${sub").is_err());
        assert!(Template::parse("").is_err());
        assert_eq!(
            Template::parse("ci-${claim./kubernetes.io/namespace}")
                .unwrap()
                .fill(&github(), &token())
                .as_deref(),
            Some("ci-ci")
        );
    }
}
