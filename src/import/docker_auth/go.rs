//! Go's matching as docker_auth uses it, for values known at import: `path.Match` globs (parsed
//! into tokens, matched chunk by chunk as Go does, or written as a regular expression), `/RE/`
//! regular expressions checked for what Go refuses, `regexp.QuoteMeta` and `strings.NewReplacer`.
//! What docker_auth does with them, and what becomes of them in rules, is `translate`'s.

use regex::Regex;
use regex_syntax::ast::{parse::Parser as AstParser, Ast, RepetitionKind, RepetitionRange};

use crate::policy::ACCOUNT_PLACEHOLDER;

/// Go's `regexp.QuoteMeta` escapes these; docker_auth escapes the values it substitutes with it.
const GO_REGEX_SPECIALS: &str = r"\.+*?()|[]{}^$";
/// The largest repetition count Go's `regexp` accepts (`syntax.maxRepeat`).
const GO_MAX_REPEAT: u32 = 1000;
/// A regex class that matches no character (a glob class of reversed ranges only).
const NO_CHARACTER: &str = r"[^\x{0}-\x{10FFFF}]";

/// Replaces each key in `text` by its value in one left-to-right pass, trying the keys in order
/// at each place, as Go's `strings.NewReplacer` does for docker_auth.
pub(super) fn substitute(text: &str, pairs: &[(&str, &str)]) -> String {
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
pub(super) fn quote_meta(text: &str) -> String {
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
pub(super) enum GoPattern<'a> {
    /// The expression between the slashes, searched anywhere in the value.
    Regex(&'a str),
    /// A `path.Match` pattern of the whole value.
    Glob(&'a str),
}

pub(super) fn go_pattern(pattern: &str) -> GoPattern<'_> {
    match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        Some(body) if pattern.len() > 2 => GoPattern::Regex(body),
        _ => GoPattern::Glob(pattern),
    }
}

/// A docker_auth match string compiled for values known at import (accounts, labels, types).
pub(super) enum Matcher {
    /// `/RE/`, searched anywhere in the value; `${account:N}` can name its groups.
    Regex(Regex),
    /// A glob, matched as `path.Match` does.
    Glob(Vec<Chunk>),
    /// A malformed glob, which matches nothing.
    Nothing,
}

impl Matcher {
    pub(super) fn new(pattern: &str) -> Result<Matcher, NotUnderstood> {
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

    pub(super) fn is_match(&self, value: &str) -> bool {
        match self {
            Matcher::Regex(regex) => regex.is_match(value),
            Matcher::Glob(chunks) => glob_match(chunks, value),
            Matcher::Nothing => false,
        }
    }

    /// Group `group` of the first match in `value`, as `${account:N}` takes it: `""` for a group
    /// that took no part, `None` for a glob, no match or a group out of range.
    pub(super) fn capture(&self, value: &str, group: usize) -> Option<String> {
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
pub(super) struct Chunk {
    pub(super) star: bool,
    pub(super) elements: Vec<GlobToken>,
}

/// Cuts glob tokens at each `*`.
pub(super) fn chunks(tokens: &[GlobToken]) -> Vec<Chunk> {
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
pub(super) fn class_takes_slash(token: &GlobToken) -> bool {
    match token {
        GlobToken::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= '/' && '/' <= hi) != *negated
        }
        _ => false,
    }
}

/// One element of a `path.Match` glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GlobToken {
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
pub(super) struct GlobSyntax;

/// Parses a glob as Go's `path.Match` reads it; with `placeholders`, `${account}` outside classes
/// and escapes is kept as [`GlobToken::Account`].
pub(super) fn parse_glob(glob: &str, placeholders: bool) -> Result<Vec<GlobToken>, GlobSyntax> {
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
pub(super) fn glob_regex(tokens: &[GlobToken]) -> String {
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

/// Refuses a regular expression that the regex crate does not parse, or that Go's `regexp` would
/// refuse although the regex crate takes it (nested repetition like `a**`, counts above Go's
/// 1000), with `${account}` standing for an account name.
pub(super) fn check_go_regex(pattern: &str, body: &str) -> Result<(), NotUnderstood> {
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

fn not_understood(pattern: &str, why: &str) -> NotUnderstood {
    NotUnderstood {
        pattern: pattern.to_owned(),
        why: why.to_owned(),
    }
}

/// A `/RE/` pattern the regex crate does not parse, or reads otherwise than Go (or Go refuses).
pub(super) struct NotUnderstood {
    /// The pattern, slashes included.
    pub(super) pattern: String,
    /// What is wrong with it.
    pub(super) why: String,
}

/// docker_auth's `matchString` for a value known at import; `false` for a malformed glob.
pub(super) fn go_matches(pattern: &str, value: &str) -> bool {
    Matcher::new(pattern).is_ok_and(|m| m.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
