//! One docker_auth ACL entry into Portcullis rules: who they are for (subject patterns, or the
//! imported users an account or label condition resolves to), which scope types, which names
//! (globs and regular expressions as Portcullis patterns) and which actions; or why it cannot be.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use regex_syntax::ast::{parse::Parser as AstParser, Ast};

use super::config::MatchConditions;
use super::go::{
    check_go_regex, chunks, class_takes_slash, glob_regex, go_matches, go_pattern, parse_glob,
    quote_meta, substitute, GlobSyntax, GlobToken, GoPattern, Matcher, NotUnderstood,
};
use crate::import::check_user_name;
use crate::policy::{Resource, Rule, RuleText, SubjectPattern, ACCOUNT_PLACEHOLDER, REGEX_PREFIX};
use crate::scope::ALL_ACTIONS;

/// Stands for the scope's type.
const TYPE_PLACEHOLDER: &str = "${type}";
/// Starts `${labels:L}`, which stands for each value of the user's label L.
const LABELS_PLACEHOLDER: &str = "${labels:";
/// Starts every placeholder.
const PLACEHOLDER_OPEN: &str = "${";
/// `${FIELD:N}`, group N of the FIELD regex applied to the request's FIELD; docker_auth's own
/// expression (`captureGroupRegex`), lazy quantifier included.
static CAPTURE_PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{(.+?):(\d+)\}").expect("a valid constant expression"));

/// The one `registry` resource a token can be asked for.
const CATALOG: &str = "catalog";
/// The Portcullis pattern for a `name` that is absent: every name.
const EVERY_NAME: &str = "**";
/// Account regexes every account name matches (the empty one too where they match it); they
/// become `authenticated` or `any` instead of being resolved against the imported users.
const EVERY_ACCOUNT_REGEXES: [&str; 9] =
    [".*", ".+", "^.*$", "^.+$", "^.*", "^.+", ".*$", ".+$", "."];
/// Most name spellings one user's `${labels:L}` placeholders may produce for one entry.
pub(super) const MAX_LABEL_COMBINATIONS: usize = 64;
/// Someone docker_auth would let in who can also log in to Portcullis: an imported user, or the
/// anonymous caller (account `""`) when docker_auth admitted anonymous callers.
pub(super) struct Principal<'a> {
    pub(super) account: &'a str,
    pub(super) labels: &'a BTreeMap<String, Vec<String>>,
}

impl Principal<'_> {
    fn subject(&self) -> SubjectPattern {
        if self.account.is_empty() {
            SubjectPattern::Anonymous
        } else {
            SubjectPattern::User(self.account.to_owned())
        }
    }
}

/// Why an ACL entry was left out.
pub(super) enum Unmapped {
    /// It decided scopes that rules cannot single out; they now fall to later rules.
    Inexpressible(String),
    /// It decided no scope for anyone who can log in to Portcullis: leaving it out changes nothing.
    Inert(String),
}

impl Unmapped {
    pub(super) fn into_reason(self) -> String {
        match self {
            Unmapped::Inexpressible(why) => {
                format!("{why}; the scopes it decided now fall to the entries after it")
            }
            Unmapped::Inert(why) => format!("{why}; leaving it out changes no decision"),
        }
    }
}

impl From<NotUnderstood> for Unmapped {
    fn from(NotUnderstood { pattern, why }: NotUnderstood) -> Unmapped {
        Unmapped::Inexpressible(format!(
            "the regular expression {pattern:?} is not understood here ({why})"
        ))
    }
}

