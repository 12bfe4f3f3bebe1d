//! Name patterns, compiled once when a policy loads: globs (`*` within one path segment, `**` across
//! segments), `re:` regular expressions (always fully anchored), and the `${account}`, `${group}`
//! and `${claim.PATH}` placeholders. It matches names; which rules apply to whom is the index's
//! business.
//!
//! A placeholder's value is never compiled: the placeholders cut a pattern into parts, each part is
//! compiled on its own, and matching looks for the value as literal text between them. So a value
//! holding `*`, `.` or `(` means exactly those characters, as if it had been escaped, and no regular
//! expression is built per request. For `re:` patterns this is only the same as escaping the value
//! into the expression when each part is a regular expression of its own that is concatenated with
//! its neighbours, so beside a placeholder a part may not hold a top-level `|`, a bare flag group
//! such as `(?i)`, or an anchor or word boundary (`re:` patterns are anchored already).

use std::fmt;

use regex::Regex;
use regex_syntax::ast::{parse::Parser as AstParser, Ast};
use regex_syntax::hir::{translate::Translator, Hir, HirKind};

use std::borrow::Cow;

use super::subject::Subject;
use crate::claims::ClaimPath;

/// The prefix that makes a name pattern a regular expression.
pub const REGEX_PREFIX: &str = "re:";
/// Stands for the account name of the subject; matches nothing for anonymous callers.
pub const ACCOUNT_PLACEHOLDER: &str = "${account}";
/// Stands for each group of the subject in turn; matches nothing for a subject without groups.
pub const GROUP_PLACEHOLDER: &str = "${group}";
/// Opens a placeholder for a claim of a workload's JWT: `${claim.repository}`,
/// `${claim./kubernetes.io/namespace}` (a top-level claim name or a JSON Pointer, see
/// [`ClaimPath`]). Matches nothing for accounts, anonymous callers, and workloads whose claim there
/// is absent, empty, a list or an object.
pub const CLAIM_PLACEHOLDER_OPEN: &str = "${claim.";
/// What every placeholder starts with; a repository name never contains it.
const PLACEHOLDER_OPEN: &str = "${";
/// Most placeholders a glob may hold. Matching tries each place a value occurs in the name, so
/// the cost grows with the name length to the power of the placeholder count: two keep a
/// client-chosen worst case (255 `a`s against `*${group}**${account}*b`) near 2 ms.
pub const MAX_GLOB_PLACEHOLDERS: usize = 2;
/// Most placeholders a `re:` pattern may hold: each try runs a regex over part of the name, so
/// one keeps the worst case near 0.1 ms where two reached 13 ms.
pub const MAX_REGEX_PLACEHOLDERS: usize = 1;
/// The glob wildcard; one matches within a path segment, two across segments.
const STAR: char = '*';

/// Why a name pattern was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// Nothing to match.
    #[error("the pattern is empty")]
    Empty,
    /// `${...}` other than the known placeholders.
    #[error("unknown placeholder {0:?}: use {ACCOUNT_PLACEHOLDER}, {GROUP_PLACEHOLDER} or ${{claim.NAME}} (a claim name or a JSON Pointer such as ${{claim./kubernetes.io/namespace}})")]
    UnknownPlaceholder(String),
    /// More than [`MAX_GLOB_PLACEHOLDERS`] or [`MAX_REGEX_PLACEHOLDERS`].
    #[error("more than {0} placeholder(s) in one pattern")]
    TooManyPlaceholders(usize),
    /// A glob character that no repository or registry resource name contains.
    #[error("{0:?} cannot occur in a resource name (globs allow a-z, 0-9, '.', '_', '-', '/', ':', '*' and '**')")]
    GlobCharacter(char),
    /// `***` or longer.
    #[error(
        "three or more '*' in a row: use '*' (within a path segment) or '**' (across segments)"
    )]
    TooManyStars,
    /// A regular expression (or, beside a placeholder, one part of it) that does not parse.
    #[error("invalid regular expression {part:?}: {source}")]
    RegexSyntax {
        /// The expression, or the part of it between placeholders.
        part: String,
        /// The parser's diagnosis.
        source: Box<regex_syntax::Error>,
    },
    /// A regular expression that parses but is too big to compile.
    #[error("regular expression cannot be compiled: {0}")]
    RegexCompile(#[from] regex::Error),
    /// A part beside a placeholder that would change meaning when cut from its neighbours.
    #[error("beside a placeholder, {0:?} may not hold {1}")]
    BesidePlaceholder(String, &'static str),
}

/// Which principal attribute a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placeholder {
    Account,
    Group,
    /// A claim of a workload's JWT.
    Claim(ClaimPath),
}

