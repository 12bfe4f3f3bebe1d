//! Apache `htpasswd` files: one `USER:HASH` a line, as `htpasswd -B` writes them. bcrypt lines
//! become users; every other line that is neither blank nor a `#` comment is reported with its
//! number and the reason. There are no rules in such a file.

use std::collections::HashSet;

use super::{check_bcrypt, check_user_name, Import, ImportedUser, Skipped};

/// What Apache ignores: lines whose first non-blank character is this.
const COMMENT: char = '#';

/// Reads an htpasswd file. Like Apache, it trims each line, ignores blank lines and `#` comments,
/// takes the hash up to the next `:` (later fields are ignored), and lets the first line of a user
/// win. No line makes the whole file fail.
pub fn parse(text: &str) -> Import {
    let mut users = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(COMMENT) {
            continue;
        }
        let number = index + 1;
        let Some((name, rest)) = line.split_once(':') else {
            skipped.push(Skipped {
                what: format!("line {number}"),
                why: "malformed: expected USER:HASH".to_owned(),
            });
            continue;
        };
        let hash = rest.split(':').next().unwrap_or_default();
        let what = format!("line {number} (user {name:?})");
        let verdict = check_user_name(name)
            .map_err(str::to_owned)
            .and_then(|()| check_bcrypt(hash))
            .and_then(|()| {
                if seen.insert(name) {
                    Ok(())
                } else {
                    Err("duplicate user: Apache uses the first line".to_owned())
                }
            });
        match verdict {
            Ok(()) => users.push(ImportedUser {
                name: name.to_owned(),
                password_hash: hash.to_owned(),
            }),
            Err(why) => skipped.push(Skipped { what, why }),
        }
    }
    Import {
        users,
        rules: Vec::new(),
        evaluation: None,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::bcrypt::verify as verify_bcrypt;

    /// Made with `htpasswd -B` (cost 5), `-m`, `-s`, `-p` and `-d`, plus hand-made bad lines.
    const FILE: &str = include_str!("testdata/users.htpasswd");

    #[test]
    fn imports_bcrypt_users_and_reports_every_other_line() {
        let import = parse(FILE);
        let names: Vec<&str> = import.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "ci-bot", "bob"]);
        assert!(import.rules.is_empty());
        assert_eq!(import.evaluation, None);
        let skipped: Vec<(&str, &str)> = import
            .skipped
            .iter()
            .map(|s| (s.what.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                (
                    "line 5 (user \"olduser\")",
                    "Apache MD5 ($apr1$) hash: only bcrypt hashes can be imported"
                ),
                (
                    "line 6 (user \"shauser\")",
                    "SHA-1 ({SHA}) hash: only bcrypt hashes can be imported"
                ),
                (
                    "line 7 (user \"Mallory\")",
                    "not a Portcullis user name (1-64 of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit)"
                ),
                (
                    "line 8 (user \"plain\")",
                    "not a known hash (a plain-text password?): only bcrypt hashes can be imported"
                ),
                (
                    "line 9 (user \"desuser\")",
                    "DES crypt hash: only bcrypt hashes can be imported"
                ),
                ("line 10", "malformed: expected USER:HASH"),
                (
                    "line 11 (user \"alice\")",
                    "duplicate user: Apache uses the first line"
                ),
                ("line 13 (user \"trunc\")", "malformed bcrypt hash"),
            ]
        );
    }

    #[test]
    fn imported_hashes_are_kept_as_written_and_verify() {
        let import = parse(FILE);
        let hash = |name: &str| {
            let user = import.users.iter().find(|u| u.name == name).unwrap();
            user.password_hash.clone()
        };
        assert!(hash("alice").starts_with("$2y$05$"));
        assert!(verify_bcrypt(&hash("alice"), "correct horse"));
        assert!(!verify_bcrypt(&hash("alice"), "second line"));
        assert!(verify_bcrypt(&hash("ci-bot"), "s3cret"));
        assert!(hash("bob").starts_with("$2b$"));
        assert!(verify_bcrypt(&hash("bob"), "correct horse"));
    }

    #[test]
    fn trims_lines_and_ignores_extra_fields() {
        let line =
            "  alice:$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.:Alice A.\r\n";
        let import = parse(&format!("\n   # comment\n{line}"));
        assert_eq!(import.skipped, []);
        assert_eq!(
            import.users,
            [ImportedUser {
                name: "alice".to_owned(),
                password_hash: "$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq."
                    .to_owned(),
            }]
        );
        let empty = parse(":$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.");
        assert!(empty.users.is_empty());
        assert_eq!(empty.skipped[0].what, "line 1 (user \"\")");
    }
}
