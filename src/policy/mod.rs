//! Authorization: rules that allow or deny actions on registry resources, compiled once per load,
//! and the evaluator that decides each requested scope and says which rules decided it. The engine
//! in this file and its private modules is pure: it reads no files and stores nothing. At its
//! edges, [`source`] loads each realm's policy (its file, then its database grants) and reloads it,
//! and [`authorize`] turns an authenticated principal into a [`Subject`] (realm admins in
//! [`ADMIN_GROUP`]) and decides a token request. How a caller authenticated is `crate::auth`'s.
//!
//! # Rules
//!
//! A [`Rule`] has a subject (`user:NAME`, `group:NAME`, `anonymous`, `authenticated`, `any`,
//! `oidc:ISSUER:PATTERN`), a
//! resource type (`repository`, or `registry` whose one resource is `catalog`), a name pattern (see
//! [`NamePattern`]), actions (`pull`, `push`, `delete`, `*` on repositories; `search`, `*` on the
//! registry) and an effect, `allow` or `deny`. A rule matches a requested scope when its subject
//! covers the caller, its type is the scope's type and its pattern matches the scope's name
//! (for `registry:catalog:*` the name is `catalog`). Scope types no rule can name (`plugin`, ...)
//! and actions a type does not have are never granted.
//!
//! # Evaluation
//!
//! [`Evaluation::Union`] (the default): granted = (the actions of every matching allow rule) minus
//! (the actions of every matching deny rule), intersected with what was requested. No matching
//! rule grants nothing, and rule order does not matter.
//!
//! [`Evaluation::FirstMatch`], as docker_auth does it: the first matching rule in policy order
//! decides the whole scope. An allow grants the requested actions it lists; a deny grants nothing.
//!
//! # The `*` action
//!
//! - A rule allowing `*` allows every action of its type, `*` included: a request for `pull`
//!   gets `pull`, a request for `*` gets `*`.
//! - A request for `*` is granted `*` only when a matching rule allows `*` itself. Allowing pull,
//!   push and delete one by one does not add up to `*`, because a token holding `*` is accepted for
//!   any action, present or future, and that is more than those three.
//! - A deny of `*` removes every action. A deny of any one action also removes `*`, which would
//!   imply it.
//! - The token lists exactly the requested actions that were granted: a request for `*` is never
//!   widened into a list or narrowed into a subset, and a granted `*` is listed as `*`.
//!
//! # Principals
//!
//! A [`Subject`] is an account name (absent for anonymous callers) and the account's groups, or a
//! workload proven by an external JWT: its `oidc:<issuer>:<subject>` name, groups and claims. A
//! workload is no account: `authenticated`, `user:` rules and `${account}` never match it; `any`,
//! `group:` rules for its groups and `oidc:ISSUER:PATTERN` rules do, and `${claim.PATH}` in a name
//! pattern stands for its claim there, taken literally (matching nothing when it has none).
//! Administrators are nothing special to the engine: [`authorize`] puts realm admins in the group
//! `admins`, and the shipped [`DEFAULT_POLICY`] gives that group everything. `${account}` and `${group}` match nothing for a subject without an account or
//! groups. A subject listing the same group twice matches that group's rules once.
//!
//! # Speed
//!
//! [`Policy`] files rules by subject (a bucket per user and per group, one each for anonymous,
//! authenticated and any); within a bucket, rules with a literal name by that name and the others
//! by the first path segment of their fixed prefix (`team/*` under `team`), so a decision reads
//! only its principal's buckets and, in them, the rules that can match its name's first segment
//! plus those without a fixed segment (`**`, `${account}/**`). Patterns compile when the rule is
//! parsed; placeholders never compile anything per request, and their number per pattern is
//! capped ([`MAX_GLOB_PLACEHOLDERS`], [`MAX_REGEX_PLACEHOLDERS`]) to bound a crafted name's cost.
//! `benches/policy.rs` measures decisions at 10,000 rules for 1,000 users.

