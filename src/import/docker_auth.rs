//! cesanta/docker_auth configuration files: the static `users` (bcrypt) become users and the static
//! `acl` becomes first-match rules deciding every repository and catalog scope as docker_auth does.
//! Every other section, and every entry or part of one that rules cannot express, is reported.
//!
//! # docker_auth's semantics, as its code has them
//!
//! - Each requested scope is decided on its own (`Authorize` in `auth_server/server/server.go`):
//!   the first ACL entry whose `match` holds decides it (`aclAuthorizer.Authorize` in
//!   `auth_server/authz/acl.go`), granting the requested actions the entry lists (all of them when
//!   the list is exactly `["*"]`), so `[]` denies and later entries are never consulted for that
//!   scope. No matching entry grants nothing (other authorization backends aside).
//! - `match` holds `account`, `type`, `name`, `service`, `ip` and `labels`; an absent key matches
//!   anything. A value `/RE/` (longer than two characters) is a Go regular expression searched
//!   anywhere in the value, unanchored; any other value is a Go `path.Match` glob of the whole
//!   value, where `*` and `?` never match `/` (so `a/*` matches `a/b` but not `a/b/c`), `[...]` is
//!   a character class (which can match `/`) and `\` escapes; a malformed glob matches nothing
//!   (`matchString`). `path.Match` takes each piece after a `*` at its first fit and never tries
//!   another, which only matters when a class that can match `/` sits between two `*`.
//! - Before matching, `${account}`, `${type}`, `${name}` and `${service}` are replaced by the
//!   request's values with regex metacharacters escaped (so they match literally), `${account:N}`
//!   by group N of the `account` regex applied to the account, and `${labels:L}` by each value of
//!   the user's label L in turn (`MatchConditions.Matches`, `matchStringWithLabelPermutations`).
//! - `labels: {L: PATTERN}` holds when some value of the user's label L matches (`matchLabels`).
//! - The static users (`auth_server/authn/static_auth.go`) are checked with Go's bcrypt; an entry
//!   without a password accepts any password, and the `""` entry lets anonymous callers in, whose
//!   account is then the empty string.
//!
//! # The translation
//!
//! Each entry becomes rules, in entry order, that match exactly what it matched: one per scope type
//! it can match (`repository`, and `registry`, whose one resource is `catalog`), each an allow of
//! the listed actions valid for that type or, when none is, a deny of `*`. The account condition
//! becomes the subject: `user:NAME` for a literal name, `anonymous` for `""`, `authenticated` or
//! `any` for patterns every account name matches; any other account pattern, a `labels` condition,
//! and `${account:N}` or `${labels:L}` in the name are resolved against the imported users into
//! `user:` rules, as labels and the accounts of later users are unknown to rules. Globs become
//! Portcullis globs (`*` stays within a segment) or, with `?`, classes or escapes, `re:` patterns;
//! regexes become anchored `re:` patterns that search like Go's.
//!
//! Entries on `ip` or `service`, with `${name}` or `${service}`, with such a class between two `*`,
//! or with a regex the regex crate reads otherwise than Go (or not at all) cannot be expressed and
//! are left out; as the first match decides, the scopes they decided then fall to later rules, and
//! the report says so. An `actions` list with `*` beside other actions grants `*` only to a request for
//! `*` in docker_auth; rules cannot say that, so such requests are refused (reported). Requested
//! actions no rule type has are never granted, where docker_auth's `["*"]` echoes them.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use regex_syntax::ast::{parse::Parser as AstParser, Ast, RepetitionKind, RepetitionRange};
use serde::Deserialize;

use super::{check_bcrypt, check_user_name, Import, ImportError, ImportedUser, Skipped};
use crate::policy::{
    Evaluation, Resource, Rule, RuleText, SubjectPattern, ACCOUNT_PLACEHOLDER, REGEX_PREFIX,
};
use crate::scope::ALL_ACTIONS;

/// Sections whose settings Portcullis has its own form of.
const OWN_SETTINGS: [&str; 2] = ["server", "token"];
/// docker_auth's authentication backends other than the static `users`.
const AUTHN_BACKENDS: [&str; 9] = [
    "google_auth",
    "github_auth",
    "oidc_auth",
    "gitlab_auth",
    "ldap_auth",
    "mongo_auth",
    "xorm_auth",
    "ext_auth",
    "plugin_authn",
];
/// docker_auth's authorization backends other than the static `acl`.
const AUTHZ_BACKENDS: [&str; 5] = [
    "acl_mongo",
    "acl_xorm",
    "ext_authz",
    "plugin_authz",
    "casbin_authz",
];
/// The section of static users.
const USERS: &str = "users";
/// The section of the static ACL.
const ACL: &str = "acl";

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
pub const MAX_LABEL_COMBINATIONS: usize = 64;
/// Go's `regexp.QuoteMeta` escapes these; docker_auth escapes the values it substitutes with it.
const GO_REGEX_SPECIALS: &str = r"\.+*?()|[]{}^$";
/// The largest repetition count Go's `regexp` accepts (`syntax.maxRepeat`).
const GO_MAX_REPEAT: u32 = 1000;
/// A regex class that matches no character (a glob class of reversed ranges only).
const NO_CHARACTER: &str = r"[^\x{0}-\x{10FFFF}]";

/// The parts of a docker_auth file this importer reads; the rest is listed by section name.
#[derive(Deserialize)]
struct Config {
    users: Option<BTreeMap<String, Option<UserEntry>>>,
    acl: Option<Vec<AclEntry>>,
}

