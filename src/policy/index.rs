//! The rule index: rules filed by subject (one bucket per user, per group, per workload pattern,
//! and one each for anonymous, authenticated and any), and within a bucket by literal name or by the first path
//! segment of their fixed prefix, so a decision reads only the rules that can apply to its principal
//! and name. It matches; it does not combine effects.

use std::collections::HashMap;
use std::sync::Arc;

use super::action::Resource;
use super::rule::Rule;
use super::subject::{Subject, SubjectPattern, WorkloadPattern};

/// A rule's position in its policy, from 0.
pub(super) type RuleId = usize;

/// How many bytes of a pattern's fixed prefix the index keeps beside the rule id.
const HEAD_LEN: usize = 8;

/// A glob or regex rule in a bucket, with the first bytes every name it matches starts with, kept
/// inline so that a scan rejects most rules without following a pointer into the rule (at 10,000
/// rules those pointer chases, mostly cache misses, are most of a decision's time).
#[derive(Debug, Clone)]
struct Candidate {
    id: RuleId,
    head: [u8; HEAD_LEN],
    head_len: usize,
}

impl Candidate {
    fn new(id: RuleId, rule: &Rule) -> Candidate {
        let prefix = rule.pattern().fixed_prefix().as_bytes();
        let head_len = prefix.len().min(HEAD_LEN);
        let mut head = [0; HEAD_LEN];
        head[..head_len].copy_from_slice(&prefix[..head_len]);
        Candidate { id, head, head_len }
    }

    fn may_match(&self, name: &str) -> bool {
        name.as_bytes().starts_with(&self.head[..self.head_len])
    }
}

/// The rules of one subject, by resource type.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Rules whose pattern is one literal name, by that name.
    literal: [HashMap<Box<str>, Vec<RuleId>>; Resource::ALL.len()],
    /// Other rules whose fixed prefix holds a whole first path segment (`team/...`), by that
    /// segment: only names in that segment can match them.
    by_segment: [HashMap<Box<str>, Vec<Candidate>>; Resource::ALL.len()],
    /// The rest (`**`, `${account}/**`, `re:(a|b)/.*`, ...), scanned for every name.
    unkeyed: [Vec<Candidate>; Resource::ALL.len()],
}

impl Bucket {
    fn insert(&mut self, id: RuleId, rule: &Rule) {
        let slot = rule.resource().slot();
        let pattern = rule.pattern();
        if let Some(name) = pattern.literal() {
            self.literal[slot].entry(name.into()).or_default().push(id);
            return;
        }
        let candidate = Candidate::new(id, rule);
        match first_segment(pattern.fixed_prefix()) {
            Some(segment) => self.by_segment[slot]
                .entry(segment.into())
                .or_default()
                .push(candidate),
            None => self.unkeyed[slot].push(candidate),
        }
    }

    /// Adds the rules of this bucket that match to `out`.
    fn matching(
        &self,
        rules: &[Arc<Rule>],
        subject: &Subject<'_>,
        resource: Resource,
        name: &str,
        out: &mut Vec<RuleId>,
    ) {
        let slot = resource.slot();
        if let Some(ids) = self.literal[slot].get(name) {
            out.extend_from_slice(ids);
        }
        let keyed = first_segment(name).and_then(|segment| self.by_segment[slot].get(segment));
        out.extend(
            keyed
                .into_iter()
                .flatten()
                .chain(&self.unkeyed[slot])
                .filter(|c| c.may_match(name) && rules[c.id].pattern().matches(name, subject))
                .map(|c| c.id),
        );
    }
}

/// The text before the first `/`, if there is one.
fn first_segment(text: &str) -> Option<&str> {
    text.split_once('/').map(|(segment, _)| segment)
}

/// Every rule of a policy, filed by subject.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    any: Bucket,
    anonymous: Bucket,
    authenticated: Bucket,
    users: HashMap<String, Bucket>,
    groups: HashMap<String, Bucket>,
    /// Per `oidc:` pattern; each is matched against a workload's name (few in a policy).
    workloads: Vec<(WorkloadPattern, Bucket)>,
}

