//! Decision time of the policy evaluator at 10,000 rules for 1,000 users (issue item 7): criterion
//! timings for a literal, a glob, a regex hit and a miss, then p50 and p99 of single decisions;
//! once with rules filed per user and group, once with every rule applying to everyone.
//! Run with `cargo bench --bench policy`; the percentiles print only under `--bench`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use portcullis::policy::{Decision, Policy, Subject, DEFAULT_POLICY};
use portcullis::scope::Scope;

/// Accounts in the generated policy.
const USERS: usize = 1_000;
/// Groups; each user belongs to [`GROUPS_PER_USER`] of them.
const GROUPS: usize = 100;
const GROUPS_PER_USER: usize = 3;
/// Rules in the shipped default policy, which the generated one starts with.
const DEFAULT_RULES: usize = 3;
/// Single decisions timed per kind for the percentiles.
const SAMPLES: usize = 200_000;

const PULL: &str = r#""pull""#;
const PUSH: &str = r#""push""#;
const PULL_PUSH: &str = r#""pull", "push""#;
const ALL: &str = r#""*""#;

/// Each user's rules, `{u}` the user number and `{t}` a team: 3 literal, 4 glob, 2 regex.
const USER_RULES: [(&str, &str, &str); 9] = [
    ("proj{u}/app", PULL_PUSH, "allow"),
    ("shared/lib{u}", PULL_PUSH, "allow"),
    ("proj{u}/secret", PUSH, "deny"),
    ("proj{u}/*", ALL, "allow"),
    ("team{t}/svc{u}-*", PULL_PUSH, "allow"),
    ("mirror/{u}/**", PULL, "allow"),
    ("proj{u}/*-frozen", PUSH, "deny"),
    (r"re:ci{u}/(build|test)-[0-9]+", PULL_PUSH, "allow"),
    (r"re:rel{u}/v[0-9]+\.[0-9]+", PULL, "allow"),
];

/// Each group's rules, `{g}` the group number: 4 literal, 3 glob (one with `${group}`), 3 regex.
const GROUP_RULES: [(&str, &str, &str); 10] = [
    ("g{g}/tool0", PULL, "allow"),
    ("g{g}/tool1", PULL, "allow"),
    ("g{g}/tool2", PULL, "allow"),
    ("g{g}/tool3", PULL, "allow"),
    ("g{g}/team-*/**", PULL_PUSH, "allow"),
    ("${group}/shared/*", PULL, "allow"),
    ("g{g}/*/cache", ALL, "allow"),
    ("re:g{g}/[a-z]+-[0-9]{2}", PUSH, "allow"),
    ("re:g{g}/(alpha|beta)/.+", PULL_PUSH, "allow"),
    ("re:gx{g}/.*-v[0-9]+", PULL, "allow"),
];

fn push_rule(text: &mut String, subject: &str, name: &str, (actions, effect): (&str, &str)) {
    writeln!(
        text,
        "[[rule]]\nsubject = \"{subject}\"\nname = '{name}'\nactions = [{actions}]\neffect = \"{effect}\"\n"
    )
    .unwrap();
}

/// Who the generated rules are for.
#[derive(Clone, Copy)]
enum Layout {
    /// Each user's rules name that user, each group's rules that group: the index narrows a
    /// decision to about 40 rules.
    PerSubject,
    /// The same rules, every one for `authenticated`: a decision faces all 10,000.
    Shared,
}

impl Layout {
    const ALL: [Layout; 2] = [Layout::PerSubject, Layout::Shared];

    fn label(self) -> &'static str {
        match self {
            Layout::PerSubject => "per-subject",
            Layout::Shared => "shared",
        }
    }

    fn subject(self, own: String) -> String {
        match self {
            Layout::PerSubject => own,
            Layout::Shared => "authenticated".to_owned(),
        }
    }
}

/// The policy file: the shipped default rules, then 9,000 user rules and 1,000 group rules.
fn policy_text(layout: Layout) -> String {
    let mut text = format!("{DEFAULT_POLICY}\n");
    for u in 0..USERS {
        let subject = layout.subject(format!("user:u{u}"));
        for (name, actions, effect) in USER_RULES {
            let name = name
                .replace("{u}", &u.to_string())
                .replace("{t}", &(u % GROUPS).to_string());
            push_rule(&mut text, &subject, &name, (actions, effect));
        }
    }
    for g in 0..GROUPS {
        let subject = layout.subject(format!("group:g{g}"));
        for (name, actions, effect) in GROUP_RULES {
            let name = name.replace("{g}", &g.to_string());
            push_rule(&mut text, &subject, &name, (actions, effect));
        }
    }
    text
}