/// The rules for one ACL entry, in order, and notes on what of it was lost or resolved.
pub(super) fn translate(
    conditions: &MatchConditions,
    actions: Option<&[String]>,
    principals: &[Principal<'_>],
    anonymous: bool,
) -> Result<(Vec<Rule>, Vec<String>), Unmapped> {
    if let Some(ip) = &conditions.ip {
        return Err(Unmapped::Inexpressible(format!(
            "matches on the client address (ip {ip:?}), which rules cannot express"
        )));
    }
    if let Some(service) = &conditions.service {
        return Err(Unmapped::Inexpressible(format!(
            "matches on the registry's service name (service {service:?}), which rules cannot \
             express"
        )));
    }
    check_placeholders(conditions)?;

    let resources = match &conditions.kind {
        None => Resource::ALL.to_vec(),
        Some(kind) => {
            let matcher = Matcher::new(kind)?;
            let matching: Vec<Resource> = Resource::ALL
                .into_iter()
                .filter(|r| matcher.is_match(r.as_str()))
                .collect();
            if matching.is_empty() {
                return Err(Unmapped::Inert(format!(
                    "type {kind:?} matches neither repository nor registry, and Portcullis grants \
                     no other scope type"
                )));
            }
            matching
        }
    };
    let mut notes = Vec::new();
    let grants = Grants::new(actions, &resources, &mut notes);
    let targets = targets(conditions, principals, anonymous, &mut notes)?;

    let mut rules = Vec::new();
    for (subject, name) in &targets {
        let subject = subject.to_string();
        for &resource in &resources {
            let name = name
                .as_deref()
                .map(|n| substitute(n, &[(TYPE_PLACEHOLDER, &quote_meta(resource.as_str()))]));
            let pattern = match &name {
                None => EVERY_NAME.to_owned(),
                Some(name) => {
                    if resource == Resource::Registry && !may_match_catalog(name)? {
                        continue;
                    }
                    portcullis_name(name)?
                }
            };
            let (effect, actions) = grants.for_resource(resource);
            let rule = Rule::parse(&RuleText {
                subject: &subject,
                resource: resource.as_str(),
                name: &pattern,
                actions: &actions,
                effect,
            })
            .map_err(|e| {
                Unmapped::Inexpressible(format!("no Portcullis rule can express it ({e})"))
            })?;
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        return Err(Unmapped::Inert(
            "it matches no scope Portcullis grants (its names cannot be catalog)".to_owned(),
        ));
    }
    Ok((rules, notes))
}

/// Refuses the placeholders rules cannot express: any in `account` and `type`, anything but
/// `${account}` in label patterns, and `${name}`, `${service}` or unknown ones in `name`.
fn check_placeholders(conditions: &MatchConditions) -> Result<(), Unmapped> {
    let refuse = |placeholder: &str, field: &str| {
        Err(Unmapped::Inexpressible(format!(
            "{placeholder} in {field} is not something rules can express"
        )))
    };
    for (field, value) in [("account", &conditions.account), ("type", &conditions.kind)] {
        if let Some(placeholder) = value.as_deref().and_then(|v| placeholders(v).next()) {
            return refuse(placeholder, field);
        }
    }
    for pattern in conditions.labels.values() {
        if let Some(placeholder) = placeholders(pattern).find(|&p| p != ACCOUNT_PLACEHOLDER) {
            return refuse(placeholder, "labels");
        }
    }
    if let Some(name) = &conditions.name {
        let known = |p: &str| {
            p == ACCOUNT_PLACEHOLDER
                || p == TYPE_PLACEHOLDER
                || p.starts_with(LABELS_PLACEHOLDER)
                || CAPTURE_PLACEHOLDER.is_match(p)
        };
        if let Some(placeholder) = placeholders(name).find(|&p| !known(p)) {
            return refuse(placeholder, "name");
        }
    }
    Ok(())
}

/// Every `${...}` in `text`.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices(PLACEHOLDER_OPEN).filter_map(|(at, _)| {
        let end = text[at..].find('}')?;
        Some(&text[at..=at + end])
    })
}

/// The actions an entry grants, per resource type.
struct Grants {
    /// `["*"]`: every requested action.
    every: bool,
    /// Otherwise the listed actions, `*` left out.
    listed: Vec<String>,
}