impl Index {
    /// Files rule `id`.
    pub(super) fn insert(&mut self, id: RuleId, rule: &Rule) {
        let bucket = match rule.subject() {
            SubjectPattern::Any => &mut self.any,
            SubjectPattern::Anonymous => &mut self.anonymous,
            SubjectPattern::Authenticated => &mut self.authenticated,
            SubjectPattern::User(name) => self.users.entry(name.clone()).or_default(),
            SubjectPattern::Group(name) => self.groups.entry(name.clone()).or_default(),
            SubjectPattern::Workload(pattern) => {
                let at = match self.workloads.iter().position(|(p, _)| p == pattern) {
                    Some(at) => at,
                    None => {
                        self.workloads.push((pattern.clone(), Bucket::default()));
                        self.workloads.len() - 1
                    }
                };
                &mut self.workloads[at].1
            }
        };
        bucket.insert(id, rule);
    }

    /// The ids of the rules that apply to `subject` and match `resource` `name`, ascending and
    /// without repeats (a subject listing a group twice still matches its rules once).
    pub(super) fn matching(
        &self,
        rules: &[Arc<Rule>],
        subject: &Subject<'_>,
        resource: Resource,
        name: &str,
    ) -> Vec<RuleId> {
        let mut out = Vec::new();
        let mut search =
            |bucket: &Bucket| bucket.matching(rules, subject, resource, name, &mut out);
        search(&self.any);
        if subject.is_anonymous() {
            search(&self.anonymous);
        }
        if let Some(account) = subject.account_name() {
            search(&self.authenticated);
            if let Some(bucket) = self.users.get(account) {
                search(bucket);
            }
        }
        if let Some(workload) = subject.workload_name() {
            for (pattern, bucket) in &self.workloads {
                if pattern.matches(workload) {
                    search(bucket);
                }
            }
        }
        for group in subject.groups() {
            if let Some(bucket) = self.groups.get(group.as_str()) {
                search(bucket);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RuleText;

    fn rule(subject: &str, name: &str) -> Rule {
        Rule::parse(&RuleText {
            subject,
            resource: "repository",
            name,
            actions: &["pull"],
            effect: "allow",
        })
        .unwrap()
    }

    #[test]
    fn finds_rules_by_subject_literal_and_segment() {
        let rules: Vec<Arc<Rule>> = [
            rule("any", "team/app"),
            rule("authenticated", "team/*"),
            rule("user:alice", "re:team/(a|b)pp"),
            rule("group:devs", "**"),
            rule("anonymous", "team/**"),
            rule("user:bob", "team/*"),
            rule("group:ops", "re:team(/app|x)"),
            rule("any", "ci/${account}"),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let mut index = Index::default();
        for (id, rule) in rules.iter().enumerate() {
            index.insert(id, rule);
        }
        let groups = ["devs".to_owned(), "ops".to_owned()];
        let alice = Subject::account("alice", &groups);
        let find = |subject: &Subject<'_>, name| {
            index.matching(&rules, subject, Resource::Repository, name)
        };
        assert_eq!(find(&alice, "team/app"), [0, 1, 2, 3, 6]);
        assert_eq!(find(&alice, "teamx"), [3, 6]);
        assert_eq!(find(&alice, "ci/alice"), [3, 7]);
        assert_eq!(find(&Subject::anonymous(), "team/app"), [0, 4]);
        let claims = serde_json::json!({});
        let workload = Subject::workload("oidc:ci:alice", &groups, &claims);
        assert_eq!(
            find(&workload, "team/app"),
            [0, 3, 6],
            "no authenticated, user or anonymous rules"
        );
        assert!(index
            .matching(&rules, &alice, Resource::Registry, "catalog")
            .is_empty());
    }
}
