//! Logging in with directory accounts: search then bind, a direct bind, StartTLS and LDAPS (and a
//! refused certificate), groups from `memberOf`, from group searches and through nested groups,
//! two directories in order, names that try to inject filter terms, the empty password, the
//! verified-credential cache, and local accounts that never reach a directory.

use crate::common::database::Db;
use crate::common::slapd::{Anonymous, Slapd, Tree};
use crate::ldap::setup::{directory, engines, Server};

#[test]
fn search_then_bind_logs_in_and_grants_by_memberof_group() {
    for db in engines() {
        let slapd = Slapd::start();
        let server = Server::start(db, &directory("corp", &slapd, ""));
        assert_eq!(
            server.granted("alice", "alice-pw", "repository:team/app:pull,push"),
            Ok("repository:team/app:pull,push".into()),
            "{db:?}: registry-admins grants team/**\n{}",
            server.portcullis.log()
        );
        assert_eq!(
            server.granted("bob", "bob-pw", "repository:team/app:pull"),
            Ok(String::new()),
            "{db:?}: bob is not an admin"
        );
        assert_eq!(
            server.granted("alice", "wrong", "repository:team/app:pull"),
            Err(401)
        );
        assert_eq!(
            server.granted("nobody", "x", "repository:team/app:pull"),
            Err(401)
        );
        let users = server.portcullis.cli_ok(&["user", "list"], "");
        let alice = users.lines().find(|l| l.starts_with("alice ")).unwrap();
        assert!(alice.contains("ldap:corp"), "{users}");
        assert!(!users.contains("nobody"), "{users}");
        assert!(
            server.portcullis.logged("directory=corp"),
            "audit names the directory"
        );
        let log = slapd.log();
        assert!(
            log.contains("filter=\"(uid=alice)\""),
            "searched by the escaped name:\n{log}"
        );
    }
}

#[test]
fn a_direct_bind_template_logs_in_without_a_search_first() {
    let slapd = Slapd::start_with(Tree::Example, Anonymous::MayRead);
    let entry = format!(
        "[[realms.default.ldap]]\nname = \"corp\"\nurl = \"{}\"\nbind_template = \"uid={{username}},{}\"\ngroup_attribute = \"memberOf\"\n",
        slapd.ldap_url(),
        slapd.people_dn()
    );
    let server = Server::start(Db::Sqlite, &entry);
    let mark = slapd.log_mark();
    assert_eq!(
        server.granted("alice", "alice-pw", "repository:team/app:pull"),
        Ok("repository:team/app:pull".into()),
        "{}",
        server.portcullis.log()
    );
    let log = slapd.log_since(mark);
    let bind = log
        .find("BIND dn=\"uid=alice,ou=people,dc=example,dc=org\"")
        .expect("a bind as the template's DN");
    let search = log
        .find("SRCH base=\"uid=alice")
        .expect("then a read of the entry");
    assert!(bind < search, "bound first:\n{log}");
    assert_eq!(
        server.granted("alice", "nope", "repository:team/app:pull"),
        Err(401)
    );
    assert_eq!(
        server.granted("zed", "nope", "repository:team/app:pull"),
        Err(401)
    );
}