/// A compiled name pattern, matched against the whole resource name; displays as written.
///
/// - A glob: `*` matches any run of characters without `/`, `**` any run at all (so `team/**`
///   matches `team/a` and `team/a/b` but not `team`); every other character is literal.
/// - `re:` and a regular expression, anchored at both ends (`re:a|b` matches `a` or `b` only).
/// - In either, `${account}` stands for the subject's account name, `${group}` for each of its
///   groups in turn and `${claim.PATH}` for a workload's claim; the values are literal text, never
///   glob or regex syntax, so a claim holding `*` or `**` cannot widen a rule.
#[derive(Debug, Clone)]
pub struct NamePattern {
    source: String,
    /// The compiled text between placeholders: always one more part than placeholders.
    parts: Vec<Part>,
    /// The placeholders, in order.
    holes: Vec<Placeholder>,
}

/// One placeholder-free piece of a pattern, in the cheapest form that matches the same names.
#[derive(Debug, Clone)]
enum Part {
    /// Exactly this text.
    Literal(Box<str>),
    /// A glob with a single `*` (`crosses_segments` false) or `**` (true): prefix, run, suffix.
    OneWildcard {
        prefix: Box<str>,
        suffix: Box<str>,
        crosses_segments: bool,
    },
    /// Anything else, as a regular expression anchored at both ends, with the literal text every
    /// match starts and ends with, checked first: most names fail there without touching the
    /// regex, whose lazy automaton is costly while cold.
    Regex {
        prefix: Box<str>,
        suffix: Box<str>,
        regex: Regex,
    },
}

/// The values placeholders take for one match attempt: the subject's, and one of its groups.
#[derive(Clone, Copy)]
struct Values<'a> {
    subject: &'a Subject<'a>,
    group: Option<&'a str>,
}

impl<'a> Values<'a> {
    /// The text `hole` stands for; `None` matches nothing.
    fn of(&self, hole: &Placeholder) -> Option<Cow<'a, str>> {
        match hole {
            Placeholder::Account => self.subject.account_name().map(Cow::Borrowed),
            Placeholder::Group => self.group.map(Cow::Borrowed),
            Placeholder::Claim(path) => self.subject.claim(path).filter(|text| !text.is_empty()),
        }
    }
}

impl NamePattern {
    /// Compiles a pattern: `re:` and a regular expression, or else a glob.
    pub fn parse(source: &str) -> Result<NamePattern, PatternError> {
        let (is_regex, body) = match source.strip_prefix(REGEX_PREFIX) {
            Some(body) => (true, body),
            None => (false, source),
        };
        if body.is_empty() {
            return Err(PatternError::Empty);
        }
        let (texts, holes) = split_at_placeholders(body)?;
        let max = if is_regex {
            MAX_REGEX_PLACEHOLDERS
        } else {
            MAX_GLOB_PLACEHOLDERS
        };
        if holes.len() > max {
            return Err(PatternError::TooManyPlaceholders(max));
        }
        let parts = texts
            .into_iter()
            .map(|text| {
                if is_regex {
                    regex_part(text, !holes.is_empty())
                } else {
                    glob_part(text)
                }
            })
            .collect::<Result<Vec<Part>, PatternError>>()?;
        Ok(NamePattern {
            source: source.to_owned(),
            parts,
            holes,
        })
    }

    /// The one name this pattern matches, when it is a plain literal; such rules are found by hash.
    pub fn literal(&self) -> Option<&str> {
        match (self.parts.as_slice(), self.holes.is_empty()) {
            ([Part::Literal(text)], true) => Some(text),
            _ => None,
        }
    }