impl Grants {
    fn new(actions: Option<&[String]>, resources: &[Resource], notes: &mut Vec<String>) -> Grants {
        let Some(actions) = actions else {
            notes.push(
                "has no actions, so docker_auth fails the whole request when it matches; imported \
                 as a deny of the scope"
                    .to_owned(),
            );
            return Grants {
                every: false,
                listed: Vec::new(),
            };
        };
        if actions == [ALL_ACTIONS] {
            return Grants {
                every: true,
                listed: Vec::new(),
            };
        }
        if actions.iter().any(|a| a == ALL_ACTIONS) {
            notes.push(
                "its \"*\" beside other actions is not kept: docker_auth grants \"*\" there only to \
                 a request for \"*\" itself, which rules cannot express, so such requests are now \
                 refused"
                    .to_owned(),
            );
        }
        let mut listed: Vec<String> = actions
            .iter()
            .filter(|a| *a != ALL_ACTIONS)
            .cloned()
            .collect();
        listed.sort();
        listed.dedup();
        let unknown: Vec<&str> = listed
            .iter()
            .filter(|a| resources.iter().all(|r| r.action(a).is_none()))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            notes.push(format!(
                "actions {unknown:?} are not kept: no scope type it matches has them"
            ));
        }
        Grants {
            every: false,
            listed,
        }
    }

    /// The effect and actions of the rule for `resource`: a deny of `*` when the entry grants
    /// nothing there, as it still decides the scope.
    fn for_resource(&self, resource: Resource) -> (&'static str, Vec<&str>) {
        if self.every {
            return ("allow", vec![ALL_ACTIONS]);
        }
        let valid: Vec<&str> = self
            .listed
            .iter()
            .map(String::as_str)
            .filter(|a| resource.action(a).is_some())
            .collect();
        if valid.is_empty() {
            ("deny", vec![ALL_ACTIONS])
        } else {
            ("allow", valid)
        }
    }
}

