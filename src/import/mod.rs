//! Importers for the files of other registry token services: Apache `htpasswd` files and
//! cesanta/docker_auth configurations, read into users (with their bcrypt hashes kept as they are)
//! and first-match policy rules. They read text and report; they neither store nor hash anything.
//!
//! What an importer cannot carry over (another hash type, an authentication backend, an ACL
//! condition that rules cannot express) is listed in [`Import::skipped`] with the reason; nothing is
//! dropped silently. Imported bcrypt hashes are checked at login by `auth::password::bcrypt`, which
//! replaces them with argon2id after the first successful one. A bcrypt cost above
//! [`MAX_COST`] is refused like any other line or entry that cannot be carried over: the
//! rest of the file is still imported.

pub mod docker_auth;
pub mod htpasswd;

use crate::auth::password::bcrypt::{self, is_crypt_char, HashError, MAX_COST};
use serde::Serialize;

use crate::policy::{Evaluation, Rule, SubjectPattern};

/// An account read from another service's file, with its password hash as found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    /// A valid Portcullis user name.
    pub name: String,
    /// The bcrypt hash string, unchanged (one of [`bcrypt::PREFIXES`]).
    pub password_hash: String,
}

/// Something an importer did not carry over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was: `line 7 (user "bob")`, `ACL entry 3 ("comment")`, `section ldap_auth`.
    pub what: String,
    /// Why it was not carried over, and what that changes.
    pub why: String,
}

/// What an importer read: users, policy rules in order, how those rules combine, and everything
/// that was left out.
#[derive(Debug, Clone)]
pub struct Import {
    /// The accounts to create.
    pub users: Vec<ImportedUser>,
    /// Policy rules, in order.
    pub rules: Vec<Rule>,
    /// How [`Import::rules`] combine; `None` when the source had no authorization rules.
    pub evaluation: Option<Evaluation>,
    /// What was not carried over, in the order found.
    pub skipped: Vec<Skipped>,
}

/// Why a file could not be imported at all (single bad lines and entries are [`Skipped`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The docker_auth file is not YAML, or not of docker_auth's shape.
    #[error("{message}")]
    Yaml {
        /// The parser's message, which names the line and column when it knows them.
        message: String,
        /// Line of the fault, from 1.
        line: Option<usize>,
        /// Column of the fault, from 1.
        column: Option<usize>,
    },
    /// An ACL entry without `match`: docker_auth itself refuses to start with it.
    #[error("ACL entry {entry} has no match: docker_auth would not start with this file")]
    MissingMatch {
        /// The entry's number, from 1.
        entry: usize,
    },
}

impl Import {
    /// The imported rules as a policy file (TOML) that [`crate::policy::Policy::from_toml_str`] reads
    /// back to the same rules, in the same order, with the same evaluation.
    pub fn policy_file(&self, source: &str) -> String {
        let evaluation = match self.evaluation.unwrap_or_default() {
            Evaluation::Union => "union",
            Evaluation::FirstMatch => "first-match",
        };
        let file = PolicyFile {
            evaluation,
            rule: self.rules.iter().map(RuleTable::from).collect(),
        };
        let body = toml::to_string(&file).expect("a policy file serializes");
        // The source on one line, so a path holding a line break cannot end the comment.
        let source = source.replace(['\n', '\r'], " ");
        format!("# Imported from {source} by `portcullis import`.\n{body}")
    }
}

/// A policy file as [`Import::policy_file`] writes it: the keys the policy file reader takes.
#[derive(Serialize)]
struct PolicyFile {
    evaluation: &'static str,
    rule: Vec<RuleTable>,
}

/// One `[[rule]]` table, every key written out.
#[derive(Serialize)]
struct RuleTable {
    subject: String,
    resource: &'static str,
    name: String,
    actions: Vec<&'static str>,
    effect: &'static str,
}

