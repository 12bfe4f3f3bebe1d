//! Importers for the files of other registry token services: Apache `htpasswd` files and
//! cesanta/docker_auth configurations, read into users (with their bcrypt hashes kept as they are)
//! and first-match policy rules. They read text and report; they neither store nor hash anything.
//!
//! What an importer cannot carry over (another hash type, an authentication backend, an ACL
//! condition that rules cannot express) is listed in [`Import::skipped`] with the reason; nothing is
//! dropped silently. Imported bcrypt hashes are checked at login with [`verify_bcrypt`], and the
//! caller replaces them with argon2id after the first successful one. A bcrypt cost above
//! [`MAX_BCRYPT_COST`] is refused like any other line or entry that cannot be carried over: the
//! rest of the file is still imported.

pub mod docker_auth;
pub mod htpasswd;

use serde::Serialize;

use crate::policy::{Evaluation, Rule, SubjectPattern};

/// The bcrypt variants accepted: `$2a$`, `$2b$` and `$2y$` all mean the same algorithm for the
/// passwords a registry client can send (`$2x$`, the marker of crypt_blowfish's bug, is refused).
pub const BCRYPT_PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
/// Length of a bcrypt hash string: `$2y$`, two cost digits, `$`, 22 salt and 31 hash characters.
const BCRYPT_HASH_LEN: usize = 60;
/// Lowest and highest cost bcrypt defines (the exponent of its key-setup rounds).
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;
/// Highest bcrypt cost imported or checked at login. Each step doubles a check's time: with the
/// `bcrypt` crate (release build, AMD EPYC) cost 12 took about 0.5 s, ten argon2id checks at the
/// default parameters, and cost 14 about 2 s; cost 31 would hold a password thread for days.
/// `htpasswd -B` uses cost 5 by default, Go's bcrypt 10.
pub const MAX_BCRYPT_COST: u32 = 14;

/// An account read from another service's file, with its password hash as found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedUser {
    /// A valid Portcullis user name.
    pub name: String,
    /// The bcrypt hash string, unchanged (one of [`BCRYPT_PREFIXES`]).
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

/// Whether `password` matches a bcrypt hash (`$2a$`, `$2b$` or `$2y$`). Like Apache and Go, bcrypt
/// uses only the first 72 bytes of a password. False for anything that is not such a hash, and
/// without computing anything for a cost above [`MAX_BCRYPT_COST`].
pub fn verify_bcrypt(hash: &str, password: &str) -> bool {
    check_bcrypt(hash).is_ok() && bcrypt::verify(password, hash).unwrap_or(false)
}

/// The cost of a well-formed bcrypt hash of an accepted variant whose cost is above
/// [`MAX_BCRYPT_COST`]; `None` for every other string.
pub fn bcrypt_cost_above_max(hash: &str) -> Option<u32> {
    bcrypt_cost(hash)
        .ok()
        .filter(|&cost| cost > MAX_BCRYPT_COST)
}

/// Checks that `hash` is a well-formed bcrypt hash of an accepted variant and of a cost up to
/// [`MAX_BCRYPT_COST`]; the error says what is wrong with it, for the import report.
fn check_bcrypt(hash: &str) -> Result<(), String> {
    let cost = bcrypt_cost(hash)?;
    if cost > MAX_BCRYPT_COST {
        return Err(format!(
            "bcrypt cost {cost} is above the maximum of {MAX_BCRYPT_COST} (each step doubles the \
             time of every login check); add this user with `portcullis user add` instead"
        ));
    }
    Ok(())
}

/// The cost of a well-formed bcrypt hash of an accepted variant (any cost bcrypt defines); the
/// error says what kind of hash it is instead.
fn bcrypt_cost(hash: &str) -> Result<u32, String> {
    if !BCRYPT_PREFIXES.iter().any(|p| hash.starts_with(p)) {
        return Err(format!(
            "{}: only bcrypt hashes can be imported",
            hash_kind(hash)
        ));
    }
    let malformed = || Err(String::from("malformed bcrypt hash"));
    let Some(cost) = hash
        .get(4..6)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
    else {
        return malformed();
    };
    let body = &hash[6..];
    let cost = cost.parse().ok().filter(|c: &u32| BCRYPT_COSTS.contains(c));
    match cost {
        Some(cost)
            if hash.len() == BCRYPT_HASH_LEN
                && body.starts_with('$')
                && body[1..].bytes().all(is_crypt_char) =>
        {
            Ok(cost)
        }
        _ => malformed(),
    }
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

/// The characters of crypt's base64 (salts and hashes of bcrypt and DES crypt).
fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
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
    fn verifies_every_accepted_bcrypt_variant() {
        for prefix in BCRYPT_PREFIXES {
            let hash = format!("{prefix}{}", &ALICE[4..]);
            assert!(verify_bcrypt(&hash, "correct horse"), "{hash}");
            assert!(!verify_bcrypt(&hash, "correct horsE"), "{hash}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_accepted_bcrypt_hash() {
        let twox = format!("$2x${}", &ALICE[4..]);
        for bad in [
            "",
            "correct horse",
            &twox,
            &ALICE[..59],
            "$2y$99$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.",
        ] {
            assert!(!verify_bcrypt(bad, "correct horse"), "{bad}");
        }
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
    fn refuses_costs_above_the_maximum_without_computing_them() {
        let with_cost = |cost: u32| format!("$2y${cost:02}{}", &ALICE[6..]);
        assert_eq!(bcrypt_cost_above_max(&with_cost(MAX_BCRYPT_COST)), None);
        assert_eq!(bcrypt_cost_above_max(&with_cost(4)), None);
        assert_eq!(bcrypt_cost_above_max(ALICE), None);
        assert_eq!(bcrypt_cost_above_max("garbage"), None);
        for cost in [MAX_BCRYPT_COST + 1, 31] {
            let hash = with_cost(cost);
            assert_eq!(bcrypt_cost_above_max(&hash), Some(cost));
            let why = check_bcrypt(&hash).unwrap_err();
            assert!(
                why.starts_with(&format!("bcrypt cost {cost} is above the maximum of 14")),
                "{why}"
            );
            // Cost 31 would take days: returning at all shows nothing was computed.
            assert!(!verify_bcrypt(&hash, "correct horse"));
        }
        assert!(check_bcrypt(&with_cost(MAX_BCRYPT_COST)).is_ok());
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