/// Who the entry's rules are for, each with the entry's `name` with that subject's placeholders
/// resolved (`None`: no `name`, every name). Kept as patterns where rules can hold them; resolved
/// against the imported users otherwise (noted).
fn targets(
    conditions: &MatchConditions,
    principals: &[Principal<'_>],
    anonymous: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<(SubjectPattern, Option<String>)>, Unmapped> {
    let name = conditions.name.as_deref();
    let per_principal =
        name.is_some_and(|n| n.contains(LABELS_PLACEHOLDER) || CAPTURE_PLACEHOLDER.is_match(n));
    let without_account = |n: &str| substitute(n, &[(ACCOUNT_PLACEHOLDER, "")]);
    if conditions.labels.is_empty() && !per_principal {
        let account = conditions.account.as_deref();
        if account.is_none_or(covers_every_account) {
            let with_anonymous = anonymous && account.is_none_or(|a| go_matches(a, ""));
            let holds_account = name.is_some_and(|n| n.contains(ACCOUNT_PLACEHOLDER));
            let name = name.map(str::to_owned);
            return Ok(match (with_anonymous, holds_account) {
                (false, _) => vec![(SubjectPattern::Authenticated, name)],
                (true, false) => vec![(SubjectPattern::Any, name)],
                (true, true) => vec![
                    (SubjectPattern::Authenticated, name.clone()),
                    (
                        SubjectPattern::Anonymous,
                        name.as_deref().map(without_account),
                    ),
                ],
            });
        }
        if let Some(literal) = account.filter(|a| is_literal_glob(a)) {
            if literal.is_empty() {
                if !anonymous {
                    return Err(Unmapped::Inert(
                        "account \"\" (anonymous) never gets this far: users has no \"\" entry, \
                         so docker_auth refuses anonymous callers"
                            .to_owned(),
                    ));
                }
                return Ok(vec![(SubjectPattern::Anonymous, name.map(without_account))]);
            }
            check_user_name(literal).map_err(|_| {
                Unmapped::Inert(format!(
                    "account {literal:?} cannot be a Portcullis user name, so no Portcullis \
                     caller matches it"
                ))
            })?;
            return Ok(vec![(
                SubjectPattern::User(literal.to_owned()),
                name.map(str::to_owned),
            )]);
        }
    }

    let account = conditions
        .account
        .as_deref()
        .map(Matcher::new)
        .transpose()?;
    let mut targets = Vec::new();
    let mut resolved = Vec::new();
    for principal in principals {
        if account
            .as_ref()
            .is_some_and(|m| !m.is_match(principal.account))
            || !labels_match(&conditions.labels, principal)?
        {
            continue;
        }
        let names = match name {
            None => vec![None],
            Some(name) => principal_names(name, account.as_ref(), principal)?
                .into_iter()
                .map(Some)
                .collect(),
        };
        if names.is_empty() {
            continue;
        }
        resolved.push(if principal.account.is_empty() {
            "anonymous".to_owned()
        } else {
            format!("user:{}", principal.account)
        });
        targets.extend(names.into_iter().map(|n| (principal.subject(), n)));
    }
    if targets.is_empty() {
        return Err(Unmapped::Inert(
            "it matches none of the imported accounts".to_owned(),
        ));
    }
    notes.push(format!(
        "its account and label conditions are not kept: they were resolved against the imported \
         accounts into rules for {}, so accounts added later get nothing from it",
        resolved.join(", ")
    ));
    Ok(targets)
}

/// Whether every account name matches `pattern` (the empty one aside, which is checked apart).
fn covers_every_account(pattern: &str) -> bool {
    match go_pattern(pattern) {
        GoPattern::Glob(glob) => !glob.is_empty() && glob.chars().all(|c| c == '*'),
        GoPattern::Regex(body) => EVERY_ACCOUNT_REGEXES.contains(&body),
    }
}

/// A glob without wildcards, classes or escapes: it matches only itself.
fn is_literal_glob(pattern: &str) -> bool {
    matches!(go_pattern(pattern), GoPattern::Glob(_)) && !pattern.contains(['*', '?', '[', '\\'])
}

/// docker_auth's `matchLabels` for one principal.
fn labels_match(
    conditions: &BTreeMap<String, String>,
    principal: &Principal<'_>,
) -> Result<bool, Unmapped> {
    for (label, pattern) in conditions {
        let pattern = substitute(
            pattern,
            &[(ACCOUNT_PLACEHOLDER, &quote_meta(principal.account))],
        );
        let matcher = Matcher::new(&pattern)?;
        let mut values = principal.labels.get(label).into_iter().flatten();
        if !values.any(|v| matcher.is_match(v)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The spellings of `name` for one principal, as docker_auth substitutes them (`${type}` left for
/// later); none when a placeholder stays unresolved, as the entry then never matches for it.
fn principal_names(
    name: &str,
    account: Option<&Matcher>,
    principal: &Principal<'_>,
) -> Result<Vec<String>, Unmapped> {
    let mut pairs = vec![(
        ACCOUNT_PLACEHOLDER.to_owned(),
        quote_meta(principal.account),
    )];
    for captures in CAPTURE_PLACEHOLDER.captures_iter(name) {
        let whole = &captures[0];
        if !matches!(&captures[1], "account" | "Account") {
            return Err(Unmapped::Inexpressible(format!(
                "{whole} in name depends on the request in a way rules cannot express"
            )));
        }
        let group = captures[2].parse().unwrap_or(usize::MAX);
        match account.and_then(|m| m.capture(principal.account, group)) {
            Some(text) => pairs.push((whole.to_owned(), text)),
            None => return Ok(Vec::new()),
        }
    }
    let mut spellings = vec![pairs];
    let mut labels: Vec<&str> = placeholders(name)
        .filter(|p| p.starts_with(LABELS_PLACEHOLDER))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    for placeholder in labels {
        let label = &placeholder[LABELS_PLACEHOLDER.len()..placeholder.len() - 1];
        let values = principal.labels.get(label).map_or(&[][..], Vec::as_slice);
        if spellings.len() * values.len() > MAX_LABEL_COMBINATIONS {
            return Err(Unmapped::Inexpressible(format!(
                "the labels in its name give user {:?} more than {MAX_LABEL_COMBINATIONS} \
                 combinations",
                principal.account
            )));
        }
        spellings = spellings
            .iter()
            .flat_map(|pairs| {
                values.iter().map(move |value| {
                    let mut pairs = pairs.clone();
                    pairs.push((placeholder.to_owned(), value.clone()));
                    pairs
                })
            })
            .collect();
    }
    let mut names: Vec<String> = spellings
        .iter()
        .map(|pairs| {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            substitute(name, &pairs)
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether a name pattern (placeholders other than `${account}` resolved) may match `catalog`,
/// the one registry resource; a glob needing a `/` cannot, as account names hold none.
fn may_match_catalog(name: &str) -> Result<bool, Unmapped> {
    if !name.contains(ACCOUNT_PLACEHOLDER) {
        return Ok(Matcher::new(name)?.is_match(CATALOG));
    }
    Ok(match go_pattern(name) {
        GoPattern::Regex(_) => true,
        GoPattern::Glob(glob) => {
            parse_glob(glob, true).map_or(true, |tokens| !tokens.contains(&GlobToken::Char('/')))
        }
    })
}

/// The Portcullis glob of a glob made only of name characters, `*` and `${account}`.
fn portcullis_glob(tokens: &[GlobToken]) -> Option<String> {
    let mut out = String::new();
    for token in tokens {
        match token {
            GlobToken::Char(c)
                if c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '.' | '_' | '-' | '/' | ':') =>
            {
                out.push(*c)
            }
            GlobToken::Star => out.push('*'),
            GlobToken::Account => out.push_str(ACCOUNT_PLACEHOLDER),
            _ => return None,
        }
    }
    Some(out)
}

/// The Portcullis name pattern matching what a docker_auth name pattern matches (placeholders
/// other than `${account}` already resolved).
fn portcullis_name(name: &str) -> Result<String, Unmapped> {
    match go_pattern(name) {
        GoPattern::Regex(body) => {
            check_go_regex(name, body)?;
            Ok(portcullis_regex(body))
        }
        GoPattern::Glob(glob) => {
            let tokens = parse_glob(glob, true).map_err(|GlobSyntax| {
                Unmapped::Inert(format!(
                    "name {name:?} is not a valid glob, so docker_auth never matched it"
                ))
            })?;
            let chunks = chunks(&tokens);
            let committed = chunks.iter().take(chunks.len().saturating_sub(1));
            if committed
                .filter(|c| c.star)
                .flat_map(|c| &c.elements)
                .any(class_takes_slash)
            {
                return Err(Unmapped::Inexpressible(format!(
                    "name {name:?} has a class that can match '/' between two '*'; Go matches it \
                     at its first fit only, which no rule can reproduce"
                )));
            }
            Ok(portcullis_glob(&tokens)
                .unwrap_or_else(|| format!("{REGEX_PREFIX}{}", glob_regex(&tokens))))
        }
    }
}

/// An anchored `re:` pattern matching the names in which Go finds `body`: a leading `^` and a
/// trailing `$` are dropped, and `.*` put where they were not. A top-level `|` is grouped first.
fn portcullis_regex(body: &str) -> String {
    let alternation = !body.contains(ACCOUNT_PLACEHOLDER)
        && matches!(AstParser::new().parse(body), Ok(Ast::Alternation(_)));
    if alternation {
        return format!("{REGEX_PREFIX}.*(?:{body}).*");
    }
    let (start, body) = match body.strip_prefix('^') {
        Some(rest) => ("", rest),
        None => (".*", body),
    };
    let (body, end) = match strip_end_anchor(body) {
        Some(rest) => (rest, ""),
        None => (body, ".*"),
    };
    format!("{REGEX_PREFIX}{start}{body}{end}")
}

/// `body` without a final unescaped `$`.
fn strip_end_anchor(body: &str) -> Option<&str> {
    let rest = body.strip_suffix('$')?;
    let backslashes = rest.chars().rev().take_while(|&c| c == '\\').count();
    (backslashes % 2 == 0).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Subject;

    /// Each docker_auth name pattern, its Portcullis pattern, and names both must agree on.
    #[test]
    fn name_patterns_translate_to_portcullis_patterns() {
        let cases: &[(&str, &str)] = &[
            ("library/*", "library/*"),
            ("a**b", "a*b"),
            ("${account}/*", "${account}/*"),
            ("pub?ic", "re:pub[^/]ic"),
            ("[a-c]x", r"re:[\x{61}-\x{63}]x"),
            ("[^/]x", r"re:[^\x{2f}]x"),
            ("a\\*b", r"re:a\*b"),
            ("Upper/*", "re:Upper/[^/]*"),
            ("${account}-?", "re:${account}\\-[^/]"),
            ("/^team\\//", r"re:team\/.*"),
            ("/^team$/", "re:team"),
            ("/tmp/", "re:.*tmp.*"),
            ("/a|^b$/", "re:.*(?:a|^b$).*"),
            ("/^(a|b)\\/x$/", r"re:(a|b)\/x"),
            ("/^${account}-.*$/", "re:${account}-.*"),
            ("/${account}/", "re:.*${account}.*"),
            ("/\\$/", r"re:.*\$.*"),
        ];
        let names = [
            "library/alpine",
            "library/a/b",
            "ab",
            "axyzb",
            "a/b",
            "pubxic",
            "pub/ic",
            "ax",
            "bx",
            "/x",
            "a*b",
            "team/app",
            "team",
            "teams",
            "xtmpx",
            "a",
            "b",
            "xb",
            "a/x",
            "b/x",
            "alice-x",
            "alice-",
            "alice",
            "x/alice/y",
            "$",
            "Upper/x",
        ];
        let alice = Subject::account("alice", &[]);
        for &(docker_auth, expected) in cases {
            let translated =
                portcullis_name(docker_auth).unwrap_or_else(|u| panic!("{}", u.into_reason()));
            assert_eq!(translated, expected, "{docker_auth:?}");
            let pattern = crate::policy::NamePattern::parse(&translated).unwrap();
            let substituted = substitute(docker_auth, &[(ACCOUNT_PLACEHOLDER, "alice")]);
            for name in names {
                assert_eq!(
                    pattern.matches(name, &alice),
                    go_matches(&substituted, name),
                    "{docker_auth:?} as {translated:?} on {name:?}"
                );
            }
        }
        assert!(matches!(portcullis_name("a["), Err(Unmapped::Inert(_))));
        for inexpressible in ["a*[^x]*b", "*[^x]*b", "/a**/", "/x{1001}/", r"/\Q.\E/"] {
            assert!(
                matches!(
                    portcullis_name(inexpressible),
                    Err(Unmapped::Inexpressible(_))
                ),
                "{inexpressible}"
            );
        }
    }

    #[test]
    fn substitution_quotes_like_docker_auth() {
        assert_eq!(quote_meta("a.b+c*d"), r"a\.b\+c\*d");
        assert_eq!(
            substitute(
                "${account}/${type}/${account}",
                &[(ACCOUNT_PLACEHOLDER, "x"), (TYPE_PLACEHOLDER, "y")]
            ),
            "x/y/x"
        );
        let placeholders: Vec<&str> = placeholders("a${b}c${labels:x}${open").collect();
        assert_eq!(placeholders, ["${b}", "${labels:x}"]);
    }
}