mod action;
pub mod authorize;
mod decision;
mod file;
mod index;
mod limit;
mod pattern;
mod rule;
pub mod source;
mod subject;

#[cfg(test)]
mod proptests;

use std::sync::Arc;

use serde::Deserialize;

pub use action::{ActionSet, Resource};
pub use decision::{Decision, Outcome, RuleRef, Verdict};
pub use file::{PolicyError, Position, DEFAULT_EFFECT, DEFAULT_RESOURCE};
pub use limit::{scope_limit, ScopeLimitError, ADMIN_SCOPE};
pub use pattern::{
    NamePattern, PatternError, ACCOUNT_PLACEHOLDER, CLAIM_PLACEHOLDER_OPEN, GROUP_PLACEHOLDER,
    MAX_GLOB_PLACEHOLDERS, MAX_REGEX_PLACEHOLDERS, REGEX_PREFIX,
};
pub use rule::{Effect, Rule, RuleError, RuleText};
pub use subject::{Subject, SubjectPattern, WorkloadPattern};

use crate::scope::Scope;
use index::{Index, RuleId};

/// The shipped example policy, also [`Policy::default_policy`]: admins may do everything (catalog
/// included), every account everything in its own namespace `${account}/**`, anonymous callers
/// nothing. This is the fixed policy Portcullis had before policies existed, written as rules.
pub const DEFAULT_POLICY: &str = include_str!("../../policy.example.toml");

/// The group the shipped default policy gives everything; realm administrators belong to it.
pub const ADMIN_GROUP: &str = "admins";

/// How matching rules combine; a policy file's `evaluation` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evaluation {
    /// Union of allows minus union of denies; see the module documentation.
    #[default]
    Union,
    /// The first matching rule decides the scope.
    FirstMatch,
}

/// A compiled policy: its rules in order, and an index of them by subject.
#[derive(Debug, Clone)]
pub struct Policy {
    evaluation: Evaluation,
    rules: Vec<Arc<Rule>>,
    index: Index,
}

impl Policy {
    /// A policy of these rules, in this order.
    pub fn new(evaluation: Evaluation, rules: impl IntoIterator<Item = Rule>) -> Policy {
        let mut policy = Policy {
            evaluation,
            rules: Vec::new(),
            index: Index::default(),
        };
        policy.extend(rules);
        policy
    }