#[test]
fn start_tls_and_ldaps_verify_the_directory_against_its_ca() {
    let slapd = Slapd::start();
    let ca = slapd.ca_file().display().to_string();
    let start_tls = directory(
        "corp",
        &slapd,
        &format!("start_tls = true\nca_file = \"{ca}\""),
    );
    let ldaps = directory("corp", &slapd, &format!("ca_file = \"{ca}\"")).replace(
        &format!("url = \"{}\"", slapd.ldap_url()),
        &format!("url = \"{}\"", slapd.ldaps_url()),
    );
    for entry in [start_tls, ldaps] {
        let server = Server::start(Db::Sqlite, &entry);
        let mark = slapd.log_mark();
        assert_eq!(
            server.granted("alice", "alice-pw", "repository:team/app:pull"),
            Ok("repository:team/app:pull".into()),
            "{entry}\n{}",
            server.portcullis.log()
        );
        let log = slapd.log_since(mark);
        let user_bind = log
            .lines()
            .find(|l| l.contains("BIND dn=\"uid=alice") && l.contains("mech=SIMPLE"))
            .unwrap_or_else(|| panic!("no bind of alice:\n{log}"));
        assert!(
            user_bind.contains("ssf=256"),
            "the password went over TLS: {user_bind}"
        );
        assert!(!log.contains(" ssf=0"), "no clear-text bind:\n{log}");
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused_with_503_and_a_clear_log() {
    let slapd = Slapd::start();
    let other = slapd.other_ca_file().display().to_string();
    let entry = directory("corp", &slapd, &format!("ca_file = \"{other}\""))
        .replace(&slapd.ldap_url(), &slapd.ldaps_url());
    let server = Server::start(Db::Sqlite, &entry);
    let answer = server.token("alice", "alice-pw", "");
    assert_eq!(answer.status, 503, "{}", server.portcullis.log());
    assert!(
        answer.headers.contains("retry-after:"),
        "{}",
        answer.headers
    );
    assert!(
        server.portcullis.logged("invalid peer certificate"),
        "{}",
        server.portcullis.log()
    );
    assert!(server.portcullis.logged("directory corp"));
}

#[test]
fn groups_come_from_group_searches_by_dn_and_by_name_and_through_nesting() {
    let slapd = Slapd::start();
    let groups = format!(
        "group_base = \"{}\"\ngroup_filter = \"(|(member={{dn}})(memberUid={{username}}))\"",
        slapd.groups_dn()
    );
    let no_attribute =
        directory("corp", &slapd, &groups).replace("group_attribute = \"memberOf\"\n", "");
    let server = Server::start(Db::Sqlite, &no_attribute);
    assert_eq!(
        server.granted("carol", "carol-pw", "repository:dev/app:pull"),
        Ok("repository:dev/app:pull".into()),
        "carol is in developers through frontend\n{}",
        server.portcullis.log()
    );
    assert_eq!(
        server.granted("dave", "dave-pw", "repository:ci/app:push"),
        Ok("repository:ci/app:push".into()),
        "dave is in ci by memberUid"
    );
    assert_eq!(
        server.granted("bob", "bob-pw", "repository:dev/app:pull"),
        Ok("repository:dev/app:pull".into())
    );
    let explained = server.portcullis.cli_ok(
        &[
            "policy",
            "explain",
            "--user",
            "carol",
            "--scope",
            "repository:dev/app:pull",
        ],
        "",
    );
    assert!(
        explained.contains("ldap:corp:frontend") && explained.contains("ldap:corp:developers"),
        "{explained}"
    );

    let flat = no_attribute.replace(
        "[[realms.default.ldap]]",
        "[[realms.default.ldap]]\nnested_groups_depth = 0",
    );
    let server = Server::start(Db::Sqlite, &flat);
    assert_eq!(
        server.granted("carol", "carol-pw", "repository:dev/app:pull"),
        Ok(String::new()),
        "without nesting carol is only in frontend"
    );
}

#[test]
fn two_directories_are_tried_in_order_and_an_account_belongs_to_its_directory() {
    let corp = Slapd::start();
    let second = Slapd::start_with(Tree::Second, Anonymous::Refused);
    let entries = format!(
        "{}{}",
        directory("corp", &corp, ""),
        directory("second", &second, "")
    );
    let server = Server::start(Db::Sqlite, &entries);
    assert_eq!(
        server.token("erin", "erin-pw", "").status,
        200,
        "found in the second"
    );
    assert_eq!(
        server.token("alice", "alice-second-pw", "").status,
        401,
        "alice is found in corp first: a wrong password there stops"
    );
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    let users = server.portcullis.cli_ok(&["user", "list"], "");
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("erin ") && l.contains("ldap:second")),
        "{users}"
    );

    // erin appears in corp too: corp now accepts her password first, but her account is second's.
    corp.modify_as_root(&format!(
        "dn: uid=erin,{}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: erin\ncn: erin\nsn: erin\nuserPassword: erin-corp-pw\n",
        corp.people_dn()
    ));
    assert_eq!(server.token("erin", "erin-corp-pw", "").status, 401);
    assert!(
        server
            .portcullis
            .logged("the account was created by directory second"),
        "{}",
        server.portcullis.log()
    );
    server.portcullis.cli_ok(&["user", "delete", "erin"], "");
    assert_eq!(
        server.token("erin", "erin-corp-pw", "").status,
        200,
        "deleted: corp may own it"
    );
}

