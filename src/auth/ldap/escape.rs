//! Values placed into LDAP filters (RFC 4515) and distinguished names (RFC 4514), and the
//! templates they are placed into. A name a caller sends is only ever inserted escaped, so it can
//! never add a filter term or a DN component. This module does not parse filters or DNs (the
//! `ldap3` crate checks filters; [`first_rdn_value`] reads the one thing we need from a DN).

use std::fmt::Write;

/// `value` as an RFC 4515 assertion value: `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`,
/// `\5c`, `\00`; every other character stands for itself (UTF-8 is allowed in filters).
pub fn filter_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => {
                let _ = write!(escaped, "\\{:02x}", c as u32);
            }
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `value` as an RFC 4514 attribute value: `"`, `+`, `,`, `;`, `<`, `>`, `=` and `\` get a
/// backslash, as do a leading `#` or space and a trailing space; NUL becomes `\00`.
pub fn dn_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '=' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '#' if i == 0 => escaped.push_str("\\#"),
            ' ' if i == 0 || i == last => escaped.push_str("\\ "),
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// The value of a DN's first RDN when its attribute type is `attribute` (compared without case),
/// unescaped: `developers` for `cn=developers,ou=groups,dc=example,dc=org` and `cn`. `None` for
/// another type, a multi-valued RDN, a hex-encoded (`#...`) value or a malformed DN.
pub fn first_rdn_value(dn: &str, attribute: &str) -> Option<String> {
    let (kind, rest) = dn.split_once('=')?;
    if !kind.trim().eq_ignore_ascii_case(attribute) || rest.starts_with('#') {
        return None;
    }
    let mut value: Vec<u8> = Vec::new();
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b',' => break,
            b'+' => return None,
            b'\\' => {
                let first = bytes.next()?;
                if first.is_ascii_hexdigit() {
                    let second = bytes.next()?;
                    let hex = [first, second];
                    let hex = std::str::from_utf8(&hex).ok()?;
                    value.push(u8::from_str_radix(hex, 16).ok()?);
                } else {
                    value.push(first);
                }
            }
            _ => value.push(b),
        }
    }
    let value = String::from_utf8(value).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A text with named placeholders (`{username}`, `{dn}`), checked once when the settings load;
/// filling it inserts values the caller has escaped for the template's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// The index of the placeholder's name in the list the template was parsed with.
    Placeholder(usize),
}

impl Template {
    /// Parses `text` where `names` are the placeholders it may use; any other `{...}` is refused.
    pub fn parse(text: &str, names: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("an unclosed '{{' in {text:?}"))?;
            let name = &rest[open + 1..open + close];
            let index = names.iter().position(|n| *n == name).ok_or_else(|| {
                let known: Vec<String> = names.iter().map(|n| format!("{{{n}}}")).collect();
                format!(
                    "unknown placeholder {{{name}}}; this setting knows {}",
                    known.join(" and ")
                )
            })?;
            parts.push(Part::Placeholder(index));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Whether the template uses the placeholder at `index` of its names.
    pub fn uses(&self, index: usize) -> bool {
        self.parts.contains(&Part::Placeholder(index))
    }

    /// The text with each placeholder replaced by `values[index]`, already escaped.
    pub fn fill(&self, values: &[&str]) -> String {
        let mut filled = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => filled.push_str(text),
                Part::Placeholder(index) => filled.push_str(values.get(*index).unwrap_or(&"")),
            }
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_cannot_add_filter_terms() {
        assert_eq!(filter_value("alice"), "alice");
        assert_eq!(filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("admin)(|(uid=*"), "admin\\29\\28|\\28uid=\\2a");
        assert_eq!(filter_value("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(filter_value("jürgen"), "jürgen");
        let filter = format!("(uid={})", filter_value("admin)(|(uid=*"));
        let parsed = ldap3::parse_filter(&filter);
        assert!(parsed.is_ok(), "{filter} is one equality test");
        assert!(!filter_value("*)(uid=*)").contains(['*', '(', ')']));
    }

    #[test]
    fn dn_values_cannot_add_dn_components() {
        assert_eq!(dn_value("alice"), "alice");
        assert_eq!(dn_value("x,ou=admins+cn=y"), "x\\,ou\\=admins\\+cn\\=y");
        assert_eq!(dn_value("#1 a "), "\\#1 a\\ ");
        assert_eq!(dn_value(" "), "\\ ");
        assert_eq!(dn_value("a\"b;c<d>e\\f\0"), "a\\\"b\\;c\\<d\\>e\\\\f\\00");
    }

    #[test]
    fn the_first_rdn_value_is_read_unescaped() {
        let name = |dn: &str| first_rdn_value(dn, "cn");
        assert_eq!(
            name("cn=developers,ou=groups,dc=example,dc=org").as_deref(),
            Some("developers")
        );
        assert_eq!(
            name("CN=Domain Admins,CN=Users").as_deref(),
            Some("Domain Admins")
        );
        assert_eq!(name("cn=a\\,b,ou=x").as_deref(), Some("a,b"));
        assert_eq!(name("cn=caf\\c3\\a9,ou=x").as_deref(), Some("café"));
        assert_eq!(name("cn=solo").as_deref(), Some("solo"));
        assert_eq!(name("ou=groups,dc=x"), None);
        assert_eq!(name("cn=a+uid=b,dc=x"), None);
        assert_eq!(name("cn=#04024869"), None);
        assert_eq!(name("cn=,dc=x"), None);
        assert_eq!(name("cn=bad\\"), None);
        assert_eq!(name("nothing"), None);
    }

    #[test]
    fn templates_know_their_placeholders() {
        let names = ["username", "dn"];
        let template = Template::parse("(&(member={dn})(x={username}))", &names).unwrap();
        assert!(template.uses(0) && template.uses(1));
        assert_eq!(template.fill(&["a", "b"]), "(&(member=b)(x=a))");
        let plain = Template::parse("(objectClass=person)", &names).unwrap();
        assert!(!plain.uses(0));
        assert_eq!(plain.fill(&["a", "b"]), "(objectClass=person)");
        let unknown = Template::parse("(uid={user})", &names).unwrap_err();
        assert!(
            unknown.contains("{user}") && unknown.contains("{username}"),
            "{unknown}"
        );
        assert!(Template::parse("(uid={username)", &names).is_err());
    }
}