/// One static user (`authn.Requirements`).
#[derive(Deserialize)]
struct UserEntry {
    password: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, Vec<String>>,
}

/// One ACL entry (`authz.ACLEntry`).
#[derive(Deserialize)]
struct AclEntry {
    #[serde(rename = "match")]
    conditions: Option<MatchConditions>,
    actions: Option<Vec<String>>,
    comment: Option<String>,
}

/// `authz.MatchConditions`.
#[derive(Deserialize)]
struct MatchConditions {
    account: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    ip: Option<String>,
    service: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Someone docker_auth would let in who can also log in to Portcullis: an imported user, or the
/// anonymous caller (account `""`) when docker_auth admitted anonymous callers.
struct Principal<'a> {
    account: &'a str,
    labels: &'a BTreeMap<String, Vec<String>>,
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
enum Unmapped {
    /// It decided scopes that rules cannot single out; they now fall to later rules.
    Inexpressible(String),
    /// It decided no scope for anyone who can log in to Portcullis: leaving it out changes nothing.
    Inert(String),
}

impl Unmapped {
    fn into_reason(self) -> String {
        match self {
            Unmapped::Inexpressible(why) => {
                format!("{why}; the scopes it decided now fall to the entries after it")
            }
            Unmapped::Inert(why) => format!("{why}; leaving it out changes no decision"),
        }
    }
}

/// Reads a docker_auth configuration. Malformed YAML, or YAML not of docker_auth's shape, is an
/// error naming the line and column; so is an ACL entry without `match`, which docker_auth
/// refuses too. Everything else that cannot be carried over is in [`Import::skipped`].
pub fn parse(yaml: &str) -> Result<Import, ImportError> {
    let config: Config = yaml_serde::from_str(yaml).map_err(yaml_error)?;
    let sections: yaml_serde::Mapping = yaml_serde::from_str(yaml).map_err(yaml_error)?;
    let mut skipped: Vec<Skipped> = sections.keys().filter_map(section_skipped).collect();

    let no_users = BTreeMap::new();
    let users = config.users.as_ref().unwrap_or(&no_users);
    let mut imported = Vec::new();
    let mut principals = Vec::new();
    let mut anonymous = false;
    for (name, entry) in users {
        match read_user(name, entry.as_ref()) {
            Ok(user) => {
                let entry = user.entry;
                if let Some(hash) = user.password_hash {
                    imported.push(ImportedUser {
                        name: name.clone(),
                        password_hash: hash,
                    });
                } else {
                    anonymous = true;
                }
                if !entry.labels.is_empty() {
                    skipped.push(Skipped {
                        what: user_what(name),
                        why: format!(
                            "labels ({}) are not kept: Portcullis has none; ACL entries using \
                             them were resolved into rules for this user, which do not follow \
                             later label changes",
                            entry.labels.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
                principals.push(Principal {
                    account: name,
                    labels: &entry.labels,
                });
            }
            Err(why) => skipped.push(Skipped {
                what: user_what(name),
                why,
            }),
        }
    }

    let mut rules = Vec::new();
    for (index, entry) in config.acl.iter().flatten().enumerate() {
        let number = index + 1;
        let conditions = entry
            .conditions
            .as_ref()
            .ok_or(ImportError::MissingMatch { entry: number })?;
        let what = match &entry.comment {
            Some(comment) => format!("ACL entry {number} ({comment:?})"),
            None => format!("ACL entry {number}"),
        };
        let notes = match translate(conditions, entry.actions.as_deref(), &principals, anonymous) {
            Ok((entry_rules, notes)) => {
                rules.extend(entry_rules);
                notes
            }
            Err(unmapped) => vec![unmapped.into_reason()],
        };
        skipped.extend(notes.into_iter().map(|why| Skipped {
            what: what.clone(),
            why,
        }));
    }

    Ok(Import {
        users: imported,
        rules,
        evaluation: config.acl.is_some().then_some(Evaluation::FirstMatch),
        skipped,
    })
}

/// The parser's error, its message always naming the place when the parser knows it.
fn yaml_error(error: yaml_serde::Error) -> ImportError {
    let location = error.location();
    let mut message = error.to_string();
    if let Some(at) = location.as_ref().filter(|_| !message.contains(" at line ")) {
        message = format!("{message} at line {} column {}", at.line(), at.column());
    }
    ImportError::Yaml {
        message,
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
    }
}

/// The report line for a top-level section this importer does not read, if any.
fn section_skipped(key: &yaml_serde::Value) -> Option<Skipped> {
    let name = match key.as_str() {
        Some(USERS | ACL) => return None,
        Some(name) => name.to_owned(),
        None => format!("{key:?}"),
    };
    let why = if OWN_SETTINGS.contains(&name.as_str()) {
        "not imported: Portcullis has its own settings for this"
    } else if AUTHN_BACKENDS.contains(&name.as_str()) {
        "authentication backend Portcullis does not have: its users are not imported and cannot \
         log in"
    } else if AUTHZ_BACKENDS.contains(&name.as_str()) {
        "authorization backend Portcullis does not have: docker_auth asked it about the scopes no \
         ACL entry matched, which Portcullis now refuses"
    } else {
        "not a docker_auth setting (docker_auth ignores it too)"
    };
    Some(Skipped {
        what: format!("section {name}"),
        why: why.to_owned(),
    })
}

fn user_what(name: &str) -> String {
    if name.is_empty() {
        "user \"\" (anonymous)".to_owned()
    } else {
        format!("user {name:?}")
    }
}

/// A static user that is carried over: with its hash, or the anonymous entry without one.
struct ReadUser<'a> {
    entry: &'a UserEntry,
    password_hash: Option<String>,
}

/// Why an anonymous entry with a password is not carried over.
const ANONYMOUS_WITH_PASSWORD: &str =
    "an anonymous entry with a password cannot be carried over; anonymous callers get nothing";
/// Why a user without a password is not carried over.
const NO_PASSWORD: &str = "has no password (docker_auth lets anyone in as this user with any \
                           password); only users with a bcrypt password are imported";

fn read_user<'a>(name: &str, entry: Option<&'a UserEntry>) -> Result<ReadUser<'a>, String> {
    let entry = entry.ok_or("has no settings, so docker_auth does not accept it")?;
    match (name.is_empty(), &entry.password) {
        (true, None) => Ok(ReadUser {
            entry,
            password_hash: None,
        }),
        (true, Some(_)) => Err(ANONYMOUS_WITH_PASSWORD.to_owned()),
        (false, None) => Err(NO_PASSWORD.to_owned()),
        (false, Some(hash)) => {
            check_user_name(name)?;
            check_bcrypt(hash)?;
            Ok(ReadUser {
                entry,
                password_hash: Some(hash.clone()),
            })
        }
    }
}

/// The rules for one ACL entry, in order, and notes on what of it was lost or resolved.
fn translate(
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

/// Replaces each key in `text` by its value in one left-to-right pass, trying the keys in order
/// at each place, as Go's `strings.NewReplacer` does for docker_auth.
fn substitute(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match pairs.iter().find(|(key, _)| rest.starts_with(key)) {
            Some((key, value)) => {
                out.push_str(value);
                rest = &rest[key.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if GO_REGEX_SPECIALS.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A docker_auth match string: `/RE/` or a glob.
enum GoPattern<'a> {
    /// The expression between the slashes, searched anywhere in the value.
    Regex(&'a str),
    /// A `path.Match` pattern of the whole value.
    Glob(&'a str),
}

fn go_pattern(pattern: &str) -> GoPattern<'_> {
    match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        Some(body) if pattern.len() > 2 => GoPattern::Regex(body),
        _ => GoPattern::Glob(pattern),
    }
}

/// A docker_auth match string compiled for values known at import (accounts, labels, types).
enum Matcher {
    /// `/RE/`, searched anywhere in the value; `${account:N}` can name its groups.
    Regex(Regex),
    /// A glob, matched as `path.Match` does.
    Glob(Vec<Chunk>),
    /// A malformed glob, which matches nothing.
    Nothing,
}

impl Matcher {
    fn new(pattern: &str) -> Result<Matcher, Unmapped> {
        match go_pattern(pattern) {
            GoPattern::Regex(body) => {
                check_go_regex(pattern, body)?;
                Regex::new(body)
                    .map(Matcher::Regex)
                    .map_err(|e| not_understood(pattern, &e.to_string()))
            }
            GoPattern::Glob(glob) => Ok(parse_glob(glob, false)
                .map_or(Matcher::Nothing, |tokens| Matcher::Glob(chunks(&tokens)))),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        match self {
            Matcher::Regex(regex) => regex.is_match(value),
            Matcher::Glob(chunks) => glob_match(chunks, value),
            Matcher::Nothing => false,
        }
    }

    /// Group `group` of the first match in `value`, as `${account:N}` takes it: `""` for a group
    /// that took no part, `None` for a glob, no match or a group out of range.
    fn capture(&self, value: &str, group: usize) -> Option<String> {
        let Matcher::Regex(regex) = self else {
            return None;
        };
        let captures = regex.captures(value)?;
        (1..captures.len())
            .contains(&group)
            .then(|| captures.get(group).map_or("", |m| m.as_str()).to_owned())
    }
}

/// A run of single-character glob elements, after a `*` or not: what Go's `scanChunk` returns.
struct Chunk {
    star: bool,
    elements: Vec<GlobToken>,
}

/// Cuts glob tokens at each `*`.
fn chunks(tokens: &[GlobToken]) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    for token in tokens {
        let star = *token == GlobToken::Star;
        match chunks.last_mut() {
            Some(chunk) if !star => chunk.elements.push(token.clone()),
            _ => chunks.push(Chunk {
                star,
                elements: if star {
                    Vec::new()
                } else {
                    vec![token.clone()]
                },
            }),
        }
    }
    chunks
}

/// Go's `path.Match` over chunks: each chunk after a `*` is taken at the first place it matches
/// (the `*` never skipping a `/`) and never reconsidered, the last one where it ends the value.
/// A class that can match `/` makes this differ from a regular expression's any-way matching.
fn glob_match(chunks: &[Chunk], value: &str) -> bool {
    let mut rest = value;
    'chunks: for (index, chunk) in chunks.iter().enumerate() {
        let last = index + 1 == chunks.len();
        if chunk.star && chunk.elements.is_empty() {
            return !rest.contains('/');
        }
        if let Some(after) = match_chunk(&chunk.elements, rest) {
            if after.is_empty() || !last {
                rest = after;
                continue;
            }
        }
        if chunk.star {
            for (at, c) in rest.char_indices() {
                if c == '/' {
                    break;
                }
                if let Some(after) = match_chunk(&chunk.elements, &rest[at + c.len_utf8()..]) {
                    if last && !after.is_empty() {
                        continue;
                    }
                    rest = after;
                    continue 'chunks;
                }
            }
        }
        return false;
    }
    rest.is_empty()
}

/// Go's `matchChunk`: the rest of `value` after `elements` matched its start.
fn match_chunk<'v>(elements: &[GlobToken], value: &'v str) -> Option<&'v str> {
    let mut chars = value.chars();
    for element in elements {
        let c = chars.next()?;
        let matched = match element {
            GlobToken::Char(expected) => c == *expected,
            GlobToken::AnyChar => c != '/',
            GlobToken::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            GlobToken::Star | GlobToken::Account => false,
        };
        if !matched {
            return None;
        }
    }
    Some(chars.as_str())
}

/// Whether a class can match `/`.
fn class_takes_slash(token: &GlobToken) -> bool {
    match token {
        GlobToken::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= '/' && '/' <= hi) != *negated
        }
        _ => false,
    }
}

/// One element of a `path.Match` glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    /// This character (escaped ones included).
    Char(char),
    /// `*`, runs of it included: any run of characters without `/`.
    Star,
    /// `?`: one character other than `/`.
    AnyChar,
    /// `[...]` or `[^...]`: one character (`/` included) in, or not in, the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `${account}`, kept for a Portcullis placeholder.
    Account,
}