#[test]
fn names_that_would_inject_filter_terms_never_log_in_nor_reach_the_directory() {
    let slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, ""));
    let mark = slapd.log_mark();
    for (user, password) in [
        ("*)(uid=*", "alice-pw"),
        ("admin)(|(uid=*", "admin-pw"),
        ("*", "alice-pw"),
        ("star*user", "star-pw"),
        ("paren(user)", "paren-pw"),
    ] {
        assert_eq!(server.token(user, password, "").status, 401, "{user}");
    }
    let log = slapd.log_since(mark);
    assert!(
        !log.contains("SRCH"),
        "no search for a name outside the user name alphabet:\n{log}"
    );
    assert!(!log.contains("BIND dn=\"uid="), "{log}");
    assert_eq!(
        server.token("admin", "admin-pw", "").status,
        200,
        "the real admin entry"
    );
}

#[test]
fn an_empty_password_is_refused_before_any_bind() {
    let slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, ""));
    let mark = slapd.log_mark();
    assert_eq!(server.token("alice", "", "").status, 401);
    let log = slapd.log_since(mark);
    assert!(!log.contains("BIND"), "{log}");
    assert!(server.portcullis.logged("empty password"));
}

#[test]
fn a_warm_login_binds_nothing_and_a_local_account_never_reaches_the_directory() {
    let slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, ""));
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    let mark = slapd.log_mark();
    for _ in 0..3 {
        assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    }
    assert_eq!(slapd.log_since(mark), "", "nothing reached the directory");

    server.portcullis.add_user("bob", "local-pw", false);
    let mark = slapd.log_mark();
    assert_eq!(
        server.token("bob", "bob-pw", "").status,
        401,
        "bob is local"
    );
    assert_eq!(server.token("bob", "local-pw", "").status, 200);
    assert_eq!(slapd.log_since(mark), "");

    server.portcullis.cli_ok(&["user", "disable", "alice"], "");
    let mark = slapd.log_mark();
    assert_eq!(
        server.token("alice", "alice-pw", "").status,
        401,
        "disabled here"
    );
    assert_eq!(slapd.log_since(mark), "", "refused before any bind");
    let passwd = server
        .portcullis
        .cli(&["user", "passwd", "alice", "--password-stdin"], "x\n");
    assert!(!passwd.status.success());
    assert!(
        String::from_utf8_lossy(&passwd.stderr).contains("logs in at directory corp"),
        "{passwd:?}"
    );
}

#[test]
fn insecure_skip_verify_connects_to_any_certificate_and_says_so_loudly() {
    let slapd = Slapd::start();
    let entry = directory("corp", &slapd, "insecure_skip_verify = true")
        .replace(&slapd.ldap_url(), &slapd.ldaps_url());
    let server = Server::start(Db::Sqlite, &entry);
    assert!(
        server.portcullis.logged("insecure_skip_verify is set"),
        "at start"
    );
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    assert!(
        server
            .portcullis
            .logged("connecting WITHOUT checking the directory's certificate"),
        "per connection:\n{}",
        server.portcullis.log()
    );
}
