//! cesanta/docker_auth configuration files: the static `users` (bcrypt) become users and the static
//! `acl` becomes first-match rules deciding every repository and catalog scope as docker_auth does.
//! Every other section, and every entry or part of one that rules cannot express, is reported.
//!
//! # docker_auth's semantics, as its code has them
//!
//! - Each requested scope is decided on its own (`Authorize` in `auth_server/server/server.go`):
//!   the first ACL entry whose `match` holds decides it (`aclAuthorizer.Authorize` in
//!   `auth_server/authz/acl.go`), granting the requested actions the entry lists (all of them when
//!   the list is exactly `["*"]`), so `[]` denies and later entries are never consulted for that
//!   scope. No matching entry grants nothing (other authorization backends aside).
//! - `match` holds `account`, `type`, `name`, `service`, `ip` and `labels`; an absent key matches
//!   anything. A value `/RE/` (longer than two characters) is a Go regular expression searched
//!   anywhere in the value, unanchored; any other value is a Go `path.Match` glob of the whole
//!   value, where `*` and `?` never match `/` (so `a/*` matches `a/b` but not `a/b/c`), `[...]` is
//!   a character class (which can match `/`) and `\` escapes; a malformed glob matches nothing
//!   (`matchString`). `path.Match` takes each piece after a `*` at its first fit and never tries
//!   another, which only matters when a class that can match `/` sits between two `*`.
//! - Before matching, `${account}`, `${type}`, `${name}` and `${service}` are replaced by the
//!   request's values with regex metacharacters escaped (so they match literally), `${account:N}`
//!   by group N of the `account` regex applied to the account, and `${labels:L}` by each value of
//!   the user's label L in turn (`MatchConditions.Matches`, `matchStringWithLabelPermutations`).
//! - `labels: {L: PATTERN}` holds when some value of the user's label L matches (`matchLabels`).
//! - The static users (`auth_server/authn/static_auth.go`) are checked with Go's bcrypt; an entry
//!   without a password accepts any password, and the `""` entry lets anonymous callers in, whose
//!   account is then the empty string.
//!
//! # The translation
//!
//! Each entry becomes rules, in entry order, that match exactly what it matched: one per scope type
//! it can match (`repository`, and `registry`, whose one resource is `catalog`), each an allow of
//! the listed actions valid for that type or, when none is, a deny of `*`. The account condition
//! becomes the subject: `user:NAME` for a literal name, `anonymous` for `""`, `authenticated` or
//! `any` for patterns every account name matches; any other account pattern, a `labels` condition,
//! and `${account:N}` or `${labels:L}` in the name are resolved against the imported users into
//! `user:` rules, as labels and the accounts of later users are unknown to rules. Globs become
//! Portcullis globs (`*` stays within a segment) or, with `?`, classes or escapes, `re:` patterns;
//! regexes become anchored `re:` patterns that search like Go's.
//!
//! Entries on `ip` or `service`, with `${name}` or `${service}`, with such a class between two `*`,
//! or with a regex the regex crate reads otherwise than Go (or not at all) cannot be expressed and
//! are left out; as the first match decides, the scopes they decided then fall to later rules, and
//! the report says so. An `actions` list with `*` beside other actions grants `*` only to a request for
//! `*` in docker_auth; rules cannot say that, so such requests are refused (reported). Requested
//! actions no rule type has are never granted, where docker_auth's `["*"]` echoes them.

mod config;
mod go;
mod translate;

use std::collections::BTreeMap;

use config::{section_skipped, yaml_error, Config, UserEntry};
use translate::{translate, Principal};

use super::{check_bcrypt, check_user_name, Import, ImportError, ImportedUser, Skipped};
use crate::policy::Evaluation;