    /// Parses and compiles a policy file; the error gives line, column and rule number.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        file::parse(text)
    }

    /// The policy of [`DEFAULT_POLICY`].
    pub fn default_policy() -> Policy {
        Policy::from_toml_str(DEFAULT_POLICY).expect("the shipped default policy is valid")
    }

    /// Appends rules after the existing ones (database grants after file rules); they are numbered
    /// on from the last rule and, in first-match mode, come after it.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Rule>) {
        for rule in rules {
            self.index.insert(self.rules.len(), &rule);
            self.rules.push(Arc::new(rule));
        }
    }

    /// How matching rules combine.
    pub fn evaluation(&self) -> Evaluation {
        self.evaluation
    }

    /// The rules in order; rule number n is the n-th.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> {
        self.rules.iter().map(|rule| &**rule)
    }

    /// Decides one requested scope for `subject`: the granted part of it, and per requested action
    /// the verdict and the rules that decided it.
    pub fn decide(&self, subject: &Subject<'_>, scope: &Scope) -> Decision {
        let resource = Resource::of_scope_kind(scope.kind());
        let matched = resource.map_or_else(Vec::new, |resource| {
            self.index
                .matching(&self.rules, subject, resource, scope.name())
        });
        let verdicts = scope
            .actions()
            .iter()
            .map(|action| match resource.and_then(|r| r.action(action)) {
                None => Verdict::new(action, Outcome::NotAnAction, Vec::new()),
                Some(wanted) => match self.evaluation {
                    Evaluation::Union => self.union_verdict(action, wanted, &matched),
                    Evaluation::FirstMatch => {
                        self.first_match_verdict(action, wanted, matched.first().copied())
                    }
                },
            })
            .collect();
        Decision::new(scope, verdicts)
    }

    /// Denied if a matching deny covers the action, else granted if a matching allow does.
    fn union_verdict(&self, action: &str, wanted: ActionSet, matched: &[RuleId]) -> Verdict {
        let covering = |effect: Effect| -> Vec<RuleRef> {
            matched
                .iter()
                .copied()
                .filter(|&id| {
                    let rule = &self.rules[id];
                    rule.effect() == effect && rule.effective_actions().contains(wanted)
                })
                .map(|id| self.rule_ref(id))
                .collect()
        };
        let denied_by = covering(Effect::Deny);
        if !denied_by.is_empty() {
            return Verdict::new(action, Outcome::Denied, denied_by);
        }
        let allowed_by = covering(Effect::Allow);
        let outcome = if allowed_by.is_empty() {
            Outcome::NotAllowed
        } else {
            Outcome::Granted
        };
        Verdict::new(action, outcome, allowed_by)
    }

    /// The first matching rule alone decides.
    fn first_match_verdict(
        &self,
        action: &str,
        wanted: ActionSet,
        first: Option<RuleId>,
    ) -> Verdict {
        let Some(id) = first else {
            return Verdict::new(action, Outcome::NotAllowed, Vec::new());
        };
        let rule = &self.rules[id];
        let outcome = match (rule.effect(), rule.effective_actions().contains(wanted)) {
            (Effect::Allow, true) => Outcome::Granted,
            (Effect::Deny, true) => Outcome::Denied,
            (_, false) => Outcome::NotAllowed,
        };
        Verdict::new(action, outcome, vec![self.rule_ref(id)])
    }

    fn rule_ref(&self, id: RuleId) -> RuleRef {
        RuleRef::new(id + 1, Arc::clone(&self.rules[id]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::parse_all;

    /// Granted scopes for `subject`, as strings.
    fn granted(policy: &Policy, subject: &Subject<'_>, scopes: &str) -> Vec<String> {
        parse_all([scopes])
            .unwrap()
            .iter()
            .filter_map(|scope| policy.decide(subject, scope).into_granted())
            .map(|scope| scope.to_string())
            .collect()
    }

    fn rule(subject: &str, name: &str, actions: &[&str], effect: &str) -> Rule {
        Rule::parse(&RuleText {
            subject,
            resource: "repository",
            name,
            actions,
            effect,
        })
        .unwrap()
    }

    const NO_GROUPS: &[String] = &[];

    #[test]
    fn default_policy_keeps_the_fixed_behaviour() {
        let policy = Policy::default_policy();
        let alice = Subject::account("alice", NO_GROUPS);
        assert_eq!(
            granted(&policy, &alice, "repository:alice/app:pull,push"),
            ["repository:alice/app:pull,push"]
        );
        assert_eq!(
            granted(&policy, &alice, "repository:alice/a/b:*"),
            ["repository:alice/a/b:*"]
        );
        for nothing in [
            "repository:bob/app:pull",
            "repository:alice:pull",
            "repository:alicea/app:pull",
            "registry:catalog:*",
        ] {
            assert!(granted(&policy, &alice, nothing).is_empty(), "{nothing}");
        }
        assert_eq!(
            granted(
                &policy,
                &alice,
                "repository:alice/x:pull repository:bob/x:pull"
            ),
            ["repository:alice/x:pull"]
        );

        let admins = [ADMIN_GROUP.to_owned()];
        let root = Subject::account("root", &admins);
        assert_eq!(
            granted(&policy, &root, "registry:catalog:*"),
            ["registry:catalog:*"]
        );
        assert_eq!(
            granted(&policy, &root, "repository:any/thing:delete"),
            ["repository:any/thing:delete"]
        );
        assert_eq!(
            granted(&policy, &root, "repository:a:pull,frobnicate"),
            ["repository:a:pull"]
        );
        assert!(granted(&policy, &root, "registry:other:*").is_empty());
        assert!(granted(&policy, &root, "plugin:x:pull").is_empty());

        let anonymous = Subject::anonymous();
        assert!(granted(&policy, &anonymous, "repository:library/alpine:pull").is_empty());
    }

    #[test]
    fn union_of_allows_minus_denies() {
        let policy = Policy::new(
            Evaluation::Union,
            [
                rule("authenticated", "team/**", &["pull"], "allow"),
                rule("group:devs", "team/*", &["push"], "allow"),
                rule("user:carol", "team/prod", &["push", "delete"], "deny"),
            ],
        );
        let devs = ["devs".to_owned()];
        let carol = Subject::account("carol", &devs);
        let dave = Subject::account("dave", &devs);
        let scope = "repository:team/prod:pull,push,delete";
        assert_eq!(
            granted(&policy, &dave, scope),
            ["repository:team/prod:pull,push"]
        );
        assert_eq!(
            granted(&policy, &carol, scope),
            ["repository:team/prod:pull"]
        );
        assert!(granted(&policy, &Subject::anonymous(), scope).is_empty());
    }

    #[test]
    fn explanations_name_the_deciding_rules() {
        let policy = Policy::new(
            Evaluation::Union,
            [
                rule("authenticated", "team/**", &["pull", "push"], "allow"),
                rule("any", "**", &["pull"], "allow"),
                rule("user:carol", "team/prod", &["push"], "deny"),
            ],
        );
        let carol = Subject::account("carol", NO_GROUPS);
        let scope = Scope::parse("repository:team/prod:pull,push,delete,frobnicate").unwrap();
        let decision = policy.decide(&carol, &scope);
        assert_eq!(
            decision.granted().map(ToString::to_string).as_deref(),
            Some("repository:team/prod:pull")
        );
        let summary: Vec<(&str, Outcome, Vec<usize>)> = decision
            .verdicts()
            .iter()
            .map(|v| {
                let numbers = v.rules().iter().map(RuleRef::number).collect();
                (v.action(), v.outcome(), numbers)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("delete", Outcome::NotAllowed, vec![]),
                ("frobnicate", Outcome::NotAnAction, vec![]),
                ("pull", Outcome::Granted, vec![1, 2]),
                ("push", Outcome::Denied, vec![3]),
            ]
        );
        let numbers: Vec<usize> = decision.rules().iter().map(|r| r.number()).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(
            decision.to_string(),
            "repository:team/prod:delete,frobnicate,pull,push: granted repository:team/prod:pull\n  \
             delete: not granted: no rule allows it\n  \
             frobnicate: not granted: not an action of this resource type\n  \
             pull: granted by rule 1 (allow pull,push on repository \"team/**\" to authenticated), \
             rule 2 (allow pull on repository \"**\" to any)\n  \
             push: denied by rule 3 (deny push on repository \"team/prod\" to user:carol)"
        );
    }

    #[test]
    fn first_match_lets_the_first_matching_rule_decide() {
        let rules = || {
            [
                rule("user:carol", "team/prod", &["pull"], "allow"),
                rule("authenticated", "team/**", &["*"], "allow"),
                rule("user:dave", "team/**", &["*"], "deny"),
            ]
        };
        let policy = Policy::new(Evaluation::FirstMatch, rules());
        let carol = Subject::account("carol", NO_GROUPS);
        let dave = Subject::account("dave", NO_GROUPS);
        // Rule 1 decides for carol on team/prod, though rule 2 would grant push.
        let decision = policy.decide(
            &carol,
            &Scope::parse("repository:team/prod:pull,push").unwrap(),
        );
        assert_eq!(
            decision.granted().unwrap().to_string(),
            "repository:team/prod:pull"
        );
        assert_eq!(decision.verdicts()[1].outcome(), Outcome::NotAllowed);
        assert_eq!(decision.verdicts()[1].rules()[0].number(), 1);
        assert!(decision.verdicts()[1].to_string().contains(
            "rule 1 (allow pull on repository \"team/prod\" to user:carol) matched first"
        ));
        // Rule 2 comes before dave's deny, so dave gets everything.
        assert_eq!(
            granted(&policy, &dave, "repository:team/x:push"),
            ["repository:team/x:push"]
        );
        // The same rules as a union: the deny wins.
        let union = Policy::new(Evaluation::Union, rules());
        assert!(granted(&union, &dave, "repository:team/x:push").is_empty());
        // A first-matching deny grants nothing, even actions it does not name.
        let deny_first = Policy::new(
            Evaluation::FirstMatch,
            [
                rule("any", "x", &["push"], "deny"),
                rule("any", "x", &["pull"], "allow"),
            ],
        );
        let decision = deny_first.decide(&dave, &Scope::parse("repository:x:pull,push").unwrap());
        assert!(decision.granted().is_none());
        let outcomes: Vec<Outcome> = decision.verdicts().iter().map(Verdict::outcome).collect();
        assert_eq!(outcomes, [Outcome::NotAllowed, Outcome::Denied]);
    }

    #[test]
    fn wildcard_action_semantics() {
        let policy = Policy::new(
            Evaluation::Union,
            [
                rule("user:a", "x", &["*"], "allow"),
                rule("user:b", "x", &["pull", "push", "delete"], "allow"),
                rule("user:c", "x", &["*"], "allow"),
                rule("user:c", "x", &["delete"], "deny"),
                rule("user:d", "x", &["*"], "allow"),
                rule("user:d", "x", &["*"], "deny"),
            ],
        );
        let who = |name| Subject::account(name, NO_GROUPS);
        assert_eq!(
            granted(&policy, &who("a"), "repository:x:*"),
            ["repository:x:*"]
        );
        assert_eq!(
            granted(&policy, &who("a"), "repository:x:pull,*"),
            ["repository:x:*,pull"]
        );
        assert!(granted(&policy, &who("b"), "repository:x:*").is_empty());
        assert_eq!(
            granted(&policy, &who("b"), "repository:x:pull,delete"),
            ["repository:x:delete,pull"]
        );
        assert!(granted(&policy, &who("c"), "repository:x:*").is_empty());
        assert_eq!(
            granted(&policy, &who("c"), "repository:x:pull,push,delete"),
            ["repository:x:pull,push"]
        );
        assert!(granted(&policy, &who("d"), "repository:x:pull,*").is_empty());
    }

    #[test]
    fn extend_appends_numbered_rules() {
        let mut policy = Policy::default_policy();
        let before = policy.rules().len();
        let grant = Rule::parse(&RuleText {
            subject: "user:bob",
            resource: "repository",
            name: "alice/shared",
            actions: &["pull"],
            effect: "allow",
        })
        .unwrap();
        policy.extend([grant]);
        let bob = Subject::account("bob", NO_GROUPS);
        let decision = policy.decide(&bob, &Scope::parse("repository:alice/shared:pull").unwrap());
        assert!(decision.granted().is_some());
        assert_eq!(decision.rules()[0].number(), before + 1);
    }

    #[test]
    fn policies_can_be_shared_between_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Policy>();
        send_and_sync::<Decision>();
    }

    #[test]
    fn duplicate_groups_match_once() {
        let policy = Policy::new(
            Evaluation::Union,
            [rule("group:devs", "${group}/*", &["pull"], "allow")],
        );
        let groups = ["devs".to_owned(), "devs".to_owned()];
        let decision = policy.decide(
            &Subject::account("x", &groups),
            &Scope::parse("repository:devs/app:pull").unwrap(),
        );
        assert_eq!(decision.verdicts()[0].rules().len(), 1);
    }
}