    /// Literal text every matching name starts with, whoever the subject (may be empty).
    pub fn fixed_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(prefix))
            | Some(Part::OneWildcard { prefix, .. })
            | Some(Part::Regex { prefix, .. }) => prefix,
            None => "",
        }
    }

    /// Whether `name` matches for `subject`. A `${group}` pattern matches when it matches with any
    /// one of the subject's groups; a placeholder without a value matches nothing.
    pub fn matches(&self, name: &str, subject: &Subject<'_>) -> bool {
        if self.holes.contains(&Placeholder::Group) {
            subject.groups().iter().any(|group| {
                let values = Values {
                    subject,
                    group: Some(group),
                };
                match_parts(&self.parts, &self.holes, name, values)
            })
        } else {
            let values = Values {
                subject,
                group: None,
            };
            match_parts(&self.parts, &self.holes, name, values)
        }
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `text` matches `parts[0] value(holes[0]) parts[1] ...`, the values taken literally.
fn match_parts(parts: &[Part], holes: &[Placeholder], text: &str, values: Values<'_>) -> bool {
    let Some((first, parts)) = parts.split_first() else {
        return false;
    };
    let Some((hole, holes)) = holes.split_first() else {
        return first.matches(text);
    };
    let Some(value) = values.of(hole) else {
        return false;
    };
    let value: &str = &value;
    if let Part::Literal(literal) = first {
        return text
            .strip_prefix(&**literal)
            .and_then(|rest| rest.strip_prefix(value))
            .is_some_and(|rest| match_parts(parts, holes, rest, values));
    }
    // Try every place the value occurs, overlapping ones included.
    let mut from = 0;
    while let Some(offset) = text[from..].find(value) {
        let at = from + offset;
        if first.matches(&text[..at])
            && match_parts(parts, holes, &text[at + value.len()..], values)
        {
            return true;
        }
        match text[at..].chars().next() {
            Some(c) => from = at + c.len_utf8(),
            None => break,
        }
    }
    false
}

impl Part {
    fn matches(&self, text: &str) -> bool {
        match self {
            Part::Literal(literal) => text == &**literal,
            Part::OneWildcard {
                prefix,
                suffix,
                crosses_segments,
            } => {
                frames(text, prefix, suffix)
                    && (*crosses_segments
                        || !text[prefix.len()..text.len() - suffix.len()].contains('/'))
            }
            Part::Regex {
                prefix,
                suffix,
                regex,
            } => frames(text, prefix, suffix) && regex.is_match(text),
        }
    }
}

/// Whether `text` starts with `prefix` and, after it, ends with `suffix`.
fn frames(text: &str, prefix: &str, suffix: &str) -> bool {
    text.len() >= prefix.len() + suffix.len() && text.starts_with(prefix) && text.ends_with(suffix)
}

/// Cuts `body` at its placeholders: the texts between them (one more than placeholders) and the
/// placeholders. Every `${` must open a known placeholder.
fn split_at_placeholders(body: &str) -> Result<(Vec<&str>, Vec<Placeholder>), PatternError> {
    let mut texts = Vec::new();
    let mut holes = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(PLACEHOLDER_OPEN) {
        let from_open = &rest[start..];
        let claim = from_open
            .strip_prefix(CLAIM_PLACEHOLDER_OPEN)
            .and_then(|rest| rest.split_once('}'))
            .and_then(|(path, _)| Some((ClaimPath::parse(path).ok()?, path.len())));
        let (hole, len) = if from_open.starts_with(ACCOUNT_PLACEHOLDER) {
            (Placeholder::Account, ACCOUNT_PLACEHOLDER.len())
        } else if from_open.starts_with(GROUP_PLACEHOLDER) {
            (Placeholder::Group, GROUP_PLACEHOLDER.len())
        } else if let Some((path, path_len)) = claim {
            (
                Placeholder::Claim(path),
                CLAIM_PLACEHOLDER_OPEN.len() + path_len + 1,
            )
        } else {
            let shown = from_open
                .find('}')
                .map_or(from_open, |end| &from_open[..=end]);
            return Err(PatternError::UnknownPlaceholder(shown.to_owned()));
        };
        texts.push(&rest[..start]);
        holes.push(hole);
        rest = &from_open[len..];
    }
    texts.push(rest);
    Ok((texts, holes))
}

/// Characters a glob may hold besides `*`: those of repository names (`host:port/` included).
fn is_glob_literal(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/' | ':')
}

/// Compiles the glob text between placeholders, taking the cheapest form that fits.
fn glob_part(text: &str) -> Result<Part, PatternError> {
    if let Some(bad) = text.chars().find(|&c| c != STAR && !is_glob_literal(c)) {
        return Err(PatternError::GlobCharacter(bad));
    }
    if text.contains("***") {
        return Err(PatternError::TooManyStars);
    }
    if !text.contains(STAR) {
        return Ok(Part::Literal(text.into()));
    }
    let (prefix, rest) = text.split_at(text.find(STAR).unwrap_or_default());
    let (wildcard, suffix) = rest.split_at(rest.rfind(STAR).map_or(0, |last| last + 1));
    match wildcard {
        "*" | "**" => Ok(Part::OneWildcard {
            prefix: prefix.into(),
            suffix: suffix.into(),
            crosses_segments: wildcard == "**",
        }),
        _ => Ok(Part::Regex {
            prefix: prefix.into(),
            suffix: suffix.into(),
            regex: Regex::new(&anchored(&glob_to_regex(text)))?,
        }),
    }
}

/// Translates a checked glob: `*` to "no `/`", `**` to "anything", the rest escaped.
fn glob_to_regex(glob: &str) -> String {
    let mut regex = String::with_capacity(glob.len() * 2);
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        if c != STAR {
            regex.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        } else if chars.next_if_eq(&STAR).is_some() {
            regex.push_str("(?s:.*)");
        } else {
            regex.push_str("[^/]*");
        }
    }
    regex
}