impl From<&Rule> for RuleTable {
    fn from(rule: &Rule) -> RuleTable {
        RuleTable {
            subject: rule.subject().to_string(),
            resource: rule.resource().as_str(),
            name: rule.pattern().to_string(),
            actions: rule.actions().names().collect(),
            effect: rule.effect().as_str(),
        }
    }
}

/// Checks that `hash` is a well-formed bcrypt hash of an accepted variant and of a cost up to
/// [`MAX_COST`]; the error says what is wrong with it, for the import report.
fn check_bcrypt(hash: &str) -> Result<(), String> {
    let cost = bcrypt::cost(hash).map_err(|error| match error {
        HashError::NotBcrypt => format!("{}: only bcrypt hashes can be imported", hash_kind(hash)),
        HashError::Malformed => error.to_string(),
    })?;
    if cost > MAX_COST {
        return Err(format!(
            "bcrypt cost {cost} is above the maximum of {MAX_COST} (each step doubles the \
             time of every login check); add this user with `portcullis user add` instead"
        ));
    }
    Ok(())
}

/// Names the hash type of a non-bcrypt password field, without repeating the field.
fn hash_kind(hash: &str) -> &'static str {
    if hash.starts_with("$apr1$") {
        "Apache MD5 ($apr1$) hash"
    } else if hash.starts_with("{SHA}") {
        "SHA-1 ({SHA}) hash"
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
        "SHA-256/SHA-512 crypt hash"
    } else if hash.starts_with("$2x$") {
        "bcrypt $2x$ hash (made by crypt_blowfish's buggy version)"
    } else if hash.starts_with('$') {
        "unknown crypt hash"
    } else if hash.len() == 13 && hash.bytes().all(is_crypt_char) {
        "DES crypt hash"
    } else {
        "not a known hash (a plain-text password?)"
    }
}

/// Why a name outside Portcullis' user name alphabet is not imported.
const NOT_A_USER_NAME: &str = "not a Portcullis user name (1-64 of a-z, 0-9, '.', '_', '-', \
                               starting and ending with a letter or digit)";

/// Checks a user name against Portcullis' alphabet (that of rule subjects).
fn check_user_name(name: &str) -> Result<(), &'static str> {
    format!("user:{name}")
        .parse::<SubjectPattern>()
        .map(drop)
        .map_err(|_| NOT_A_USER_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `htpasswd -nbB alice 'correct horse'`.
    const ALICE: &str = "$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.";

    #[test]
    fn reports_what_is_not_an_accepted_bcrypt_hash() {
        assert_eq!(
            check_bcrypt("$apr1$X/wSrN0D$DyWmOyujS1TIlFIxGOTlk0").unwrap_err(),
            "Apache MD5 ($apr1$) hash: only bcrypt hashes can be imported"
        );
        assert_eq!(
            check_bcrypt("$2y$05$short").unwrap_err(),
            "malformed bcrypt hash"
        );
        let non_ascii = format!("$2y$05${}é", &ALICE[7..58]);
        assert_eq!(
            check_bcrypt(&non_ascii).unwrap_err(),
            "malformed bcrypt hash"
        );
    }

    #[test]
    fn refuses_costs_above_the_maximum() {
        let with_cost = |cost: u32| format!("$2y${cost:02}{}", &ALICE[6..]);
        for cost in [MAX_COST + 1, 31] {
            let why = check_bcrypt(&with_cost(cost)).unwrap_err();
            assert!(
                why.starts_with(&format!("bcrypt cost {cost} is above the maximum of 14")),
                "{why}"
            );
        }
        assert!(check_bcrypt(&with_cost(MAX_COST)).is_ok());
        assert!(check_bcrypt(ALICE).is_ok());
    }

    #[test]
    fn names_follow_the_portcullis_alphabet() {
        for good in ["alice", "ci-bot", "a", "x.y_z-1"] {
            assert!(check_user_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Alice",
            "-x",
            "x-",
            "a b",
            "john@example.com",
            &"a".repeat(65),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
    }
}