/// `path.Match` would report `ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
struct GlobSyntax;

/// Parses a glob as Go's `path.Match` reads it; with `placeholders`, `${account}` outside classes
/// and escapes is kept as [`GlobToken::Account`].
fn parse_glob(glob: &str, placeholders: bool) -> Result<Vec<GlobToken>, GlobSyntax> {
    let mut tokens = Vec::new();
    let mut rest = glob;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest
            .strip_prefix(ACCOUNT_PLACEHOLDER)
            .filter(|_| placeholders)
        {
            tokens.push(GlobToken::Account);
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        let token = match c {
            '*' if tokens.last() == Some(&GlobToken::Star) => continue,
            '*' => GlobToken::Star,
            '?' => GlobToken::AnyChar,
            '\\' => {
                let escaped = rest.chars().next().ok_or(GlobSyntax)?;
                rest = &rest[escaped.len_utf8()..];
                GlobToken::Char(escaped)
            }
            '[' => {
                let (class, after) = parse_class(rest)?;
                rest = after;
                class
            }
            c => GlobToken::Char(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// The rest of a class after `[`, and what follows its `]`.
fn parse_class(rest: &str) -> Result<(GlobToken, &str), GlobSyntax> {
    let (negated, mut rest) = match rest.strip_prefix('^') {
        Some(after) => (true, after),
        None => (false, rest),
    };
    let mut ranges = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(']').filter(|_| !ranges.is_empty()) {
            return Ok((GlobToken::Class { negated, ranges }, after));
        }
        let (lo, after) = class_char(rest)?;
        let (hi, after) = match after.strip_prefix('-') {
            Some(after) => class_char(after)?,
            None => (lo, after),
        };
        ranges.push((lo, hi));
        rest = after;
    }
}

/// One possibly escaped class character, as Go's `getEsc` reads it (something must follow it).
fn class_char(rest: &str) -> Result<(char, &str), GlobSyntax> {
    let mut chars = rest.chars();
    let c = match chars.next() {
        None | Some('-' | ']') => return Err(GlobSyntax),
        Some('\\') => chars.next().ok_or(GlobSyntax)?,
        Some(c) => c,
    };
    let after = chars.as_str();
    if after.is_empty() {
        return Err(GlobSyntax);
    }
    Ok((c, after))
}

/// The regular expression of a glob, unanchored; [`GlobToken::Account`] stays `${account}`. It
/// matches as `path.Match` does unless a class that can match `/` sits between two `*`.
fn glob_regex(tokens: &[GlobToken]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            GlobToken::Char(c) => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            GlobToken::Star => out.push_str("[^/]*"),
            GlobToken::AnyChar => out.push_str("[^/]"),
            GlobToken::Class { negated, ranges } => {
                let ranges: Vec<&(char, char)> =
                    ranges.iter().filter(|(lo, hi)| lo <= hi).collect();
                match (ranges.is_empty(), negated) {
                    (true, false) => out.push_str(NO_CHARACTER),
                    (true, true) => out.push_str("(?s:.)"),
                    (false, _) => {
                        out.push('[');
                        if *negated {
                            out.push('^');
                        }
                        for &&(lo, hi) in &ranges {
                            out.push_str(&format!(r"\x{{{:x}}}", u32::from(lo)));
                            if lo != hi {
                                out.push_str(&format!(r"-\x{{{:x}}}", u32::from(hi)));
                            }
                        }
                        out.push(']');
                    }
                }
            }
            GlobToken::Account => out.push_str(ACCOUNT_PLACEHOLDER),
        }
    }
    out
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

/// Refuses a regular expression that the regex crate does not parse, or that Go's `regexp` would
/// refuse although the regex crate takes it (nested repetition like `a**`, counts above Go's
/// 1000), with `${account}` standing for an account name.
fn check_go_regex(pattern: &str, body: &str) -> Result<(), Unmapped> {
    let probe = substitute(body, &[(ACCOUNT_PLACEHOLDER, "a")]);
    let ast = AstParser::new()
        .parse(&probe)
        .map_err(|e| not_understood(pattern, &e.to_string()))?;
    if refused_by_go(&ast) {
        return Err(not_understood(
            pattern,
            "a nested or over-long repetition, which Go refuses",
        ));
    }
    Ok(())
}

/// Whether a parsed expression holds a repetition of a repetition, or a count above
/// [`GO_MAX_REPEAT`].
fn refused_by_go(ast: &Ast) -> bool {
    match ast {
        Ast::Repetition(repetition) => {
            let too_many = match &repetition.op.kind {
                RepetitionKind::Range(
                    RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n),
                ) => *n > GO_MAX_REPEAT,
                _ => false,
            };
            too_many
                || matches!(*repetition.ast, Ast::Repetition(_))
                || refused_by_go(&repetition.ast)
        }
        Ast::Group(group) => refused_by_go(&group.ast),
        Ast::Alternation(alternation) => alternation.asts.iter().any(refused_by_go),
        Ast::Concat(concat) => concat.asts.iter().any(refused_by_go),
        _ => false,
    }
}

fn not_understood(pattern: &str, why: &str) -> Unmapped {
    Unmapped::Inexpressible(format!(
        "the regular expression {pattern:?} is not understood here ({why})"
    ))
}

/// docker_auth's `matchString` for a value known at import; `false` for a malformed glob.
fn go_matches(pattern: &str, value: &str) -> bool {
    Matcher::new(pattern).is_ok_and(|m| m.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::bcrypt::verify as verify_bcrypt;
    use crate::policy::{Policy, Subject};
    use crate::scope::Scope;

    /// Modelled on docker_auth's `examples/reference.yml`; its ACL entries are numbered in comments.
    const CONFIG: &str = include_str!("testdata/docker_auth.yml");

    fn policy(import: &Import) -> Policy {
        assert_eq!(import.evaluation, Some(Evaluation::FirstMatch));
        Policy::new(Evaluation::FirstMatch, import.rules.iter().cloned())
    }

    /// What Portcullis grants `account` (`""`: anonymous) of `scope`, as a scope string.
    fn granted(policy: &Policy, account: &str, scope: &str) -> Option<String> {
        let subject = if account.is_empty() {
            Subject::anonymous()
        } else {
            Subject::account(account, &[])
        };
        let scope = Scope::parse(scope).unwrap();
        policy
            .decide(&subject, &scope)
            .into_granted()
            .map(|s| s.to_string())
    }

    fn import(yaml: &str) -> Import {
        parse(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules(import: &Import) -> Vec<String> {
        import.rules.iter().map(ToString::to_string).collect()
    }

    fn reasons(import: &Import) -> Vec<(&str, &str)> {
        import
            .skipped
            .iter()
            .map(|s| (s.what.as_str(), s.why.as_str()))
            .collect()
    }

    /// (account, requested scope, what docker_auth grants, the entry of `CONFIG` that decides it),
    /// worked out from `aclAuthorizer.Authorize` and `matchString` in docker_auth's
    /// `auth_server/authz/acl.go`, for requests from an address entry 1 does not match.
    const DOCKER_AUTH_DECISIONS: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "admin",
            "repository:any/thing/deep:pull,push,delete",
            Some("repository:any/thing/deep:delete,pull,push"),
            "2",
        ),
        ("admin", "repository:x:*", Some("repository:x:*"), "2"),
        (
            "admin",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "2",
        ),
        (
            "test",
            "repository:test-app:pull,push",
            Some("repository:test-app:pull,push"),
            "3",
        ),
        (
            "test",
            "repository:test-a/b:pull",
            None,
            "4: * stays within a segment",
        ),
        ("test", "repository:test/app:pull", None, "4, before 8"),
        ("test", "registry:catalog:*", None, "4"),
        (
            "ci-builder",
            "repository:builds/app:pull,push,delete",
            Some("repository:builds/app:pull,push"),
            "5",
        ),
        (
            "ci-builder",
            "repository:mirror/builds/app:pull,push",
            Some("repository:mirror/builds/app:pull"),
            "14: ^ anchors",
        ),
        ("ci-builder", "repository:builds:push", None, "14"),
        (
            "ci-builder",
            "repository:ci-builder/cache:push",
            Some("repository:ci-builder/cache:push"),
            "8",
        ),
        (
            "ci-builder",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "9",
        ),
        (
            "bob",
            "repository:x/tmpfiles:delete",
            Some("repository:x/tmpfiles:delete"),
            "6: unanchored",
        ),
        (
            "bob",
            "repository:tmp:pull,push",
            Some("repository:tmp:pull"),
            "6",
        ),
        (
            "bob",
            "repository:secret/tmp:pull",
            Some("repository:secret/tmp:pull"),
            "6, before 12",
        ),
        (
            "bob",
            "repository:shared/tools:pull,push",
            Some("repository:shared/tools:pull"),
            "7",
        ),
        (
            "bob",
            "repository:shared/a/b:pull",
            Some("repository:shared/a/b:pull"),
            "14",
        ),
        (
            "bob",
            "repository:bob/app:delete",
            Some("repository:bob/app:delete"),
            "8",
        ),
        (
            "bob",
            "repository:bob:pull,push",
            Some("repository:bob:pull"),
            "14",
        ),
        ("bob", "repository:secret/keys:pull", None, "12"),
        (
            "bob",
            "repository:library/alpine:pull,push",
            Some("repository:library/alpine:pull"),
            "14",
        ),
        ("bob", "repository:library/alpine:*", None, "14"),
        ("bob", "repository:vip/app:push", None, "14: labels"),
        ("bob", "registry:catalog:*", Some("registry:catalog:*"), "9"),
        (
            "alice",
            "repository:alice/app:*",
            Some("repository:alice/app:*"),
            "8",
        ),
        (
            "alice",
            "repository:vip/app:push,delete",
            Some("repository:vip/app:push"),
            "10",
        ),
        (
            "alice",
            "repository:web-shared/site:push",
            Some("repository:web-shared/site:push"),
            "11",
        ),
        (
            "alice",
            "repository:api-shared/x:pull,push",
            Some("repository:api-shared/x:pull,push"),
            "11",
        ),
        ("alice", "repository:api-shared/x/y:push", None, "14"),
        ("alice", "repository:secret/keys:pull", None, "12"),
        (
            "alice",
            "repository:library/alpine:pull",
            Some("repository:library/alpine:pull"),
            "14",
        ),
        (
            "alice",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "9",
        ),
        (
            "",
            "repository:hello-world:pull,push",
            Some("repository:hello-world:pull"),
            "15",
        ),
        (
            "",
            "repository:public/alpine:pull",
            Some("repository:public/alpine:pull"),
            "16",
        ),
        (
            "",
            "repository:pubxic/alpine:pull",
            Some("repository:pubxic/alpine:pull"),
            "16: ?",
        ),
        (
            "",
            "repository:pub/ic/alpine:pull",
            None,
            "none: ? is not /",
        ),
        ("", "repository:public/a/b:pull", None, "none"),
        ("", "repository:library/alpine:pull", None, "none"),
        ("", "repository:vip/app:pull", None, "none"),
        ("", "registry:catalog:*", None, "none"),
    ];

    #[test]
    fn decides_every_scope_as_docker_auth_does() {
        let policy = policy(&import(CONFIG));
        for &(account, scope, expected, entry) in DOCKER_AUTH_DECISIONS {
            assert_eq!(
                granted(&policy, account, scope).as_deref(),
                expected,
                "{account:?} asking {scope} (entry {entry})"
            );
        }
    }

    #[test]
    fn translates_entry_by_entry_in_order() {
        assert_eq!(
            rules(&import(CONFIG)),
            [
                r#"allow * on repository "**" to user:admin"#,
                r#"allow * on registry "**" to user:admin"#,
                r#"allow * on repository "test-*" to user:test"#,
                r#"deny * on repository "**" to user:test"#,
                r#"deny * on registry "**" to user:test"#,
                r#"allow pull,push on repository "re:builds\\/.*" to user:ci-builder"#,
                r#"allow pull,delete on repository "re:.*tmp.*" to user:bob"#,
                r#"allow pull on repository "shared/*" to user:bob"#,
                r#"allow * on repository "${account}/*" to authenticated"#,
                r#"allow * on registry "catalog" to authenticated"#,
                r#"allow pull,push on repository "vip/*" to user:alice"#,
                r#"allow pull,push on repository "api-shared/*" to user:alice"#,
                r#"allow pull,push on repository "web-shared/*" to user:alice"#,
                r#"deny * on repository "secret/*" to authenticated"#,
                r#"allow pull on repository "**" to authenticated"#,
                r#"deny * on registry "**" to authenticated"#,
                r#"allow pull on repository "hello-world" to anonymous"#,
                r#"allow pull on repository "re:pub[^/]ic/[^/]*" to anonymous"#,
            ]
        );
    }

    #[test]
    fn reports_everything_not_carried_over() {
        let import = import(CONFIG);
        let later = "; the scopes it decided now fall to the entries after it";
        let nothing = "; leaving it out changes no decision";
        let expected: Vec<(&str, String)> = vec![
            ("section server", "not imported: Portcullis has its own settings for this".into()),
            ("section token", "not imported: Portcullis has its own settings for this".into()),
            ("section ldap_auth", "authentication backend Portcullis does not have: its users are not imported and cannot log in".into()),
            ("section acl_mongo", "authorization backend Portcullis does not have: docker_auth asked it about the scopes no ACL entry matched, which Portcullis now refuses".into()),
            ("section retention_days", "not a docker_auth setting (docker_auth ignores it too)".into()),
            ("user \"Carol\"", "not a Portcullis user name (1-64 of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit)".into()),
            ("user \"alice\"", "labels (group, project) are not kept: Portcullis has none; ACL entries using them were resolved into rules for this user, which do not follow later label changes".into()),
            ("user \"guest\"", "has no password (docker_auth lets anyone in as this user with any password); only users with a bcrypt password are imported".into()),
            ("user \"legacy\"", "Apache MD5 ($apr1$) hash: only bcrypt hashes can be imported".into()),
            ("ACL entry 1 (\"Allow everything from localhost (IPv4)\")", format!("matches on the client address (ip \"127.0.0.0/8\"), which rules cannot express{later}")),
            ("ACL entry 5 (\"CI bots push builds\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:ci-builder, so accounts added later get nothing from it".into()),
            ("ACL entry 7", "its \"*\" beside other actions is not kept: docker_auth grants \"*\" there only to a request for \"*\" itself, which rules cannot express, so such requests are now refused".into()),
            ("ACL entry 10 (\"Users in group vip can push to vip/*\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:alice, so accounts added later get nothing from it".into()),
            ("ACL entry 11 (\"Users can push to the shared namespace of any project they are in\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:alice, so accounts added later get nothing from it".into()),
            ("ACL entry 13", format!("matches on the registry's service name (service \"other-registry\"), which rules cannot express{later}")),
            ("ACL entry 17 (\"Emit domain part of account to make it a correct repo name\")", format!("it matches none of the imported accounts{nothing}")),
            ("ACL entry 18", format!("type \"plugin\" matches neither repository nor registry, and Portcullis grants no other scope type{nothing}")),
            ("ACL entry 19", format!("${{name}} in name is not something rules can express{later}")),
        ];
        let expected: Vec<(&str, &str)> = expected.iter().map(|(w, y)| (*w, y.as_str())).collect();
        assert_eq!(reasons(&import), expected);
    }

    #[test]
    fn users_keep_their_bcrypt_hashes() {
        let import = import(CONFIG);
        let names: Vec<&str> = import.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "alice", "bob", "ci-builder", "test"]);
        for (name, password) in [
            ("admin", "badmin"),
            ("test", "123"),
            ("alice", "wonderland"),
        ] {
            let user = import.users.iter().find(|u| u.name == name).unwrap();
            assert!(user.password_hash.starts_with("$2y$05$"));
            assert!(verify_bcrypt(&user.password_hash, password), "{name}");
            assert!(!verify_bcrypt(&user.password_hash, "wrong"), "{name}");
        }
    }

    #[test]
    fn a_star_beside_other_actions_is_no_longer_granted_alone() {
        // docker_auth grants "*" here (entry 7 intersects {"*"} with ["pull", "*"]); rules cannot.
        let policy = policy(&import(CONFIG));
        assert_eq!(granted(&policy, "bob", "repository:shared/tools:*"), None);
    }

    #[test]
    fn anonymous_callers_need_the_empty_user() {
        let yaml = r#"
users:
  alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}
acl:
  - match: {account: ""}
    actions: ["pull"]
  - match: {name: "hello-world"}
    actions: ["pull"]
"#;
        let import = import(yaml);
        assert_eq!(
            rules(&import),
            [r#"allow pull on repository "hello-world" to authenticated"#]
        );
        assert_eq!(
            reasons(&import),
            [(
                "ACL entry 1",
                "account \"\" (anonymous) never gets this far: users has no \"\" entry, so \
                 docker_auth refuses anonymous callers; leaving it out changes no decision"
            )]
        );
        let with_anonymous = yaml.replace("acl:", "  \"\": {}\nacl:");
        assert_eq!(
            rules(&self::import(&with_anonymous)),
            [
                r#"allow pull on repository "**" to anonymous"#,
                r#"deny * on registry "**" to anonymous"#,
                r#"allow pull on repository "hello-world" to any"#,
            ]
        );
    }

    #[test]
    fn an_account_placeholder_for_everyone_takes_the_empty_account_for_anonymous() {
        // docker_auth replaces ${account} by "" for anonymous callers, so /^${account}/ is /^/.
        let import = import(
            r#"
users: {"": {}, alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}}
acl:
  - match: {name: "/^${account}/"}
    actions: ["pull"]
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow pull on repository "re:${account}.*" to authenticated"#,
                r#"deny * on registry "re:${account}.*" to authenticated"#,
                r#"allow pull on repository "re:.*" to anonymous"#,
                r#"deny * on registry "re:.*" to anonymous"#,
            ]
        );
        let policy = policy(&import);
        assert_eq!(
            granted(&policy, "", "repository:library/alpine:pull").as_deref(),
            Some("repository:library/alpine:pull")
        );
        assert_eq!(
            granted(&policy, "alice", "repository:alice-tools:pull").as_deref(),
            Some("repository:alice-tools:pull")
        );
        assert_eq!(granted(&policy, "alice", "repository:bob/x:pull"), None);
    }

    #[test]
    fn capture_groups_and_label_values_are_resolved_per_user() {
        let import = import(
            r#"
users:
  web-bot: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}
  db-bot: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu", labels: {tier: [prod, dev]}}
  alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu", labels: {tier: [dev]}}
acl:
  - match: {account: "/^(.+)-bot$/", name: "${account:1}/*"}
    actions: ["push"]
  - match: {account: "/^(.+)-bot$/", name: "${account:1}-${labels:tier}/*"}
    actions: ["pull"]
  - match: {account: "/^(.+)-bot$/", name: "${account:2}/*"}
    actions: ["delete"]
  - match: {labels: {tier: "/^d/"}, type: "repository"}
    actions: ["pull"]
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow push on repository "db/*" to user:db-bot"#,
                r#"allow push on repository "web/*" to user:web-bot"#,
                r#"allow pull on repository "db-dev/*" to user:db-bot"#,
                r#"allow pull on repository "db-prod/*" to user:db-bot"#,
                r#"allow pull on repository "**" to user:alice"#,
                r#"allow pull on repository "**" to user:db-bot"#,
            ]
        );
        let skipped: Vec<(&str, &str)> = reasons(&import)
            .into_iter()
            .filter(|(what, _)| what.starts_with("ACL"))
            .collect();
        assert_eq!(skipped[1].0, "ACL entry 2");
        assert!(
            skipped[1]
                .1
                .ends_with("rules for user:db-bot, so accounts added later get nothing from it"),
            "{skipped:?}"
        );
        assert_eq!(
            skipped[2],
            (
                "ACL entry 3",
                "it matches none of the imported accounts; leaving it out changes no decision"
            )
        );
    }

    #[test]
    fn label_combinations_are_capped() {
        let values: Vec<String> = (0..9).map(|i| format!("v{i}")).collect();
        let yaml = format!(
            "users:\n  alice: {{password: \"$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu\", \
             labels: {{a: [{0}], b: [{0}]}}}}\nacl:\n  - match: {{name: \"${{labels:a}}/${{labels:b}}\"}}\n    actions: [pull]\n",
            values.join(", ")
        );
        let import = import(&yaml);
        assert!(import.rules.is_empty());
        let why = &import.skipped.last().unwrap().why;
        assert!(
            why.contains(&format!("more than {MAX_LABEL_COMBINATIONS} combinations")),
            "{why}"
        );
    }

    #[test]
    fn actions_map_per_scope_type() {
        let import = import(
            r#"
users: {bob: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}}
acl:
  - match: {account: bob, type: "re*", name: "${type}-*"}
    actions: [pull, search, frobnicate]
  - match: {account: bob, name: "c?talog"}
    actions: [pull]
  - match: {account: bob}
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow pull on repository "repository-*" to user:bob"#,
                r#"allow pull on repository "re:c[^/]talog" to user:bob"#,
                r#"deny * on registry "re:c[^/]talog" to user:bob"#,
                r#"deny * on repository "**" to user:bob"#,
                r#"deny * on registry "**" to user:bob"#,
            ]
        );
        assert_eq!(
            reasons(&import),
            [
                (
                    "ACL entry 1",
                    r#"actions ["frobnicate"] are not kept: no scope type it matches has them"#
                ),
                (
                    "ACL entry 3",
                    "has no actions, so docker_auth fails the whole request when it matches; \
                     imported as a deny of the scope"
                ),
            ]
        );
    }

    /// A user whose bcrypt cost is above the maximum is listed, not imported; the others are.
    #[test]
    fn a_too_costly_password_is_not_imported() {
        let import = import(
            "users:\n  \"fast\":\n    password: \"$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC\"\n  \
             \"slow\":\n    password: \"$2y$31$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC\"\n",
        );
        let names: Vec<&str> = import.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["fast"]);
        let reasons = reasons(&import);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(reasons[0].0, "user \"slow\"");
        assert!(
            reasons[0]
                .1
                .starts_with("bcrypt cost 31 is above the maximum of 14"),
            "{reasons:?}"
        );
    }

    #[test]
    fn an_entry_without_match_is_an_error() {
        let error = parse("acl:\n  - actions: [pull]\n").unwrap_err();
        assert!(
            matches!(error, ImportError::MissingMatch { entry: 1 }),
            "{error}"
        );
    }

    #[test]
    fn malformed_yaml_is_an_error_with_line_and_column() {
        let error = parse("users:\n  alice: {password: \"x\"\nacl: []\n").unwrap_err();
        let ImportError::Yaml {
            line,
            column,
            message,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!((*line, *column), (Some(3), Some(1)), "{message}");
        assert!(message.contains("at line 3 column 1"), "{message}");

        let error = parse("acl:\n  - match: {account: [a, b]}\n    actions: [pull]\n").unwrap_err();
        let ImportError::Yaml { line, message, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*line, Some(2), "{message}");
        assert!(message.contains("acl[0].match.account"), "{message}");

        let error = parse("- users\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: sequence, expected struct Config at line 1 column 1"
        );
        let error = parse("users:\n  bob: {}\n  bob: {}\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("duplicate entry with key \"bob\" at line 2"),
            "{error}"
        );
    }

    /// Go's `path.Match`, as documented and tested in golang/go's `src/path/match.go` and
    /// `match_test.go`: `*` and `?` never match `/`, classes do, `\` escapes, bad patterns match
    /// nothing.
    #[test]
    fn globs_match_like_go_path_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*", "", true),
            ("*c", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a**", "ab/c", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[b-d]", "abc", true),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a[^x]b", "a/b", true),
            ("a[d-b]c", "abc", false),
            ("a[^d-b]c", "a/c", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("a?b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[\\-x]", "a", false),
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("\\", "\\", false),
            ("[a-b-c]", "a", false),
            ("[^bc", "a", false),
            ("a[", "a", false),
            ("*x", "xxx", true),
            // Go takes a chunk after a `*` at its first fit and never reconsiders: here `[^x]`
            // takes "y", and the last `*` cannot skip the `/` (a regex would let `[^x]` take it).
            ("a*[^x]*b", "ay/b", false),
            (".*[^a]*.", ".x/.a.", false),
            ("a[^x]*b", "a/zb", true),
            ("", "", true),
            ("/", "/", true),
            ("//", "//", true),
        ];
        for &(pattern, value, expected) in cases {
            assert_eq!(
                go_matches(pattern, value),
                expected,
                "{pattern:?} {value:?}"
            );
        }
    }

    #[test]
    fn regexes_search_anywhere_like_go() {
        let cases: &[(&str, &str, bool)] = &[
            ("/.+/", "alice", true),
            ("/.+/", "", false),
            ("/z$/", "baz", true),
            ("/^z/", "baz", false),
            ("/a|^q/", "xa", true),
            ("/(foo|bar)/", "xbarx", true),
            ("/foo.*/", "foo", true),
        ];
        for &(pattern, value, expected) in cases {
            assert_eq!(
                go_matches(pattern, value),
                expected,
                "{pattern:?} {value:?}"
            );
        }
    }

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
