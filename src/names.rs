//! Names that are checked once at the edge and trusted everywhere after: [`Username`], [`GroupName`],
//! [`TokenName`] and [`RealmName`], and a realm's [`ServiceName`]s and [`Issuer`].
//! User and realm names are also path components (personal namespaces, `keys/<realm>/`), hence
//! the strict alphabets. Services and issuers reach the registry's YAML, token claims and list
//! output, so neither may hold spaces or control characters.

use std::fmt;

/// Longest user name.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest realm name.
pub const MAX_REALM_NAME_LEN: usize = 64;
/// Longest service name: a DNS name's maximum length, enough for `host:port` names too.
pub const MAX_SERVICE_LEN: usize = 253;
/// Longest issuer URL.
pub const MAX_ISSUER_LEN: usize = 1024;

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct NameError {
    what: &'static str,
    value: String,
    rule: &'static str,
}

const NAME_RULE: &str =
    "use 1-64 of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit";

/// Lowercase letters, digits and inner `.`, `_`, `-` — a user's name is also their repository
/// namespace (`alice/...`), so it must be a valid repository path component.
fn is_name(s: &str, max: usize) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= max
                && alnum(first)
                && alnum(last)
                && bytes
                    .iter()
                    .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        }
        _ => false,
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The only way to build one: checks the documented alphabet and length.
            pub fn parse(value: &str) -> Result<Self, NameError> {
                if is_name(value, $max) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(NameError {
                        what: $what,
                        value: value.chars().take(80).collect(),
                        rule: NAME_RULE,
                    })
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, not `write_str`: list columns (`{:<20}`) need the width honoured.
                f.pad(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

name_type!(
    /// A user's login name: 1-64 of `a-z 0-9 . _ -`, starting and ending with a letter or digit.
    Username,
    "user name",
    MAX_USERNAME_LEN
);
name_type!(
    /// A group's name: same alphabet as [`Username`].
    GroupName,
    "group name",
    MAX_USERNAME_LEN
);
name_type!(
    /// An access token's label, unique per user: same alphabet as [`Username`].
    TokenName,
    "token name",
    MAX_USERNAME_LEN
);
name_type!(
    /// A realm's name, used in URLs and as a key directory: same alphabet as [`Username`].
    RealmName,
    "realm name",
    MAX_REALM_NAME_LEN
);

name_type!(
    /// A directory's name in a realm's `[[realms.R.ldap]]` list: same alphabet as [`Username`]. It
    /// marks the accounts the directory created (`ldap:<name>`) and its default policy groups.
    DirectoryName,
    "directory name",
    MAX_USERNAME_LEN
);

name_type!(
    /// A trusted OIDC issuer's name in a realm's `[[realms.R.oidc]]` list: same alphabet as
    /// [`Username`]. Its principals are `oidc:<name>:<subject>`, its groups `oidc:<name>:<group>`.
    IssuerName,
    "issuer name",
    MAX_USERNAME_LEN
);

/// Prefix of the names and groups of principals proven by an external JWT:
/// `oidc:<issuer name>:<subject>`, `oidc:<issuer name>:<group>`. No [`Username`] contains `:`, so
/// no such principal can be a local account.
pub const OIDC_PREFIX: &str = "oidc:";
/// Longest group value after `oidc:<issuer name>:` and longest workload subject.
pub const MAX_OIDC_VALUE_LEN: usize = 255;

/// Whether `value` can follow `oidc:<issuer name>:` in a workload's name or group: 1 to
/// [`MAX_OIDC_VALUE_LEN`] visible ASCII characters (claims such as `repo:acme/app:ref:refs/heads/main`
/// hold `/` and `:`).
pub fn is_oidc_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_OIDC_VALUE_LEN
        && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Prefix of the policy groups a directory's groups map to by default, and of the source of the
/// accounts a directory created: `ldap:<directory>:<group>`, `ldap:<directory>`.
pub const DIRECTORY_PREFIX: &str = "ldap:";

/// The policy group a directory group maps to by default, `ldap:<directory>:<group>`, with the
/// group's name lowercased and every run of other characters (Active Directory's spaces, say) as
/// one `-`, none at either end: "Registry Users" is `registry-users`. `None` for a name with
/// non-ASCII characters or one that is still not a valid [`GroupName`] (such a group needs an explicit entry in the directory's `group_map`).
pub fn directory_group(directory: &DirectoryName, group: &str) -> Option<String> {
    if !group.is_ascii() {
        return None;
    }
    let mut normal = String::with_capacity(group.len());
    for c in group.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            normal.push(c);
        } else if !normal.ends_with('-') {
            normal.push('-');
        }
    }
    let group = GroupName::parse(normal.trim_matches('-')).ok()?;
    Some(format!("{DIRECTORY_PREFIX}{directory}:{group}"))
}

/// Whether `name` can be the name of a group a policy rule names: a [`GroupName`], or a
/// directory's group `ldap:<directory>:<group>` with both parts valid names, or an OIDC issuer's
/// `oidc:<issuer>:<group>` (see [`is_oidc_value`]).
pub fn is_policy_group(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix(DIRECTORY_PREFIX) {
        return rest.split_once(':').is_some_and(|(directory, group)| {
            DirectoryName::parse(directory).is_ok() && GroupName::parse(group).is_ok()
        });
    }
    if let Some(rest) = name.strip_prefix(OIDC_PREFIX) {
        return rest.split_once(':').is_some_and(|(issuer, group)| {
            IssuerName::parse(issuer).is_ok() && is_oidc_value(group)
        });
    }
    GroupName::parse(name).is_ok()
}

