//! Names that are checked once at the edge and trusted everywhere after: [`Username`], [`GroupName`],
//! [`TokenName`] and [`RealmName`].
//! User and realm names are also path components (personal namespaces, `keys/<realm>/`), hence
//! the strict alphabets.

use std::fmt;

/// Longest user name.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest realm name.
pub const MAX_REALM_NAME_LEN: usize = 64;

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
                f.write_str(&self.0)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
