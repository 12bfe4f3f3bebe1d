//! The slapd harness itself, through ldap-utils only: binds over each transport, the refused CA,
//! `memberOf`, anonymous access, two directories side by side, and a stop and restart.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use crate::common::external::describe;
use crate::common::slapd::{Anonymous, Slapd, Tree};

/// `ldapwhoami -x -H url [-ZZ] -D dn -w password`, trusting `ca`.
fn whoami(
    slapd: &Slapd,
    url: &str,
    start_tls: bool,
    dn: &str,
    password: &str,
    ca: &std::path::Path,
) -> Output {
    let mut args = vec!["-x", "-H", url, "-D", dn, "-w", password];
    if start_tls {
        args.push("-ZZ");
    }
    slapd.ldap_tool("ldapwhoami", &args, "", ca)
}

fn assert_bound(output: &Output, dn: &str) {
    assert!(output.status.success(), "bind failed: {}", describe(output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("dn:{dn}")
    );
}

/// `ldapsearch -LLL` as the service account over plain LDAP; stdout.
fn search_as_service(slapd: &Slapd, filter: &str, attrs: &[&str]) -> String {
    let url = slapd.ldap_url();
    let service = slapd.service_dn();
    let mut args = vec![
        "-x",
        "-LLL",
        "-H",
        &url,
        "-D",
        &service,
        "-w",
        slapd.service_password(),
        "-b",
        slapd.base_dn(),
        filter,
    ];
    args.extend_from_slice(attrs);
    let output = slapd.ldap_tool("ldapsearch", &args, "", &slapd.ca_file());
    assert!(
        output.status.success(),
        "search {filter} failed: {}",
        describe(&output)
    );
    String::from_utf8(output.stdout).expect("LDIF is UTF-8")
}

#[test]
fn alice_binds_over_ldap_starttls_and_ldaps_and_the_log_shows_tls() {
    let slapd = Slapd::start();
    let alice = slapd.user_dn("alice");
    let ca = slapd.ca_file();

    let mark = slapd.log_mark();
    assert_bound(
        &whoami(&slapd, &slapd.ldap_url(), false, &alice, "alice-pw", &ca),
        &alice,
    );
    assert!(
        slapd
            .log_since(mark)
            .contains("mech=SIMPLE bind_ssf=0 ssf=0"),
        "{}",
        slapd.log()
    );

    for (url, start_tls) in [(slapd.ldap_url(), true), (slapd.ldaps_url(), false)] {
        let mark = slapd.log_mark();
        assert_bound(
            &whoami(&slapd, &url, start_tls, &alice, "alice-pw", &ca),
            &alice,
        );
        let log = slapd.log_since(mark);
        assert!(log.contains("TLS established"), "{url}: {log}");
        assert!(
            log.contains("mech=SIMPLE bind_ssf=0 ssf=256"),
            "{url}: {log}"
        );
    }

    let wrong = whoami(&slapd, &slapd.ldap_url(), false, &alice, "bob-pw", &ca);
    assert_eq!(
        wrong.status.code(),
        Some(49),
        "wrong password: {}",
        describe(&wrong)
    );
}

#[test]
fn a_client_trusting_the_other_ca_refuses_the_server_certificate() {
    let slapd = Slapd::start();
    let alice = slapd.user_dn("alice");
    let other = slapd.other_ca_file();
    for (url, start_tls) in [(slapd.ldap_url(), true), (slapd.ldaps_url(), false)] {
        let refused = whoami(&slapd, &url, start_tls, &alice, "alice-pw", &other);
        assert!(
            !refused.status.success(),
            "{url} accepted: {}",
            describe(&refused)
        );
    }
    assert!(
        !slapd.log().contains("BIND dn="),
        "no bind may reach slapd: {}",
        slapd.log()
    );
}

#[test]
fn the_tree_has_direct_memberof_nested_groups_posix_groups_and_escapable_uids() {
    let slapd = Slapd::start();
    let alice = search_as_service(&slapd, "(uid=alice)", &["memberOf"]);
    assert!(
        alice.contains(&format!("memberOf: {}", slapd.group_dn("registry-admins"))),
        "{alice}"
    );
    assert!(
        !search_as_service(&slapd, "(uid=alice)", &[]).contains("memberOf"),
        "memberOf is operational"
    );

    let carol = search_as_service(&slapd, "(uid=carol)", &["memberOf"]);
    assert!(
        carol.contains(&format!("memberOf: {}", slapd.group_dn("frontend"))),
        "{carol}"
    );
    assert!(
        !carol.contains("developers"),
        "memberOf lists direct groups only: {carol}"
    );
    let nested = search_as_service(
        &slapd,
        &format!("(member={})", slapd.group_dn("frontend")),
        &["cn"],
    );
    assert!(nested.contains("cn: developers"), "{nested}");
    let ci = search_as_service(&slapd, "(memberUid=dave)", &["cn"]);
    assert!(ci.contains("cn: ci"), "{ci}");

    let mark = slapd.log_mark();
    let star = search_as_service(&slapd, r"(uid=star\2auser)", &["uid"]);
    assert!(star.contains("uid: star*user"), "{star}");
    assert!(
        slapd
            .log_since(mark)
            .contains(r#"filter="(uid=star\2Auser)""#),
        "{}",
        slapd.log()
    );
    let paren = search_as_service(&slapd, r"(uid=paren\28user\29)", &["uid"]);
    assert!(paren.contains("uid: paren(user)"), "{paren}");
    assert!(!search_as_service(&slapd, "(uid=*)", &["userPassword"]).contains("userPassword"));
}

#[test]
fn anonymous_search_only_where_allowed_and_two_directories_side_by_side() {
    let closed = Slapd::start();
    let open = Slapd::start_with(Tree::Second, Anonymous::MayRead);
    let anonymous = |slapd: &Slapd| {
        let url = slapd.ldap_url();
        slapd.ldap_tool(
            "ldapsearch",
            &[
                "-x",
                "-LLL",
                "-H",
                &url,
                "-b",
                slapd.base_dn(),
                "(uid=alice)",
                "dn",
            ],
            "",
            &slapd.ca_file(),
        )
    };
    assert_eq!(
        anonymous(&closed).status.code(),
        Some(32),
        "{}",
        describe(&anonymous(&closed))
    );
    let found = anonymous(&open);
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("uid=alice,ou=people,dc=second,dc=org"),
        "{}",
        describe(&found)
    );

    let (first, second) = (closed.user_dn("alice"), open.user_dn("alice"));
    assert_bound(
        &whoami(
            &open,
            &open.ldap_url(),
            false,
            &second,
            "alice-second-pw",
            &open.ca_file(),
        ),
        &second,
    );
    assert_eq!(
        whoami(
            &open,
            &open.ldap_url(),
            false,
            &second,
            "alice-pw",
            &open.ca_file()
        )
        .status
        .code(),
        Some(49)
    );
    assert_bound(
        &whoami(
            &closed,
            &closed.ldap_url(),
            false,
            &first,
            "alice-pw",
            &closed.ca_file(),
        ),
        &first,
    );

    let file = open.service_password_file();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        open.service_password()
    );
}

