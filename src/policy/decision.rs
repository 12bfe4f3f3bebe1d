//! The outcome of one decision: the granted scope and, per requested action, the verdict and the
//! rules that decided it, for `policy explain` and the audit log. It reports; it does not evaluate.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use super::rule::Rule;
use crate::scope::Scope;

/// A rule of a policy with its number: its position counted from 1 (file rules first, in file order,
/// then rules added with [`super::Policy::extend`]).
#[derive(Debug, Clone)]
pub struct RuleRef {
    number: usize,
    rule: Arc<Rule>,
}

impl RuleRef {
    pub(super) fn new(number: usize, rule: Arc<Rule>) -> RuleRef {
        RuleRef { number, rule }
    }

    /// The rule's number, from 1.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({})", self.number, self.rule)
    }
}

/// What became of one requested action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Granted; the verdict's rules are the allow rules that grant it.
    Granted,
    /// Taken away; the verdict's rules are the deny rules that remove it.
    Denied,
    /// No rule allows it. In first-match mode the verdict names the rule that decided the scope.
    NotAllowed,
    /// The resource type has no such action (or no rule can name the type), so nothing grants it.
    NotAnAction,
}

/// One requested action, its outcome and the rules that decided it.
#[derive(Debug, Clone)]
pub struct Verdict {
    action: String,
    outcome: Outcome,
    rules: Vec<RuleRef>,
}

impl Verdict {
    pub(super) fn new(action: &str, outcome: Outcome, rules: Vec<RuleRef>) -> Verdict {
        Verdict {
            action: action.to_owned(),
            outcome,
            rules,
        }
    }

    /// The action as requested.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// What became of it.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The rules that decided it, by number.
    pub fn rules(&self) -> &[RuleRef] {
        &self.rules
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.action)?;
        let list = |f: &mut fmt::Formatter<'_>| {
            for (i, rule) in self.rules.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{rule}")?;
            }
            Ok(())
        };
        match (self.outcome, self.rules.first()) {
            (Outcome::Granted, _) => {
                f.write_str("granted by ")?;
                list(f)
            }
            (Outcome::Denied, _) => {
                f.write_str("denied by ")?;
                list(f)
            }
            (Outcome::NotAllowed, None) => f.write_str("not granted: no rule allows it"),
            (Outcome::NotAllowed, Some(first)) => write!(
                f,
                "not granted: {first} matched first, so decides the scope, and does not allow it"
            ),
            (Outcome::NotAnAction, _) => {
                f.write_str("not granted: not an action of this resource type")
            }
        }
    }
}

/// The decision on one requested scope. Displays as the explanation `policy explain` prints: the
/// request and the grant, then one line per requested action.
#[derive(Debug, Clone)]
pub struct Decision {
    requested: Scope,
    granted: Option<Scope>,
    verdicts: Vec<Verdict>,
}

impl Decision {
    /// Builds the decision from one verdict per requested action.
    pub(super) fn new(requested: &Scope, verdicts: Vec<Verdict>) -> Decision {
        let actions: BTreeSet<String> = verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Granted)
            .map(|v| v.action.clone())
            .collect();
        let granted = (!actions.is_empty()).then(|| requested.with_actions(actions));
        Decision {
            requested: requested.clone(),
            granted,
            verdicts,
        }
    }

    /// The scope as requested.
    pub fn requested(&self) -> &Scope {
        &self.requested
    }

    /// The requested actions that were granted, as a scope for the token; `None` when none was.
    pub fn granted(&self) -> Option<&Scope> {
        self.granted.as_ref()
    }

    /// The granted scope, consuming the decision.
    pub fn into_granted(self) -> Option<Scope> {
        self.granted
    }

    /// One verdict per requested action, in the scope's (sorted) action order.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// Every rule that decided some action, ascending by number, each once: what an audit event
    /// names as the deciding rules.
    pub fn rules(&self) -> Vec<&RuleRef> {
        let mut rules: Vec<&RuleRef> = self.verdicts.iter().flat_map(|v| &v.rules).collect();
        rules.sort_by_key(|r| r.number);
        rules.dedup_by_key(|r| r.number);
        rules
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.requested)?;
        match &self.granted {
            Some(granted) => write!(f, "granted {granted}")?,
            None => f.write_str("nothing granted")?,
        }
        for verdict in &self.verdicts {
            write!(f, "\n  {verdict}")?;
        }
        Ok(())
    }
}