/// The text of a literal piece of a regular expression.
fn literal_text(piece: &Hir) -> Option<&str> {
    match piece.kind() {
        HirKind::Literal(literal) => std::str::from_utf8(&literal.0).ok(),
        _ => None,
    }
}

/// `^(?:regex)$`: the whole text must match.
fn anchored(regex: &str) -> String {
    format!("^(?:{regex})$")
}

/// Compiles the regular expression text between placeholders. When the pattern has placeholders,
/// refuses what would not simply concatenate with them (see the module documentation).
fn regex_part(text: &str, beside_placeholder: bool) -> Result<Part, PatternError> {
    let syntax_error = |source: regex_syntax::Error| PatternError::RegexSyntax {
        part: text.to_owned(),
        source: Box::new(source),
    };
    let ast = AstParser::new()
        .parse(text)
        .map_err(|e| syntax_error(e.into()))?;
    let hir = Translator::new()
        .translate(text, &ast)
        .map_err(|e| syntax_error(e.into()))?;
    if beside_placeholder {
        let top_level = match &ast {
            Ast::Concat(concat) => concat.asts.as_slice(),
            other => std::slice::from_ref(other),
        };
        let refusal = if matches!(ast, Ast::Alternation(_)) {
            Some("a top-level '|' (put the alternation in a group)")
        } else if top_level.iter().any(|a| matches!(a, Ast::Flags(_))) {
            Some("a bare flag group such as (?i) (use (?i:...))")
        } else if !hir.properties().look_set().is_empty() {
            Some("anchors or word boundaries (re: patterns are anchored already)")
        } else {
            None
        };
        if let Some(what) = refusal {
            return Err(PatternError::BesidePlaceholder(text.to_owned(), what));
        }
    }
    let pieces = match hir.kind() {
        HirKind::Empty => return Ok(Part::Literal("".into())),
        HirKind::Concat(pieces) => pieces.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    let join = |run: &[Hir]| -> Box<str> {
        run.iter()
            .filter_map(literal_text)
            .collect::<String>()
            .into()
    };
    let leading = pieces.iter().map_while(literal_text).count();
    if leading == pieces.len() {
        return Ok(Part::Literal(join(pieces)));
    }
    let trailing = pieces[leading..]
        .iter()
        .rev()
        .map_while(literal_text)
        .count();
    Ok(Part::Regex {
        prefix: join(&pieces[..leading]),
        suffix: join(&pieces[pieces.len() - trailing..]),
        regex: Regex::new(&anchored(text))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, account: &str, groups: &[&str], name: &str) -> bool {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        NamePattern::parse(pattern)
            .unwrap()
            .matches(name, &Subject::account(account, &groups))
    }

    fn matches(pattern: &str, name: &str) -> bool {
        check(pattern, "alice", &["devs"], name)
    }

    #[test]
    fn globs() {
        assert!(matches("team/app", "team/app"));
        assert!(!matches("team/app", "team/app2"));
        assert!(matches("team/*", "team/app"));
        assert!(!matches("team/*", "team/app/x"));
        assert!(!matches("team/*", "team"));
        assert!(matches("team/**", "team/app/x"));
        assert!(!matches("team/**", "team"));
        assert!(matches("**", "a/b/c"));
        assert!(matches("*/app", "x/app"));
        assert!(!matches("*/app", "x/y/app"));
        assert!(matches("**/app", "x/y/app"));
        assert!(matches("a*b", "ab"));
        assert!(matches("a*b/**/c", "axxb/d/e/c"));
        assert!(matches("localhost:5000/**", "localhost:5000/a/b"));
    }

    #[test]
    fn regular_expressions_are_anchored() {
        assert!(matches("re:team/(app|web)", "team/web"));
        assert!(!matches("re:team/(app|web)", "team/web2"));
        assert!(!matches("re:team/(app|web)", "xteam/web"));
        assert!(matches("re:a|b", "b"));
        assert!(!matches("re:a|b", "ab"));
        assert!(matches("re:ci/build-[0-9]+", "ci/build-42"));
        assert!(matches("re:^x$", "x"));
    }

    #[test]
    fn placeholders_take_the_subjects_values() {
        assert!(matches("${account}/**", "alice/app"));
        assert!(!matches("${account}/**", "alice"));
        assert!(!matches("${account}/**", "bob/app"));
        assert!(!matches("${account}/**", "xalice/app"));
        assert!(matches("${group}/*", "devs/app"));
        assert!(check("${group}/*", "alice", &["ops", "devs"], "devs/app"));
        assert!(!check("${group}/*", "alice", &[], "devs/app"));
        assert!(matches("team/${account}-*", "team/alice-x"));
        assert!(matches("${group}/${account}/**", "devs/alice/x"));
        assert!(matches("re:${account}/(app|web)", "alice/web"));
        assert!(matches("re:(dev|prod)/${account}/.+", "prod/alice/x"));
        assert!(!matches("re:(dev|prod)/${account}/.+", "prod/alicex/x"));
        assert!(matches("re:.*-${account}", "x-y-alice"));
        let anonymous = Subject::anonymous();
        let pattern = NamePattern::parse("${account}/**").unwrap();
        assert!(!pattern.matches("alice/x", &anonymous));
    }

    #[test]
    fn placeholder_values_are_literal_text() {
        // Glob and regex characters in values never widen a rule.
        assert!(!check("${account}/**", "*", &[], "x/app"));
        assert!(check("${account}/**", "*", &[], "*/app"));
        assert!(!check("${group}/**", "a", &["**"], "x/app"));
        assert!(!check("re:${account}/.*", "a.c", &[], "abc/x"));
        assert!(check("re:${account}/.*", "a.c", &[], "a.c/x"));
        assert!(!check("re:${account}/.*", ".*", &[], "x/y"));
        assert!(!check("re:${group}", "a", &["a|.*"], "zzz"));
        assert!(check("re:${group}", "a", &["a|.*"], "a|.*"));
        // An empty value is still literal text.
        assert!(check("x${group}y", "a", &[""], "xy"));
        // Overlapping occurrences are all tried.
        assert!(check("re:a*${account}b", "aa", &[], "aaab"));
    }

    #[test]
    fn claim_placeholders_take_a_workloads_claims_literally() {
        let claims = serde_json::json!({
            "repository": "acme/app",
            "kubernetes.io": {"namespace": "ci"},
            "wide": "**",
            "star": "a*",
            "empty": "",
            "list": ["acme/app"],
        });
        let workload = Subject::workload("oidc:github:x", &[], &claims);
        let matches = |pattern: &str, name: &str| {
            NamePattern::parse(pattern)
                .unwrap()
                .matches(name, &workload)
        };
        assert!(matches("${claim.repository}/**", "acme/app/web"));
        assert!(!matches("${claim.repository}/**", "acme/other/web"));
        assert!(!matches("${claim.repository}/**", "acme/app"));
        assert!(matches(
            "k8s/${claim./kubernetes.io/namespace}/*",
            "k8s/ci/app"
        ));
        assert!(matches("re:${claim.repository}-(dev|prod)", "acme/app-dev"));
        // Values never widen: `**` and `*` are literal text, which no repository name holds.
        assert!(!matches("${claim.wide}/x", "a/b/x"));
        assert!(!matches("${claim.star}", "abc"));
        // No text, no match.
        for no_value in [
            "${claim.empty}/**",
            "${claim.list}/**",
            "${claim.missing}/**",
        ] {
            assert!(!matches(no_value, "/x"), "{no_value}");
            assert!(!matches(no_value, "acme/app/x"), "{no_value}");
        }
        // Accounts have no claims; workloads have no account.
        assert!(!check("${claim.repository}/**", "acme", &[], "acme/app/x"));
        assert!(!matches("${account}/**", "oidc:github:x/y"));
        assert!(matches!(
            NamePattern::parse("${claim.a b}/x"),
            Err(PatternError::UnknownPlaceholder(_))
        ));
    }

    #[test]
    fn literals_are_recognised() {
        let literal = |p: &str| NamePattern::parse(p).unwrap().literal().map(str::to_owned);
        assert_eq!(literal("team/app").as_deref(), Some("team/app"));
        assert_eq!(literal("re:team/app").as_deref(), Some("team/app"));
        assert_eq!(literal(r"re:team\.app").as_deref(), Some("team.app"));
        assert_eq!(literal("team/*"), None);
        assert_eq!(literal("${account}"), None);
        assert_eq!(literal("re:team/app|x"), None);
    }

    #[test]
    fn fixed_prefixes() {
        let prefix = |p: &str| NamePattern::parse(p).unwrap().fixed_prefix().to_owned();
        assert_eq!(prefix("team/*"), "team/");
        assert_eq!(prefix("team/*/x/**"), "team/");
        assert_eq!(prefix("**/x"), "");
        assert_eq!(prefix("ci/${account}/*"), "ci/");
        assert_eq!(prefix("${account}/**"), "");
        assert_eq!(prefix("re:ci/(a|b)-[0-9]+"), "ci/");
        assert_eq!(prefix("re:(?i:ci)/x"), "");
        assert_eq!(prefix("re:a|b"), "");
    }

    #[test]
    fn bad_patterns_are_refused() {
        let err = |p: &str| NamePattern::parse(p).unwrap_err();
        assert!(matches!(err(""), PatternError::Empty));
        assert!(matches!(err("re:"), PatternError::Empty));
        assert!(matches!(err("${user}/x"), PatternError::UnknownPlaceholder(p) if p == "${user}"));
        assert!(matches!(
            err("a/${acc"),
            PatternError::UnknownPlaceholder(_)
        ));
        assert!(matches!(err("Team/*"), PatternError::GlobCharacter('T')));
        assert!(matches!(err("a?"), PatternError::GlobCharacter('?')));
        assert!(matches!(err("a$b"), PatternError::GlobCharacter('$')));
        assert!(matches!(err("a/***"), PatternError::TooManyStars));
        assert!(matches!(
            err("${group}/${account}/${account}"),
            PatternError::TooManyPlaceholders(2)
        ));
        assert!(matches!(
            err("re:${group}/${account}"),
            PatternError::TooManyPlaceholders(1)
        ));
        assert!(matches!(err("re:(a"), PatternError::RegexSyntax { .. }));
        assert!(matches!(
            err("re:(${account})"),
            PatternError::RegexSyntax { .. }
        ));
        assert!(matches!(
            err("re:${account}+"),
            PatternError::RegexSyntax { .. }
        ));
        assert!(matches!(
            err("re:${account}{2}"),
            PatternError::RegexSyntax { .. }
        ));
        assert!(matches!(
            err("re:x|${account}"),
            PatternError::BesidePlaceholder(..)
        ));
        assert!(matches!(
            err("re:(?i)${account}"),
            PatternError::BesidePlaceholder(..)
        ));
        assert!(matches!(
            err(r"re:\b${account}"),
            PatternError::BesidePlaceholder(..)
        ));
        assert!(matches!(
            err("re:^${account}$"),
            PatternError::BesidePlaceholder(..)
        ));
        let message = err("re:(a").to_string();
        assert!(
            message.contains("invalid regular expression \"(a\""),
            "{message}"
        );
        // Without placeholders the same constructs are fine.
        for ok in ["re:x|y", "re:(?i)x", r"re:\bx", "re:^x$"] {
            assert!(NamePattern::parse(ok).is_ok(), "{ok}");
        }
    }
}