#[test]
fn stopped_then_started_again_on_the_same_ports_with_the_same_data() {
    let mut slapd = Slapd::start();
    let bob = slapd.user_dn("bob");
    let bind = |slapd: &Slapd| {
        whoami(
            slapd,
            &slapd.ldap_url(),
            false,
            &bob,
            "bob-pw",
            &slapd.ca_file(),
        )
    };
    assert_bound(&bind(&slapd), &bob);

    slapd.stop();
    let down = bind(&slapd);
    assert_eq!(
        down.status.code(),
        Some(255),
        "can't contact: {}",
        describe(&down)
    );

    slapd.start_again();
    assert_bound(&bind(&slapd), &bob);
    slapd.modify_as_root(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {bob}\n",
        slapd.group_dn("registry-admins")
    ));
    let bob_groups = search_as_service(&slapd, "(uid=bob)", &["memberOf"]);
    assert!(
        bob_groups.contains(&slapd.group_dn("registry-admins")),
        "overlay keeps memberOf: {bob_groups}"
    );
}

#[test]
fn a_frozen_directory_accepts_connections_but_never_answers_until_thawed() {
    let slapd = Slapd::start();
    let alice = slapd.user_dn("alice");
    let url = slapd.ldap_url();
    let args = [
        "1",
        "ldapwhoami",
        "-x",
        "-H",
        &url,
        "-D",
        &alice,
        "-w",
        "alice-pw",
    ];
    slapd.freeze();
    let hung = slapd.ldap_tool("timeout", &args, "", &slapd.ca_file());
    assert_eq!(
        hung.status.code(),
        Some(124),
        "timeout kills the hung bind: {}",
        describe(&hung)
    );
    slapd.thaw();
    assert_bound(
        &slapd.ldap_tool("timeout", &args, "", &slapd.ca_file()),
        &alice,
    );
}
