//! The registry scope grammar (`type[(class)]:name:action[,action]*`), parsed into a [`Scope`] that is
//! valid by construction. It knows only the grammar; what a caller may do with a scope is `policy::authorize`'s job.

use std::collections::BTreeSet;
use std::fmt;

/// Longest scope string accepted (a 255-character repository name plus a `host:port/` prefix, a type
/// and a few actions fit with room to spare).
pub const MAX_SCOPE_LEN: usize = 512;
/// Longest repository name, per the distribution reference grammar.
pub const MAX_REPOSITORY_NAME_LEN: usize = 255;
/// The action that stands for every action (`registry:catalog:*`, `repository:R:*`).
pub const ALL_ACTIONS: &str = "*";
/// The resource type of images.
pub const REPOSITORY: &str = "repository";
/// The resource type of registry-wide resources (`registry:catalog:*`).
pub const REGISTRY: &str = "registry";

/// Why a scope string was refused; the message names the offending scope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed scope {scope:?}: {reason}")]
pub struct ScopeError {
    /// The scope as received, cut to a printable length.
    pub scope: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One requested or granted resource: a type (class dropped), a name and a set of actions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    kind: String,
    name: String,
    actions: BTreeSet<String>,
}

impl Scope {
    /// Parses one scope. Type is the text before the first `:`, actions the text after the last `:`,
    /// the name everything between (so `host:port/` prefixes survive). A `(class)` suffix on the
    /// type is accepted and dropped, as the registry ignores it.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let fail = |reason| ScopeError {
            scope: raw.chars().take(80).collect(),
            reason,
        };
        if raw.len() > MAX_SCOPE_LEN {
            return Err(fail("longer than 512 bytes"));
        }
        let (kind, rest) = raw
            .split_once(':')
            .ok_or_else(|| fail("expected type:name:actions"))?;
        let (name, actions) = rest
            .rsplit_once(':')
            .ok_or_else(|| fail("expected type:name:actions"))?;
        let kind = strip_class(kind).ok_or_else(|| fail("bad resource type"))?;
        if !is_token(kind) {
            return Err(fail("bad resource type"));
        }
        let name_ok = match kind {
            REPOSITORY => is_repository_name(name),
            _ => is_token(name),
        };
        if !name_ok {
            return Err(fail("bad resource name"));
        }
        let mut set = BTreeSet::new();
        for action in actions.split(',') {
            if action != ALL_ACTIONS && !is_token(action) {
                return Err(fail("bad action"));
            }
            set.insert(action.to_owned());
        }
        Ok(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: set,
        })
    }

    /// Builds a scope from parts already known to be valid (a granted subset of a parsed scope).
    pub fn with_actions(&self, actions: BTreeSet<String>) -> Scope {
        Scope {
            kind: self.kind.clone(),
            name: self.name.clone(),
            actions,
        }
    }

    /// The resource type without class: `repository`, `registry`, ...
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The resource name, e.g. `team/app` or `localhost:5000/team/app` or `catalog`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions, sorted and without duplicates.
    pub fn actions(&self) -> &BTreeSet<String> {
        &self.actions
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.kind, self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action)?;
        }
        Ok(())
    }
}

/// Parses every scope in a list of parameter values, each of which may hold several scopes separated
/// by spaces. Scopes naming the same resource are merged (their actions united), so the result has
/// one entry per resource, in first-seen order.
pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes: Vec<Scope> = Vec::new();
    for raw in values
        .into_iter()
        .flat_map(|v| v.split(' '))
        .filter(|s| !s.is_empty())
    {
        let scope = Scope::parse(raw)?;
        match scopes
            .iter_mut()
            .find(|s| s.kind == scope.kind && s.name == scope.name)
        {
            Some(existing) => existing.actions.extend(scope.actions),
            None => scopes.push(scope),
        }
    }
    Ok(scopes)
}

/// `repository(plugin)` -> `repository`; `None` when the parentheses are unbalanced.
fn strip_class(kind: &str) -> Option<&str> {
    match kind.split_once('(') {
        None if !kind.contains(')') => Some(kind),
        Some((bare, class)) => {
            let class = class.strip_suffix(')')?;
            (!class.is_empty() && is_token(class)).then_some(bare)
        }
        None => None,
    }
}

/// A lowercase identifier: `[a-z0-9]+` with `_`, `-` and `.` inside.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

