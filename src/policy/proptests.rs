//! Property tests of the evaluator against a model written straight from the specification: every
//! rule checked one by one (no index), patterns matched by substituting `regex::escape`d values into
//! one regular expression, actions compared by name (no bit sets). Principals are anonymous callers,
//! accounts, and workloads (with a `repo` claim, or none) matched by `oidc:` subject patterns.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use regex::Regex;
use serde_json::{json, Value};

use super::*;

const ACCOUNTS: [&str; 3] = ["u0", "u1", "u2"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
/// Workload names; `oidc:ci:u0` shares its tail with the account `u0`, which must not matter.
const WORKLOADS: [&str; 3] = ["oidc:ci:u0", "oidc:ci:team/a", "oidc:k8s:u0"];
/// Values of a workload's `repo` claim, glob and regex characters included; `None`: no claim.
const CLAIMS: [Option<&str>; 5] = [Some("u0"), Some("team"), Some("*"), Some(""), None];
const RULE_SUBJECTS: [&str; 9] = [
    "user:u0",
    "user:u1",
    "group:g0",
    "group:g1",
    "anonymous",
    "authenticated",
    "any",
    "oidc:ci:*",
    "oidc:k8s:u0",
];
const RULE_NAMES: [&str; 12] = [
    "team/a",
    "u0/x",
    "team/*",
    "**",
    "*/x",
    "${account}/*",
    "${group}/**",
    "re:team/[ab]",
    "re:(u[0-9]|g[0-9])/x",
    "re:${account}/.",
    "${claim.repo}/*",
    "re:${claim.repo}/.",
];
const REQUEST_NAMES: [&str; 6] = ["team/a", "team/b", "u0/x", "u1/x", "g0/y", "other/c"];
const RULE_ACTIONS: [&str; 4] = ["pull", "push", "delete", "*"];
const REQUEST_ACTIONS: [&str; 5] = ["pull", "push", "delete", "*", "frobnicate"];

#[derive(Debug, Clone)]
struct ModelRule {
    subject: &'static str,
    name: &'static str,
    actions: Vec<&'static str>,
    allow: bool,
}

impl ModelRule {
    fn compile(&self) -> Rule {
        Rule::parse(&RuleText {
            subject: self.subject,
            resource: "repository",
            name: self.name,
            actions: &self.actions,
            effect: if self.allow { "allow" } else { "deny" },
        })
        .expect("model rules are valid")
    }

    fn applies_to(&self, who: &Who) -> bool {
        match self.subject {
            "any" => true,
            "anonymous" => who.account.is_none() && who.workload.is_none(),
            "authenticated" => who.account.is_some(),
            s => match s.split_once(':') {
                Some(("user", name)) => who.account == Some(name),
                Some(("group", name)) => who.groups.iter().any(|g| g == name),
                Some(("oidc", _)) => who.workload.is_some_and(|w| {
                    let regex = s
                        .split('*')
                        .map(regex::escape)
                        .collect::<Vec<_>>()
                        .join("(?s:.*)");
                    Regex::new(&format!("^(?:{regex})$")).unwrap().is_match(w)
                }),
                _ => unreachable!("{s}"),
            },
        }
    }

    fn names(&self, action: &str) -> bool {
        self.actions.contains(&"*") || self.actions.contains(&action)
    }
}

/// A principal of the model: an account, a workload (with its `repo` claim) or neither
/// (anonymous), and its groups.
#[derive(Debug, Clone)]
struct Who {
    account: Option<&'static str>,
    workload: Option<&'static str>,
    groups: Vec<String>,
    claim: Option<&'static str>,
}

impl Who {
    fn claims(&self) -> Value {
        match self.claim {
            Some(repo) => json!({ "repo": repo }),
            None => json!({}),
        }
    }

    fn matches(&self, pattern: &str, name: &str) -> bool {
        reference_match(pattern, name, self.account, &self.groups, self.claim)
    }
}

/// The `${claim.…}` placeholder of the model's rules.
const CLAIM_PLACEHOLDER: &str = "${claim.repo}";

/// The specification's matching: escape the values into one anchored regular expression; a
/// placeholder without a value (or, for a claim, with an empty one) matches nothing.
fn reference_match(
    pattern: &str,
    name: &str,
    account: Option<&str>,
    groups: &[String],
    claim: Option<&str>,
) -> bool {
    if pattern.contains(CLAIM_PLACEHOLDER) && claim.is_none_or(str::is_empty) {
        return false;
    }
    let candidates: Vec<Option<&str>> = if pattern.contains(GROUP_PLACEHOLDER) {
        groups.iter().map(|g| Some(g.as_str())).collect()
    } else {
        vec![None]
    };
    candidates.into_iter().any(|group| {
        if pattern.contains(ACCOUNT_PLACEHOLDER) && account.is_none() {
            return false;
        }
        let expanded = |value: Option<&str>| regex::escape(value.unwrap_or_default());
        let regex = match pattern.strip_prefix(REGEX_PREFIX) {
            Some(re) => re
                .replace(ACCOUNT_PLACEHOLDER, &expanded(account))
                .replace(GROUP_PLACEHOLDER, &expanded(group))
                .replace(CLAIM_PLACEHOLDER, &expanded(claim)),
            None => glob_reference(
                pattern,
                &[
                    (ACCOUNT_PLACEHOLDER, &expanded(account)),
                    (GROUP_PLACEHOLDER, &expanded(group)),
                    (CLAIM_PLACEHOLDER, &expanded(claim)),
                ],
            ),
        };
        Regex::new(&format!("^(?:{regex})$"))
            .unwrap()
            .is_match(name)
    })
}

/// A glob as the module documentation defines it, with escaped placeholder values spliced in.
fn glob_reference(glob: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = glob;
    'next: while let Some(c) = rest.chars().next() {
        for (placeholder, value) in values {
            if let Some(after) = rest.strip_prefix(placeholder) {
                out.push_str(value);
                rest = after;
                continue 'next;
            }
        }
        if let Some(after) = rest.strip_prefix("**") {
            out.push_str("(?s:.*)");
            rest = after;
        } else if let Some(after) = rest.strip_prefix('*') {
            out.push_str("[^/]*");
            rest = after;
        } else {
            out.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The specification's decision, action by action.
fn reference_grant(
    rules: &[ModelRule],
    evaluation: Evaluation,
    who: &Who,
    name: &str,
    requested: &BTreeSet<String>,
) -> BTreeSet<String> {
    let matching: Vec<&ModelRule> = rules
        .iter()
        .filter(|r| r.applies_to(who) && who.matches(r.name, name))
        .collect();
    requested
        .iter()
        .filter(|action| RULE_ACTIONS.contains(&action.as_str()))
        .filter(|action| match evaluation {
            Evaluation::Union => {
                let allowed = matching.iter().any(|r| r.allow && r.names(action));
                // A deny of `*` removes everything; a deny of anything removes `*`.
                let denied = matching
                    .iter()
                    .any(|r| !r.allow && (r.names(action) || action.as_str() == "*"));
                allowed && !denied
            }
            Evaluation::FirstMatch => matching.first().is_some_and(|r| r.allow && r.names(action)),
        })
        .cloned()
        .collect()
}

fn model_rule() -> impl Strategy<Value = ModelRule> {
    (
        select(RULE_SUBJECTS.to_vec()),
        select(RULE_NAMES.to_vec()),
        subsequence(RULE_ACTIONS.to_vec(), 1..=RULE_ACTIONS.len()),
        any::<bool>(),
    )
        .prop_map(|(subject, name, actions, allow)| ModelRule {
            subject,
            name,
            actions,
            allow,
        })
}

fn principal() -> impl Strategy<Value = Who> {
    let groups = || {
        subsequence(GROUPS.to_vec(), 0..=GROUPS.len())
            .prop_map(|gs| gs.into_iter().map(str::to_owned).collect::<Vec<String>>())
    };
    prop_oneof![
        Just(Who {
            account: None,
            workload: None,
            groups: Vec::new(),
            claim: None,
        }),
        (select(ACCOUNTS.to_vec()), groups()).prop_map(|(a, groups)| Who {
            account: Some(a),
            workload: None,
            groups,
            claim: None,
        }),
        (
            select(WORKLOADS.to_vec()),
            groups(),
            select(CLAIMS.to_vec())
        )
            .prop_map(|(w, groups, claim)| Who {
                account: None,
                workload: Some(w),
                groups,
                claim,
            }),
    ]
}

fn request() -> impl Strategy<Value = Scope> {
    (
        select(REQUEST_NAMES.to_vec()),
        subsequence(REQUEST_ACTIONS.to_vec(), 1..=REQUEST_ACTIONS.len()),
    )
        .prop_map(|(name, actions)| {
            Scope::parse(&format!("repository:{name}:{}", actions.join(","))).unwrap()
        })
}

fn decide(rules: &[ModelRule], evaluation: Evaluation, who: &Who, scope: &Scope) -> Decision {
    let policy = Policy::new(evaluation, rules.iter().map(ModelRule::compile));
    let claims = who.claims();
    let subject = match (who.account, who.workload) {
        (Some(account), _) => Subject::account(account, &who.groups),
        (None, Some(workload)) => Subject::workload(workload, &who.groups, &claims),
        (None, None) => Subject::anonymous(),
    };
    policy.decide(&subject, scope)
}

fn granted_actions(decision: &Decision) -> BTreeSet<String> {
    decision
        .granted()
        .map(|s| s.actions().clone())
        .unwrap_or_default()
}

fn evaluation() -> impl Strategy<Value = Evaluation> {
    prop_oneof![Just(Evaluation::Union), Just(Evaluation::FirstMatch)]
}

proptest! {
    /// The indexed, compiled evaluator agrees with the specification in both modes.
    #[test]
    fn evaluator_matches_the_specification(
        rules in prop::collection::vec(model_rule(), 0..10),
        evaluation in evaluation(),
        who in principal(),
        scope in request(),
    ) {
        let decision = decide(&rules, evaluation, &who, &scope);
        let expected = reference_grant(&rules, evaluation, &who, scope.name(), scope.actions());
        prop_assert_eq!(granted_actions(&decision), expected);
    }

    /// What is granted is always a subset of what was requested, with a verdict per action.
    #[test]
    fn grant_is_within_the_request(
        rules in prop::collection::vec(model_rule(), 0..10),
        evaluation in evaluation(),
        who in principal(),
        scope in request(),
    ) {
        let decision = decide(&rules, evaluation, &who, &scope);
        prop_assert!(granted_actions(&decision).is_subset(scope.actions()));
        prop_assert_eq!(decision.verdicts().len(), scope.actions().len());
        if let Some(granted) = decision.granted() {
            prop_assert_eq!((granted.kind(), granted.name()), (scope.kind(), scope.name()));
        }
    }

    /// In union mode an extra allow rule never takes anything away, and appears in the verdicts
    /// of what it grants.
    #[test]
    fn union_only_grows_with_allows(
        rules in prop::collection::vec(model_rule(), 0..10),
        extra in model_rule(),
        who in principal(),
        scope in request(),
    ) {
        let extra = ModelRule { allow: true, ..extra };
        let before = granted_actions(&decide(&rules, Evaluation::Union, &who, &scope));
        let mut more = rules.clone();
        more.push(extra);
        let after = granted_actions(&decide(&more, Evaluation::Union, &who, &scope));
        prop_assert!(before.is_subset(&after));
    }

    /// A matching deny of an action removes it, and `*`, whatever the other rules allow.
    #[test]
    fn deny_wins(
        rules in prop::collection::vec(model_rule(), 0..10),
        denied in select(RULE_ACTIONS.to_vec()),
        who in principal(),
        scope in request(),
    ) {
        let mut with_deny = rules.clone();
        with_deny.push(ModelRule { subject: "any", name: "**", actions: vec![denied], allow: false });
        let decision = decide(&with_deny, Evaluation::Union, &who, &scope);
        let granted = granted_actions(&decision);
        prop_assert!(!granted.contains(denied));
        prop_assert!(!granted.contains("*"));
        if denied == "*" {
            prop_assert!(granted.is_empty());
        }
        let deny_number = with_deny.len();
        for verdict in decision.verdicts() {
            let numbers: Vec<usize> = verdict.rules().iter().map(RuleRef::number).collect();
            if verdict.outcome() == Outcome::Denied {
                prop_assert!(verdict.rules().iter().all(|r| r.rule().effect() == Effect::Deny));
            }
            if verdict.action() == denied || verdict.action() == "*" {
                prop_assert_eq!(verdict.outcome(), Outcome::Denied);
                prop_assert!(numbers.contains(&deny_number));
            }
        }
    }

    /// `*` is granted exactly when a matching allow lists `*` and no matching deny exists;
    /// a rule with `*` grants every known action requested by name.
    #[test]
    fn wildcard_handling(
        rules in prop::collection::vec(model_rule(), 0..10),
        who in principal(),
        name in select(REQUEST_NAMES.to_vec()),
    ) {
        let scope = Scope::parse(&format!("repository:{name}:pull,push,delete,*")).unwrap();
        let decision = decide(&rules, Evaluation::Union, &who, &scope);
        let granted = granted_actions(&decision);
        let matching: Vec<&ModelRule> = rules.iter()
            .filter(|r| r.applies_to(&who) && who.matches(r.name, name))
            .collect();
        let star_allowed = matching.iter().any(|r| r.allow && r.actions.contains(&"*"));
        let any_deny = matching.iter().any(|r| !r.allow);
        prop_assert_eq!(granted.contains("*"), star_allowed && !any_deny);
        if granted.contains("*") {
            prop_assert_eq!(granted.len(), 4);
        }
    }

    /// First-match: the lowest-numbered matching rule is the only one named, for every action.
    #[test]
    fn first_match_names_only_the_first_matching_rule(
        rules in prop::collection::vec(model_rule(), 1..10),
        who in principal(),
        scope in request(),
    ) {
        let decision = decide(&rules, Evaluation::FirstMatch, &who, &scope);
        let first = rules.iter()
            .position(|r| r.applies_to(&who) && who.matches(r.name, scope.name()))
            .map(|i| i + 1);
        for verdict in decision.verdicts() {
            let numbers: Vec<usize> = verdict.rules().iter().map(RuleRef::number).collect();
            match (verdict.outcome(), first) {
                (Outcome::NotAnAction, _) | (_, None) => prop_assert!(numbers.is_empty()),
                (_, Some(first)) => prop_assert_eq!(numbers, vec![first]),
            }
        }
    }
}

/// Pieces of glob patterns; `***` and surplus placeholders are refused, and such cases skipped.
const GLOB_PIECES: [&str; 9] = ["a", "b", "/", ".", "-", "*", "**", "${account}", "${group}"];
/// Pieces of regular expressions valid beside placeholders (patterns with two are skipped).
const REGEX_PIECES: [&str; 12] = [
    "a",
    "b",
    "/",
    "[ab]",
    "(a|b)",
    "a*",
    "b+",
    ".*",
    "[^/]*",
    r"\.",
    "${account}",
    "${group}",
];
/// Glob and regex pieces with a claim placeholder instead of the account and group ones.
const CLAIM_GLOB_PIECES: [&str; 8] = ["a", "b", "/", ".", "-", "*", "**", CLAIM_PLACEHOLDER];
const CLAIM_REGEX_PIECES: [&str; 8] = [
    "a",
    "/",
    "[ab]",
    "(a|b)",
    "b+",
    ".*",
    r"\.",
    CLAIM_PLACEHOLDER,
];
/// Characters of names and placeholder values, glob and regex metacharacters included.
const TEXT_CHARS: [char; 12] = ['a', 'b', '/', '.', '*', '+', '(', '|', '$', '[', ']', '\\'];

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(TEXT_CHARS.to_vec()), 0..=max).prop_map(String::from_iter)
}

fn pattern_from(
    pieces: &'static [&'static str],
    prefix: &'static str,
) -> impl Strategy<Value = String> {
    prop::collection::vec(select(pieces.to_vec()), 1..6)
        .prop_map(move |p| format!("{prefix}{}", p.concat()))
}

