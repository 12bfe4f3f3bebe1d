//! Claims of a verified external JWT, addressed by path: a [`ClaimPath`] is a JSON Pointer
//! (RFC 6901, `/kubernetes.io/namespace`, `~1` for `/` and `~0` for `~` in a key) or a bare
//! top-level claim name (`repository`), and [`text`] reads the value there as text. Shared by the
//! OIDC claim rules (`auth::oidc`) and the policy's `${claim.…}` placeholders, with [`star_match`],
//! their one glob; it verifies nothing.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

/// Longest claim path accepted.
const MAX_PATH_LEN: usize = 256;

/// Where a claim is: the keys (or array indices) from the top of the claims object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath {
    /// As written; a bare name is kept as the pointer `/name`.
    pointer: String,
}

/// A claim path that is neither a JSON Pointer nor a top-level claim name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("claim path {0:?}: write a top-level claim name (letters, digits, '_', '-') or a JSON Pointer such as /kubernetes.io/namespace ('~1' for '/', '~0' for '~')")]
pub struct ClaimPathError(pub String);

impl ClaimPath {
    /// A JSON Pointer (`/a/b`, every `~` followed by `0` or `1`) or a top-level name of letters,
    /// digits, `_` and `-`. No `}` or whitespace: paths appear inside `${claim.…}`.
    pub fn parse(text: &str) -> Result<ClaimPath, ClaimPathError> {
        let refuse = || ClaimPathError(text.chars().take(80).collect());
        if text.is_empty() || text.len() > MAX_PATH_LEN {
            return Err(refuse());
        }
        if let Some(rest) = text.strip_prefix('/') {
            let visible = rest
                .chars()
                .all(|c| !c.is_whitespace() && c != '}' && c != '{');
            let escapes_ok = rest
                .match_indices('~')
                .all(|(at, _)| matches!(rest.as_bytes().get(at + 1), Some(b'0' | b'1')));
            if !visible || !escapes_ok {
                return Err(refuse());
            }
            return Ok(ClaimPath {
                pointer: text.to_owned(),
            });
        }
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Ok(ClaimPath {
                pointer: format!("/{text}"),
            });
        }
        Err(refuse())
    }

    /// The value at this path, if any.
    pub fn find<'v>(&self, claims: &'v Value) -> Option<&'v Value> {
        claims.pointer(&self.pointer)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pointer)
    }
}

/// A claim's value as text: a string as it is, a number or boolean as its JSON text; `None` for
/// null, arrays, objects and absent claims.
pub fn text_of(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The text of the claim at `path` (see [`text_of`]).
pub fn text<'v>(claims: &'v Value, path: &ClaimPath) -> Option<Cow<'v, str>> {
    path.find(claims).and_then(text_of)
}

/// Whether the whole of `text` matches `pattern`, whose only special character is `*`: any run of
/// characters, `/` and `:` included. The one glob of claim conditions and workload subject
/// patterns; the classic one-star backtracking walk, at worst the product of the lengths.
pub fn star_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            star = Some((p, t));
            p += 1;
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((at, from)) = star {
            p = at + 1;
            t = from + 1;
            star = Some((at, from + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_name_keys_with_dots_and_slashes() {
        let claims = json!({
            "repository": "acme/app",
            "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "builder"}},
            "a/b": "slash",
            "run": 7,
            "ok": true,
            "groups": ["x"],
        });
        let at = |p: &str| text(&claims, &ClaimPath::parse(p).unwrap()).map(Cow::into_owned);
        assert_eq!(at("repository").as_deref(), Some("acme/app"));
        assert_eq!(at("/repository").as_deref(), Some("acme/app"));
        assert_eq!(at("/kubernetes.io/namespace").as_deref(), Some("ci"));
        assert_eq!(
            at("/kubernetes.io/serviceaccount/name").as_deref(),
            Some("builder")
        );
        assert_eq!(at("/a~1b").as_deref(), Some("slash"));
        assert_eq!(at("run").as_deref(), Some("7"));
        assert_eq!(at("ok").as_deref(), Some("true"));
        assert_eq!(at("groups"), None, "arrays have no text");
        assert_eq!(at("/kubernetes.io"), None, "objects have no text");
        assert_eq!(at("missing"), None);
    }

    #[test]
    fn stars_cross_slashes_and_colons() {
        let g = star_match;
        assert!(g("refs/heads/*", "refs/heads/release/1"));
        assert!(g(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/app:ref:refs/heads/main"
        ));
        assert!(g("*", ""));
        assert!(g("a*b*c", "aXbYbZc"));
        assert!(!g("a*b*c", "aXbYbZ"));
        assert!(!g("refs/heads/main", "refs/heads/main2"));
        assert!(g("**", "x"));
        assert!(!g("a", ""));
        assert!(g("*a", "aaa"));
        assert!(g("é*", "éa"));
    }

    proptest::proptest! {
        /// The one-star walk agrees with a regular expression of the same pattern.
        #[test]
        fn star_match_is_the_regular_expression(pattern in "[ab:/*]{0,6}", text in "[ab:/*]{0,8}") {
            let regex = pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*");
            let expected = regex::Regex::new(&format!("^(?s:{regex})$")).unwrap().is_match(&text);
            proptest::prop_assert_eq!(star_match(&pattern, &text), expected);
        }
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "",
            "kubernetes.io.namespace",
            "/a~2",
            "/a~",
            "/a}",
            "/a b",
            "a/b",
        ] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad}");
        }
        assert!(ClaimPath::parse(&format!("/{}", "a".repeat(300))).is_err());
    }
}