/// A repository name per the distribution reference grammar: an optional `host[:port]/` domain, then
/// `/`-separated path components of lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`;
/// at most 255 characters in all.
pub fn is_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_REPOSITORY_NAME_LEN {
        return false;
    }
    let mut components = name.split('/').peekable();
    let first = components.peek().copied().unwrap_or_default();
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        if !is_domain(first) {
            return false;
        }
        components.next();
        if components.peek().is_none() {
            return false;
        }
    }
    components.all(is_path_component)
}

/// `host` or `host:port`, where host is dot-separated alphanumeric labels with inner hyphens.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok)
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &s[start..i];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(scope: &Scope) -> Vec<&str> {
        scope.actions().iter().map(String::as_str).collect()
    }

    #[test]
    fn parses_plain_repository_scope() {
        let s = Scope::parse("repository:team/app:pull,push").unwrap();
        assert_eq!(s.kind(), "repository");
        assert_eq!(s.name(), "team/app");
        assert_eq!(actions(&s), ["pull", "push"]);
        assert_eq!(s.to_string(), "repository:team/app:pull,push");
    }

    #[test]
    fn keeps_host_and_port_in_the_name() {
        let s = Scope::parse("repository:localhost:5000/foo/bar:pull").unwrap();
        assert_eq!(s.name(), "localhost:5000/foo/bar");
        assert_eq!(actions(&s), ["pull"]);
        let s = Scope::parse("repository:registry.example.org/x:push").unwrap();
        assert_eq!(s.name(), "registry.example.org/x");
    }

    #[test]
    fn drops_the_class() {
        let s = Scope::parse("repository(plugin):vieux/sshfs:pull").unwrap();
        assert_eq!(s.kind(), "repository");
        assert_eq!(s.to_string(), "repository:vieux/sshfs:pull");
    }

    #[test]
    fn catalog_and_wildcards() {
        let s = Scope::parse("registry:catalog:*").unwrap();
        assert_eq!((s.kind(), s.name()), ("registry", "catalog"));
        assert_eq!(actions(&s), ["*"]);
        assert_eq!(
            actions(&Scope::parse("registry:catalog:search").unwrap()),
            ["search"]
        );
        assert_eq!(actions(&Scope::parse("repository:a/b:*").unwrap()), ["*"]);
    }

    #[test]
    fn duplicate_actions_collapse() {
        let s = Scope::parse("repository:a:push,pull,push").unwrap();
        assert_eq!(actions(&s), ["pull", "push"]);
    }

    #[test]
    fn separators_in_names() {
        for ok in ["a.b/c_d/e__f/g-h/i---j", "a", "0/1", "a/b/c/d/e"] {
            assert!(
                Scope::parse(&format!("repository:{ok}:pull")).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "A/b", "a//b", "/a", "a/", "a/_b", "a/b_", "a/b___c", "a/b._c", "a b", "ä/b", ":5000/a",
        ] {
            assert!(
                Scope::parse(&format!("repository:{bad}:pull")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_with_the_scope_named() {
        for bad in [
            "",
            "repository",
            "repository:foo",
            "repository::pull",
            "repository:foo:",
            "repository:foo:pull,,push",
            ":foo:pull",
            "Repository:foo:pull",
            "repository(:foo:pull",
            "repository():foo:pull",
            "repository(x)y:foo:pull",
            "repository:foo:PULL",
            "repository:foo:pu ll",
            "repository:ünïcödé:pull",
            "repository:foo:püll",
            "registry:cat/alog:*",
        ] {
            let err = Scope::parse(bad).unwrap_err();
            assert!(err.to_string().contains("malformed scope"), "{bad}");
        }
        let err = Scope::parse("repository:foo:").unwrap_err();
        assert!(err.to_string().contains("\"repository:foo:\""));
    }

    #[test]
    fn very_long_input_is_refused_cheaply() {
        let long = format!("repository:{}:pull", "a".repeat(10_000));
        let err = Scope::parse(&long).unwrap_err();
        assert_eq!(err.reason, "longer than 512 bytes");
        assert!(err.scope.len() <= 80);
        let just_too_long = format!("repository:{}:pull", "a/".repeat(128) + "a");
        assert!(Scope::parse(&just_too_long).is_err());
    }

    #[test]
    fn parse_all_splits_on_spaces_and_merges() {
        let scopes = parse_all([
            "repository:a:pull repository:b:push",
            "repository:a:push",
            "  registry:catalog:*  ",
        ])
        .unwrap();
        let rendered: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "repository:a:pull,push",
                "repository:b:push",
                "registry:catalog:*"
            ]
        );
        assert!(parse_all(["", " "]).unwrap().is_empty());
        assert!(parse_all(["repository:a:pull garbage"]).is_err());
    }
}