const SERVICE_RULE: &str = "use 1-253 of A-Z, a-z, 0-9, '.', '_', '-', ':', '/', \
                            starting with a letter or digit";

/// A `service` a realm accepts (the registry's `auth.token.service`). The registry compares it as a
/// plain string and clients send it back in a query parameter; the alphabet keeps it one word that
/// is printed unquoted in the registry's YAML: letters, digits and `. _ - : /`, starting with a
/// letter or digit (`registry`, `registry.example.com:5000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    /// The only way to build one: checks the documented alphabet and length.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let allowed =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/');
        let valid = value.len() <= MAX_SERVICE_LEN
            && value
                .as_bytes()
                .first()
                .is_some_and(u8::is_ascii_alphanumeric)
            && value.bytes().all(allowed);
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError {
                what: "service",
                value: value.chars().take(80).collect(),
                rule: SERVICE_RULE,
            })
        }
    }

    /// The service as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl std::str::FromStr for ServiceName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

const ISSUER_RULE: &str = "use an absolute http or https URL (at most 1024 characters, no spaces \
                           or control characters, no user name or password, query or fragment)";

/// A token issuer (the `iss` claim and the registry's `auth.token.issuer`): an absolute `http` or
/// `https` URL with a host, as OpenID Connect requires of issuers (no credentials, query or
/// fragment). Kept exactly as written, since the registry compares it with its own setting as a
/// string; only printable ASCII without spaces is accepted, so it prints as one YAML word.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Issuer(String);

impl Issuer {
    /// The only way to build one: checks the characters, then parses the URL.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let printable =
            value.len() <= MAX_ISSUER_LEN && value.bytes().all(|b| b.is_ascii_graphic());
        let valid = printable
            && url::Url::parse(value).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.has_host()
                    && url.username().is_empty()
                    && url.password().is_none()
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(NameError {
                what: "issuer",
                value: value.chars().take(80).collect(),
                rule: ISSUER_RULE,
            })
        }
    }

    /// The issuer as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl std::str::FromStr for Issuer {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_groups_map_to_policy_groups_by_a_lowercase_name_with_dashes() {
        let corp = DirectoryName::parse("corp").unwrap();
        assert_eq!(
            directory_group(&corp, "Registry-Admins").as_deref(),
            Some("ldap:corp:registry-admins")
        );
        assert_eq!(
            directory_group(&corp, "Domain  Users").as_deref(),
            Some("ldap:corp:domain-users")
        );
        assert_eq!(
            directory_group(&corp, "R&D (Berlin)").as_deref(),
            Some("ldap:corp:r-d-berlin")
        );
        // Still not a name: nothing, unless group_map names it.
        assert_eq!(directory_group(&corp, ""), None);
        assert_eq!(directory_group(&corp, "  "), None);
        assert_eq!(directory_group(&corp, "Ünïcode"), None);
        assert!(is_policy_group("ldap:corp:registry-admins"));
        assert!(is_policy_group("developers"));
        assert!(is_policy_group("oidc:gitlab:acme/platform"));
        assert!(!is_policy_group("oidc:gitlab:a b"));
        assert!(!is_policy_group("oidc:GitLab:x"));
        for bad in [
            "ldap:corp",
            "ldap::x",
            "ldap:corp:a b",
            "LDAP:corp:x",
            "a:b",
        ] {
            assert!(!is_policy_group(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_documented_alphabet() {
        for ok in ["alice", "a", "bob.smith", "ci_bot-2", "0"] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "Alice", "-a", "a-", ".a", "a b", "a:b", "a/b", "ålice", "a\0",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid user name"), "{bad}");
        }
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(RealmName::parse("../etc").is_err());
    }

    #[test]
    fn names_fill_list_columns() {
        let name = Username::parse("bob").unwrap();
        assert_eq!(format!("[{name:<6}]"), "[bob   ]");
        assert_eq!(format!("[{name:>5}]"), "[  bob]");
    }

    #[test]
    fn services_are_one_printable_word() {
        for ok in [
            "registry",
            "registry.example.com:5000",
            "Docker_Registry-2",
            "a/b",
            "0",
        ] {
            assert_eq!(ServiceName::parse(ok).unwrap().to_string(), ok);
        }
        assert!(ServiceName::parse(&"s".repeat(MAX_SERVICE_LEN)).is_ok());
        for bad in [
            "",
            "a b",
            "a\x1b[31mb",
            "a\nb",
            "-a",
            "[x]",
            "*a",
            "a#b",
            "dienst\u{e9}",
            "a\tb",
        ] {
            let err = ServiceName::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid service"), "{bad:?}");
        }
        assert!(ServiceName::parse(&"s".repeat(MAX_SERVICE_LEN + 1)).is_err());
    }

    #[test]
    fn issuers_are_absolute_http_urls_kept_as_written() {
        for ok in [
            "http://x",
            "https://auth.example.com/realms/a",
            "http://127.0.0.1:5001/auth/realms/default/protocol/docker-v2/auth",
            "HTTPS://Auth.Example.com",
        ] {
            assert_eq!(Issuer::parse(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "http://x\nfake line",
            "http://x/\tpath",
            "http://x/a b",
            " http://x",
            "Acme auth server",
            "/relative/path",
            "ftp://x",
            "http://",
            "mailto:a@example.com",
            "http://user:secret@x",
            "http://x/?q=1",
            "http://x/#f",
            "http://\u{e9}.example",
        ] {
            let err = Issuer::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid issuer"), "{bad:?}");
        }
    }
}