fn groups_of(user: usize) -> Vec<String> {
    (0..GROUPS_PER_USER)
        .map(|k| format!("g{}", (user * (2 * k + 1) + k * 37) % GROUPS))
        .collect()
}

/// One decision kind: which scope user `u` asks for, and whether it must be granted.
struct Kind {
    label: &'static str,
    scope: fn(usize) -> String,
    granted: bool,
}

const KINDS: [Kind; 4] = [
    Kind {
        label: "literal",
        scope: |u| format!("repository:shared/lib{u}:pull,push"),
        granted: true,
    },
    Kind {
        label: "glob",
        scope: |u| format!("repository:team{}/svc{u}-api:pull,push", u % GROUPS),
        granted: true,
    },
    Kind {
        label: "regex",
        scope: |u| format!("repository:ci{u}/build-123:pull"),
        granted: true,
    },
    Kind {
        label: "miss",
        scope: |_| "repository:nobody/app:pull".to_owned(),
        granted: false,
    },
];

struct Setup {
    policy: Policy,
    names: Vec<String>,
    groups: Vec<Vec<String>>,
    /// Per kind, the scope each user asks for.
    scopes: Vec<Vec<Scope>>,
}

impl Setup {
    fn new(layout: Layout) -> Setup {
        let text = policy_text(layout);
        let started = Instant::now();
        let policy = Policy::from_toml_str(&text).expect("generated policy parses");
        let compile = started.elapsed();
        let generated = USERS * USER_RULES.len() + GROUPS * GROUP_RULES.len();
        assert_eq!(policy.rules().len(), generated + DEFAULT_RULES);
        println!(
            "{}: {} rules, {USERS} users, {GROUPS} groups; parse + compile {compile:.1?}",
            layout.label(),
            policy.rules().len()
        );
        let scopes = KINDS
            .iter()
            .map(|kind| {
                (0..USERS)
                    .map(|u| Scope::parse(&(kind.scope)(u)).unwrap())
                    .collect()
            })
            .collect();
        let setup = Setup {
            policy,
            names: (0..USERS).map(|u| format!("u{u}")).collect(),
            groups: (0..USERS).map(groups_of).collect(),
            scopes,
        };
        for (kind, scopes) in KINDS.iter().zip(&setup.scopes) {
            for (u, scope) in scopes.iter().enumerate() {
                let granted = setup.decide(u, scope).granted().is_some();
                assert_eq!(granted, kind.granted, "{} {scope}", kind.label);
            }
        }
        setup
    }

    fn decide(&self, user: usize, scope: &Scope) -> Decision {
        let subject = Subject::account(&self.names[user], &self.groups[user]);
        self.policy.decide(&subject, scope)
    }
}

fn decision_time(c: &mut Criterion) {
    for layout in Layout::ALL {
        let setup = Setup::new(layout);
        let mut group = c.benchmark_group(format!("decide_10k_rules_{}", layout.label()));
        for (kind, scopes) in KINDS.iter().zip(&setup.scopes) {
            let mut u = 0;
            group.bench_function(kind.label, |b| {
                b.iter(|| {
                    u = (u + 1) % USERS;
                    setup.decide(u, black_box(&scopes[u]))
                })
            });
        }
        group.finish();
    }
}

/// p50 and p99 of single decisions, each timed with `Instant`, users taken in a scattered order.
fn print_percentiles() {
    for layout in Layout::ALL {
        let setup = Setup::new(layout);
        for (kind, scopes) in KINDS.iter().zip(&setup.scopes) {
            let mut times: Vec<Duration> = (0..SAMPLES)
                .map(|i| {
                    let u = (i * 7919) % USERS;
                    let started = Instant::now();
                    black_box(setup.decide(u, black_box(&scopes[u])));
                    started.elapsed()
                })
                .collect();
            times.sort_unstable();
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "  {:<8} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  ({SAMPLES} decisions)",
                kind.label,
                at(0.50),
                at(0.99),
                times[times.len() - 1]
            );
        }
    }
}

criterion_group!(benches, decision_time);

fn main() {
    if std::env::args().any(|arg| arg == "--bench") {
        print_percentiles();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
