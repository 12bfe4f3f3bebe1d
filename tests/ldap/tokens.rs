//! Directory accounts beyond the login: refresh tokens (docker's offline_token flow and the
//! refresh grant) and access tokens get the account's directory groups, re-read with the service
//! account once older than `groups_refresh_secs` (503 when the directory cannot answer then, 401
//! when the user is gone); `ldap test`, `policy explain` and the metrics.

use std::time::Duration;

use crate::common::jwt::granted_scopes;
use crate::common::slapd::Slapd;
use crate::ldap::setup::{directory, engines, Server};

const TEAM_PULL: &str = "repository%3Ateam%2Fapp%3Apull";

fn refresh(server: &Server, token: &str) -> Result<String, u16> {
    let answer = server.post(&format!(
        "grant_type=refresh_token&client_id=docker&service=registry&refresh_token={token}&scope={TEAM_PULL}"
    ));
    if answer.status != 200 {
        return Err(answer.status);
    }
    Ok(answer.body["scope"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn refresh_tokens_of_directory_users_follow_their_groups_within_the_bound() {
    for db in engines() {
        let mut slapd = Slapd::start();
        let server = Server::start(db, &directory("corp", &slapd, "groups_refresh_secs = 1"));
        let login = server.token(
            "alice",
            "alice-pw",
            "&offline_token=true&client_id=docker&account=alice",
        );
        assert_eq!(login.status, 200, "{db:?}\n{}", server.portcullis.log());
        let token = login.body["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            refresh(&server, &token),
            Ok("repository:team/app:pull".into())
        );

        std::thread::sleep(Duration::from_millis(1_100));
        slapd.stop();
        assert_eq!(
            refresh(&server, &token),
            Err(503),
            "{db:?}: stale groups are never used"
        );
        slapd.start_again();
        assert_eq!(
            refresh(&server, &token),
            Ok("repository:team/app:pull".into())
        );

        // A groupOfNames keeps one member at least: bob replaces alice.
        slapd.modify_as_root(&format!(
            "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\ndelete: member\nmember: {}\n",
            slapd.group_dn("registry-admins"),
            slapd.user_dn("bob"),
            slapd.user_dn("alice")
        ));
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(
            refresh(&server, &token),
            Ok(String::new()),
            "{db:?}: out of the group"
        );

        slapd.modify_as_root(&format!(
            "dn: {}\nchangetype: delete\n",
            slapd.user_dn("alice")
        ));
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(
            refresh(&server, &token),
            Err(401),
            "{db:?}: gone from the directory"
        );
        assert!(server.portcullis.logged("no longer in the directory"));
    }
}

#[test]
fn access_tokens_explain_and_the_offline_password_grant_work_for_directory_users() {
    let slapd = Slapd::start();
    let server = Server::start(
        crate::common::database::Db::Sqlite,
        &directory("corp", &slapd, ""),
    );
    let grant = server.post(&format!(
        "grant_type=password&username=alice&password=alice-pw&client_id=ci&access_type=offline&service=registry&scope={TEAM_PULL}"
    ));
    assert_eq!(grant.status, 200, "{}", server.portcullis.log());
    assert!(grant.body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("pcrt_"));
    assert_eq!(grant.body["scope"], "repository:team/app:pull");

    let secret = server.portcullis.create_access_token("alice", "laptop");
    let with_token = server.token("alice", &secret, &format!("&scope={TEAM_PULL}"));
    assert_eq!(with_token.status, 200);
    assert_eq!(granted_scopes(&with_token.body), "repository:team/app:pull");

    let explained = server.portcullis.cli_ok(
        &[
            "policy",
            "explain",
            "--user",
            "alice",
            "--scope",
            "repository:team/app:push",
        ],
        "",
    );
    assert!(
        explained.contains("directory groups, as last read at"),
        "{explained}"
    );
    assert!(
        explained.contains("ldap:corp:registry-admins"),
        "{explained}"
    );
    assert!(explained.contains("granted"), "{explained}");

    let metrics = crate::common::external::run(
        "curl",
        &["-s", &format!("{}/metrics", server.portcullis.url())],
    );
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("portcullis_ldap_operation_duration_seconds_count{directory=\"corp\",operation=\"bind\"}"),
        "{metrics}"
    );
}

#[test]
fn ldap_test_prints_every_step_of_a_login() {
    let slapd = Slapd::start();
    let server = Server::start(
        crate::common::database::Db::Sqlite,
        &directory("corp", &slapd, ""),
    );
    let found = server
        .portcullis
        .cli_ok(&["ldap", "test", "--user", "alice"], "");
    for needle in [
        "directory corp:",
        &format!("connected to {}", slapd.ldap_url()),
        "TLS: none",
        &format!("service bind as {}: accepted", slapd.service_dn()),
        "search (uid=alice) under ou=people,dc=example,dc=org: found uid=alice,ou=people,dc=example,dc=org",
        "registry-admins -> group:ldap:corp:registry-admins",
        "user found (no password given: no user bind)",
    ] {
        assert!(found.contains(needle), "{needle:?} in:\n{found}");
    }
    let bound = server.portcullis.cli_ok(
        &["ldap", "test", "--user", "alice", "--password-stdin"],
        "alice-pw\n",
    );
    assert!(
        bound.contains("user bind as uid=alice,ou=people,dc=example,dc=org: accepted"),
        "{bound}"
    );
    assert!(!bound.contains("alice-pw"), "{bound}");
    let wrong = server.portcullis.cli_ok(
        &["ldap", "test", "--user", "alice", "--password-stdin"],
        "nope\n",
    );
    assert!(wrong.contains("wrong password"), "{wrong}");
    let users = server.portcullis.cli_ok(&["user", "list"], "");
    assert!(
        !users.contains("alice"),
        "ldap test creates no account:\n{users}"
    );
}