proptest! {
    /// Placeholder values are matched as if escaped into the pattern: a value holding glob or
    /// regex characters never widens a rule, and splitting at placeholders loses nothing.
    #[test]
    fn placeholders_match_as_escaped_literals(
        pattern in prop_oneof![pattern_from(&GLOB_PIECES, ""), pattern_from(&REGEX_PIECES, REGEX_PREFIX)],
        account in text(3),
        groups in prop::collection::vec(text(3), 0..3),
        name in text(8),
    ) {
        let compiled = NamePattern::parse(&pattern);
        prop_assume!(compiled.is_ok());
        let compiled = compiled.unwrap();
        let subject = Subject::account(&account, &groups);
        prop_assert_eq!(
            compiled.matches(&name, &subject),
            reference_match(&pattern, &name, Some(&account), &groups, None),
            "pattern {:?}", pattern
        );
    }

    /// A workload's claim is matched as if escaped into the pattern, like the other placeholders:
    /// a claim holding `*`, `**` or regex characters never widens a rule; an empty one matches
    /// nothing.
    #[test]
    fn claims_match_as_escaped_literals(
        pattern in prop_oneof![pattern_from(&CLAIM_GLOB_PIECES, ""), pattern_from(&CLAIM_REGEX_PIECES, REGEX_PREFIX)],
        claim in text(3),
        name in text(8),
    ) {
        let compiled = NamePattern::parse(&pattern);
        prop_assume!(compiled.is_ok());
        let claims = json!({ "repo": claim });
        let subject = Subject::workload("oidc:ci:x", &[], &claims);
        prop_assert_eq!(
            compiled.unwrap().matches(&name, &subject),
            reference_match(&pattern, &name, None, &[], Some(&claim)),
            "pattern {:?}", pattern
        );
    }

    /// The personal-namespace rule matches exactly the names under the account, for any account.
    #[test]
    fn account_namespace_is_exact(account in text(4).prop_filter("non-empty", |a| !a.is_empty()), name in text(8)) {
        let pattern = NamePattern::parse("${account}/**").unwrap();
        let expected = name.strip_prefix(account.as_str()).is_some_and(|rest| rest.starts_with('/'));
        prop_assert_eq!(pattern.matches(&name, &Subject::account(&account, &[])), expected);
    }
}