/// Reads a docker_auth configuration. Malformed YAML, or YAML not of docker_auth's shape, is an
/// error naming the line and column; so is an ACL entry without `match`, which docker_auth
/// refuses too. Everything else that cannot be carried over is in [`Import::skipped`].
pub fn parse(yaml: &str) -> Result<Import, ImportError> {
    let config: Config = yaml_serde::from_str(yaml).map_err(yaml_error)?;
    let sections: yaml_serde::Mapping = yaml_serde::from_str(yaml).map_err(yaml_error)?;
    let mut skipped: Vec<Skipped> = sections.keys().filter_map(section_skipped).collect();

    let no_users = BTreeMap::new();
    let users = config.users.as_ref().unwrap_or(&no_users);
    let mut imported = Vec::new();
    let mut principals = Vec::new();
    let mut anonymous = false;
    for (name, entry) in users {
        match read_user(name, entry.as_ref()) {
            Ok(user) => {
                let entry = user.entry;
                if let Some(hash) = user.password_hash {
                    imported.push(ImportedUser {
                        name: name.clone(),
                        password_hash: hash,
                    });
                } else {
                    anonymous = true;
                }
                if !entry.labels.is_empty() {
                    skipped.push(Skipped {
                        what: user_what(name),
                        why: format!(
                            "labels ({}) are not kept: Portcullis has none; ACL entries using \
                             them were resolved into rules for this user, which do not follow \
                             later label changes",
                            entry.labels.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
                principals.push(Principal {
                    account: name,
                    labels: &entry.labels,
                });
            }
            Err(why) => skipped.push(Skipped {
                what: user_what(name),
                why,
            }),
        }
    }

    let mut rules = Vec::new();
    for (index, entry) in config.acl.iter().flatten().enumerate() {
        let number = index + 1;
        let conditions = entry
            .conditions
            .as_ref()
            .ok_or(ImportError::MissingMatch { entry: number })?;
        let what = match &entry.comment {
            Some(comment) => format!("ACL entry {number} ({comment:?})"),
            None => format!("ACL entry {number}"),
        };
        let notes = match translate(conditions, entry.actions.as_deref(), &principals, anonymous) {
            Ok((entry_rules, notes)) => {
                rules.extend(entry_rules);
                notes
            }
            Err(unmapped) => vec![unmapped.into_reason()],
        };
        skipped.extend(notes.into_iter().map(|why| Skipped {
            what: what.clone(),
            why,
        }));
    }

    Ok(Import {
        users: imported,
        rules,
        evaluation: config.acl.is_some().then_some(Evaluation::FirstMatch),
        skipped,
    })
}

fn user_what(name: &str) -> String {
    if name.is_empty() {
        "user \"\" (anonymous)".to_owned()
    } else {
        format!("user {name:?}")
    }
}

/// A static user that is carried over: with its hash, or the anonymous entry without one.
struct ReadUser<'a> {
    entry: &'a UserEntry,
    password_hash: Option<String>,
}

/// Why an anonymous entry with a password is not carried over.
const ANONYMOUS_WITH_PASSWORD: &str =
    "an anonymous entry with a password cannot be carried over; anonymous callers get nothing";
/// Why a user without a password is not carried over.
const NO_PASSWORD: &str = "has no password (docker_auth lets anyone in as this user with any \
                           password); only users with a bcrypt password are imported";

fn read_user<'a>(name: &str, entry: Option<&'a UserEntry>) -> Result<ReadUser<'a>, String> {
    let entry = entry.ok_or("has no settings, so docker_auth does not accept it")?;
    match (name.is_empty(), &entry.password) {
        (true, None) => Ok(ReadUser {
            entry,
            password_hash: None,
        }),
        (true, Some(_)) => Err(ANONYMOUS_WITH_PASSWORD.to_owned()),
        (false, None) => Err(NO_PASSWORD.to_owned()),
        (false, Some(hash)) => {
            check_user_name(name)?;
            check_bcrypt(hash)?;
            Ok(ReadUser {
                entry,
                password_hash: Some(hash.clone()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::translate::MAX_LABEL_COMBINATIONS;
    use super::*;
    use crate::auth::password::bcrypt::verify as verify_bcrypt;
    use crate::policy::{Policy, Subject};
    use crate::scope::Scope;

    /// Modelled on docker_auth's `examples/reference.yml`; its ACL entries are numbered in comments.
    const CONFIG: &str = include_str!("../testdata/docker_auth.yml");

    fn policy(import: &Import) -> Policy {
        assert_eq!(import.evaluation, Some(Evaluation::FirstMatch));
        Policy::new(Evaluation::FirstMatch, import.rules.iter().cloned())
    }

    /// What Portcullis grants `account` (`""`: anonymous) of `scope`, as a scope string.
    fn granted(policy: &Policy, account: &str, scope: &str) -> Option<String> {
        let subject = if account.is_empty() {
            Subject::anonymous()
        } else {
            Subject::account(account, &[])
        };
        let scope = Scope::parse(scope).unwrap();
        policy
            .decide(&subject, &scope)
            .into_granted()
            .map(|s| s.to_string())
    }

    fn import(yaml: &str) -> Import {
        parse(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules(import: &Import) -> Vec<String> {
        import.rules.iter().map(ToString::to_string).collect()
    }

    fn reasons(import: &Import) -> Vec<(&str, &str)> {
        import
            .skipped
            .iter()
            .map(|s| (s.what.as_str(), s.why.as_str()))
            .collect()
    }

    /// (account, requested scope, what docker_auth grants, the entry of `CONFIG` that decides it),
    /// worked out from `aclAuthorizer.Authorize` and `matchString` in docker_auth's
    /// `auth_server/authz/acl.go`, for requests from an address entry 1 does not match.
    const DOCKER_AUTH_DECISIONS: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "admin",
            "repository:any/thing/deep:pull,push,delete",
            Some("repository:any/thing/deep:delete,pull,push"),
            "2",
        ),
        ("admin", "repository:x:*", Some("repository:x:*"), "2"),
        (
            "admin",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "2",
        ),
        (
            "test",
            "repository:test-app:pull,push",
            Some("repository:test-app:pull,push"),
            "3",
        ),
        (
            "test",
            "repository:test-a/b:pull",
            None,
            "4: * stays within a segment",
        ),
        ("test", "repository:test/app:pull", None, "4, before 8"),
        ("test", "registry:catalog:*", None, "4"),
        (
            "ci-builder",
            "repository:builds/app:pull,push,delete",
            Some("repository:builds/app:pull,push"),
            "5",
        ),
        (
            "ci-builder",
            "repository:mirror/builds/app:pull,push",
            Some("repository:mirror/builds/app:pull"),
            "14: ^ anchors",
        ),
        ("ci-builder", "repository:builds:push", None, "14"),
        (
            "ci-builder",
            "repository:ci-builder/cache:push",
            Some("repository:ci-builder/cache:push"),
            "8",
        ),
        (
            "ci-builder",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "9",
        ),
        (
            "bob",
            "repository:x/tmpfiles:delete",
            Some("repository:x/tmpfiles:delete"),
            "6: unanchored",
        ),
        (
            "bob",
            "repository:tmp:pull,push",
            Some("repository:tmp:pull"),
            "6",
        ),
        (
            "bob",
            "repository:secret/tmp:pull",
            Some("repository:secret/tmp:pull"),
            "6, before 12",
        ),
        (
            "bob",
            "repository:shared/tools:pull,push",
            Some("repository:shared/tools:pull"),
            "7",
        ),
        (
            "bob",
            "repository:shared/a/b:pull",
            Some("repository:shared/a/b:pull"),
            "14",
        ),
        (
            "bob",
            "repository:bob/app:delete",
            Some("repository:bob/app:delete"),
            "8",
        ),
        (
            "bob",
            "repository:bob:pull,push",
            Some("repository:bob:pull"),
            "14",
        ),
        ("bob", "repository:secret/keys:pull", None, "12"),
        (
            "bob",
            "repository:library/alpine:pull,push",
            Some("repository:library/alpine:pull"),
            "14",
        ),
        ("bob", "repository:library/alpine:*", None, "14"),
        ("bob", "repository:vip/app:push", None, "14: labels"),
        ("bob", "registry:catalog:*", Some("registry:catalog:*"), "9"),
        (
            "alice",
            "repository:alice/app:*",
            Some("repository:alice/app:*"),
            "8",
        ),
        (
            "alice",
            "repository:vip/app:push,delete",
            Some("repository:vip/app:push"),
            "10",
        ),
        (
            "alice",
            "repository:web-shared/site:push",
            Some("repository:web-shared/site:push"),
            "11",
        ),
        (
            "alice",
            "repository:api-shared/x:pull,push",
            Some("repository:api-shared/x:pull,push"),
            "11",
        ),
        ("alice", "repository:api-shared/x/y:push", None, "14"),
        ("alice", "repository:secret/keys:pull", None, "12"),
        (
            "alice",
            "repository:library/alpine:pull",
            Some("repository:library/alpine:pull"),
            "14",
        ),
        (
            "alice",
            "registry:catalog:*",
            Some("registry:catalog:*"),
            "9",
        ),
        (
            "",
            "repository:hello-world:pull,push",
            Some("repository:hello-world:pull"),
            "15",
        ),
        (
            "",
            "repository:public/alpine:pull",
            Some("repository:public/alpine:pull"),
            "16",
        ),
        (
            "",
            "repository:pubxic/alpine:pull",
            Some("repository:pubxic/alpine:pull"),
            "16: ?",
        ),
        (
            "",
            "repository:pub/ic/alpine:pull",
            None,
            "none: ? is not /",
        ),
        ("", "repository:public/a/b:pull", None, "none"),
        ("", "repository:library/alpine:pull", None, "none"),
        ("", "repository:vip/app:pull", None, "none"),
        ("", "registry:catalog:*", None, "none"),
    ];

    #[test]
    fn decides_every_scope_as_docker_auth_does() {
        let policy = policy(&import(CONFIG));
        for &(account, scope, expected, entry) in DOCKER_AUTH_DECISIONS {
            assert_eq!(
                granted(&policy, account, scope).as_deref(),
                expected,
                "{account:?} asking {scope} (entry {entry})"
            );
        }
    }

    #[test]
    fn translates_entry_by_entry_in_order() {
        assert_eq!(
            rules(&import(CONFIG)),
            [
                r#"allow * on repository "**" to user:admin"#,
                r#"allow * on registry "**" to user:admin"#,
                r#"allow * on repository "test-*" to user:test"#,
                r#"deny * on repository "**" to user:test"#,
                r#"deny * on registry "**" to user:test"#,
                r#"allow pull,push on repository "re:builds\\/.*" to user:ci-builder"#,
                r#"allow pull,delete on repository "re:.*tmp.*" to user:bob"#,
                r#"allow pull on repository "shared/*" to user:bob"#,
                r#"allow * on repository "${account}/*" to authenticated"#,
                r#"allow * on registry "catalog" to authenticated"#,
                r#"allow pull,push on repository "vip/*" to user:alice"#,
                r#"allow pull,push on repository "api-shared/*" to user:alice"#,
                r#"allow pull,push on repository "web-shared/*" to user:alice"#,
                r#"deny * on repository "secret/*" to authenticated"#,
                r#"allow pull on repository "**" to authenticated"#,
                r#"deny * on registry "**" to authenticated"#,
                r#"allow pull on repository "hello-world" to anonymous"#,
                r#"allow pull on repository "re:pub[^/]ic/[^/]*" to anonymous"#,
            ]
        );
    }

    #[test]
    fn reports_everything_not_carried_over() {
        let import = import(CONFIG);
        let later = "; the scopes it decided now fall to the entries after it";
        let nothing = "; leaving it out changes no decision";
        let expected: Vec<(&str, String)> = vec![
            ("section server", "not imported: Portcullis has its own settings for this".into()),
            ("section token", "not imported: Portcullis has its own settings for this".into()),
            ("section ldap_auth", "authentication backend Portcullis does not have: its users are not imported and cannot log in".into()),
            ("section acl_mongo", "authorization backend Portcullis does not have: docker_auth asked it about the scopes no ACL entry matched, which Portcullis now refuses".into()),
            ("section retention_days", "not a docker_auth setting (docker_auth ignores it too)".into()),
            ("user \"Carol\"", "not a Portcullis user name (1-64 of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit)".into()),
            ("user \"alice\"", "labels (group, project) are not kept: Portcullis has none; ACL entries using them were resolved into rules for this user, which do not follow later label changes".into()),
            ("user \"guest\"", "has no password (docker_auth lets anyone in as this user with any password); only users with a bcrypt password are imported".into()),
            ("user \"legacy\"", "Apache MD5 ($apr1$) hash: only bcrypt hashes can be imported".into()),
            ("ACL entry 1 (\"Allow everything from localhost (IPv4)\")", format!("matches on the client address (ip \"127.0.0.0/8\"), which rules cannot express{later}")),
            ("ACL entry 5 (\"CI bots push builds\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:ci-builder, so accounts added later get nothing from it".into()),
            ("ACL entry 7", "its \"*\" beside other actions is not kept: docker_auth grants \"*\" there only to a request for \"*\" itself, which rules cannot express, so such requests are now refused".into()),
            ("ACL entry 10 (\"Users in group vip can push to vip/*\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:alice, so accounts added later get nothing from it".into()),
            ("ACL entry 11 (\"Users can push to the shared namespace of any project they are in\")", "its account and label conditions are not kept: they were resolved against the imported accounts into rules for user:alice, so accounts added later get nothing from it".into()),
            ("ACL entry 13", format!("matches on the registry's service name (service \"other-registry\"), which rules cannot express{later}")),
            ("ACL entry 17 (\"Emit domain part of account to make it a correct repo name\")", format!("it matches none of the imported accounts{nothing}")),
            ("ACL entry 18", format!("type \"plugin\" matches neither repository nor registry, and Portcullis grants no other scope type{nothing}")),
            ("ACL entry 19", format!("${{name}} in name is not something rules can express{later}")),
        ];
        let expected: Vec<(&str, &str)> = expected.iter().map(|(w, y)| (*w, y.as_str())).collect();
        assert_eq!(reasons(&import), expected);
    }

    /// The policy file `import docker-auth --policy-out` writes reads back to the same rules in
    /// the same order, with first-match evaluation, whatever the source's name holds.
    #[test]
    fn the_policy_file_reads_back_to_the_same_rules() {
        let import = import(CONFIG);
        let text = import.policy_file("/etc/\"docker_auth\"\n[[rule]]\\.yml");
        assert!(
            text.starts_with("# Imported from /etc/\"docker_auth\" [[rule]]\\.yml by"),
            "{text}"
        );
        let read = Policy::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(read.evaluation(), Evaluation::FirstMatch);
        let read: Vec<String> = read.rules().map(ToString::to_string).collect();
        assert_eq!(read, rules(&import));
    }

    #[test]
    fn users_keep_their_bcrypt_hashes() {
        let import = import(CONFIG);
        let names: Vec<&str> = import.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["admin", "alice", "bob", "ci-builder", "test"]);
        for (name, password) in [
            ("admin", "badmin"),
            ("test", "123"),
            ("alice", "wonderland"),
        ] {
            let user = import.users.iter().find(|u| u.name == name).unwrap();
            assert!(user.password_hash.starts_with("$2y$05$"));
            assert!(verify_bcrypt(&user.password_hash, password), "{name}");
            assert!(!verify_bcrypt(&user.password_hash, "wrong"), "{name}");
        }
    }

    #[test]
    fn a_star_beside_other_actions_is_no_longer_granted_alone() {
        // docker_auth grants "*" here (entry 7 intersects {"*"} with ["pull", "*"]); rules cannot.
        let policy = policy(&import(CONFIG));
        assert_eq!(granted(&policy, "bob", "repository:shared/tools:*"), None);
    }

    #[test]
    fn anonymous_callers_need_the_empty_user() {
        let yaml = r#"
users:
  alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}
acl:
  - match: {account: ""}
    actions: ["pull"]
  - match: {name: "hello-world"}
    actions: ["pull"]
"#;
        let import = import(yaml);
        assert_eq!(
            rules(&import),
            [r#"allow pull on repository "hello-world" to authenticated"#]
        );
        assert_eq!(
            reasons(&import),
            [(
                "ACL entry 1",
                "account \"\" (anonymous) never gets this far: users has no \"\" entry, so \
                 docker_auth refuses anonymous callers; leaving it out changes no decision"
            )]
        );
        let with_anonymous = yaml.replace("acl:", "  \"\": {}\nacl:");
        assert_eq!(
            rules(&self::import(&with_anonymous)),
            [
                r#"allow pull on repository "**" to anonymous"#,
                r#"deny * on registry "**" to anonymous"#,
                r#"allow pull on repository "hello-world" to any"#,
            ]
        );
    }

    #[test]
    fn an_account_placeholder_for_everyone_takes_the_empty_account_for_anonymous() {
        // docker_auth replaces ${account} by "" for anonymous callers, so /^${account}/ is /^/.
        let import = import(
            r#"
users: {"": {}, alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}}
acl:
  - match: {name: "/^${account}/"}
    actions: ["pull"]
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow pull on repository "re:${account}.*" to authenticated"#,
                r#"deny * on registry "re:${account}.*" to authenticated"#,
                r#"allow pull on repository "re:.*" to anonymous"#,
                r#"deny * on registry "re:.*" to anonymous"#,
            ]
        );
        let policy = policy(&import);
        assert_eq!(
            granted(&policy, "", "repository:library/alpine:pull").as_deref(),
            Some("repository:library/alpine:pull")
        );
        assert_eq!(
            granted(&policy, "alice", "repository:alice-tools:pull").as_deref(),
            Some("repository:alice-tools:pull")
        );
        assert_eq!(granted(&policy, "alice", "repository:bob/x:pull"), None);
    }

    #[test]
    fn capture_groups_and_label_values_are_resolved_per_user() {
        let import = import(
            r#"
users:
  web-bot: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}
  db-bot: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu", labels: {tier: [prod, dev]}}
  alice: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu", labels: {tier: [dev]}}
acl:
  - match: {account: "/^(.+)-bot$/", name: "${account:1}/*"}
    actions: ["push"]
  - match: {account: "/^(.+)-bot$/", name: "${account:1}-${labels:tier}/*"}
    actions: ["pull"]
  - match: {account: "/^(.+)-bot$/", name: "${account:2}/*"}
    actions: ["delete"]
  - match: {labels: {tier: "/^d/"}, type: "repository"}
    actions: ["pull"]
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow push on repository "db/*" to user:db-bot"#,
                r#"allow push on repository "web/*" to user:web-bot"#,
                r#"allow pull on repository "db-dev/*" to user:db-bot"#,
                r#"allow pull on repository "db-prod/*" to user:db-bot"#,
                r#"allow pull on repository "**" to user:alice"#,
                r#"allow pull on repository "**" to user:db-bot"#,
            ]
        );
        let skipped: Vec<(&str, &str)> = reasons(&import)
            .into_iter()
            .filter(|(what, _)| what.starts_with("ACL"))
            .collect();
        assert_eq!(skipped[1].0, "ACL entry 2");
        assert!(
            skipped[1]
                .1
                .ends_with("rules for user:db-bot, so accounts added later get nothing from it"),
            "{skipped:?}"
        );
        assert_eq!(
            skipped[2],
            (
                "ACL entry 3",
                "it matches none of the imported accounts; leaving it out changes no decision"
            )
        );
    }

    #[test]
    fn label_combinations_are_capped() {
        let values: Vec<String> = (0..9).map(|i| format!("v{i}")).collect();
        let yaml = format!(
            "users:\n  alice: {{password: \"$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu\", \
             labels: {{a: [{0}], b: [{0}]}}}}\nacl:\n  - match: {{name: \"${{labels:a}}/${{labels:b}}\"}}\n    actions: [pull]\n",
            values.join(", ")
        );
        let import = import(&yaml);
        assert!(import.rules.is_empty());
        let why = &import.skipped.last().unwrap().why;
        assert!(
            why.contains(&format!("more than {MAX_LABEL_COMBINATIONS} combinations")),
            "{why}"
        );
    }

    #[test]
    fn actions_map_per_scope_type() {
        let import = import(
            r#"
users: {bob: {password: "$2y$05$Gp1BgF3kOjqs3sAK2d6tV.b1FCtElLMGXK0QcbuivLZr5QDYHoZwu"}}
acl:
  - match: {account: bob, type: "re*", name: "${type}-*"}
    actions: [pull, search, frobnicate]
  - match: {account: bob, name: "c?talog"}
    actions: [pull]
  - match: {account: bob}
"#,
        );
        assert_eq!(
            rules(&import),
            [
                r#"allow pull on repository "repository-*" to user:bob"#,
                r#"allow pull on repository "re:c[^/]talog" to user:bob"#,
                r#"deny * on registry "re:c[^/]talog" to user:bob"#,
                r#"deny * on repository "**" to user:bob"#,
                r#"deny * on registry "**" to user:bob"#,
            ]
        );
        assert_eq!(
            reasons(&import),
            [
                (
                    "ACL entry 1",
                    r#"actions ["frobnicate"] are not kept: no scope type it matches has them"#
                ),
                (
                    "ACL entry 3",
                    "has no actions, so docker_auth fails the whole request when it matches; \
                     imported as a deny of the scope"
                ),
            ]
        );
    }

    /// A user whose bcrypt cost is above the maximum is listed, not imported; the others are.
    #[test]
    fn a_too_costly_password_is_not_imported() {
        let import = import(
            "users:\n  \"fast\":\n    password: \"$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC\"\n  \
             \"slow\":\n    password: \"$2y$31$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC\"\n",
        );
        let names: Vec<&str> = import.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["fast"]);
        let reasons = reasons(&import);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(reasons[0].0, "user \"slow\"");
        assert!(
            reasons[0]
                .1
                .starts_with("bcrypt cost 31 is above the maximum of 14"),
            "{reasons:?}"
        );
    }

    #[test]
    fn an_entry_without_match_is_an_error() {
        let error = parse("acl:\n  - actions: [pull]\n").unwrap_err();
        assert!(
            matches!(error, ImportError::MissingMatch { entry: 1 }),
            "{error}"
        );
    }

    #[test]
    fn malformed_yaml_is_an_error_with_line_and_column() {
        let error = parse("users:\n  alice: {password: \"x\"\nacl: []\n").unwrap_err();
        let ImportError::Yaml {
            line,
            column,
            message,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!((*line, *column), (Some(3), Some(1)), "{message}");
        assert!(message.contains("at line 3 column 1"), "{message}");

        let error = parse("acl:\n  - match: {account: [a, b]}\n    actions: [pull]\n").unwrap_err();
        let ImportError::Yaml { line, message, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(*line, Some(2), "{message}");
        assert!(message.contains("acl[0].match.account"), "{message}");

        let error = parse("- users\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: sequence, expected struct Config at line 1 column 1"
        );
        let error = parse("users:\n  bob: {}\n  bob: {}\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("duplicate entry with key \"bob\" at line 2"),
            "{error}"
        );
    }
}
