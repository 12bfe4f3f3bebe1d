//! A directory that stops, hangs or is attacked: 503 with Retry-After within the timeouts (never
//! 401, never a hang), recovery once it is back, and the lockout counting wrong directory
//! passwords as it counts local ones.

use std::time::{Duration, Instant};

use crate::common::database::Db;
use crate::common::external::free_port;
use crate::common::slapd::Slapd;
use crate::ldap::setup::{directory, Server};

const TIMEOUTS: &str = "connect_timeout_ms = 1000\noperation_timeout_ms = 1000";

#[test]
fn a_stopped_directory_answers_503_until_it_is_back_and_cached_logins_go_on() {
    let mut slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, TIMEOUTS));
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    slapd.stop();
    let refused = server.token("bob", "bob-pw", "");
    assert_eq!(refused.status, 503, "{}", server.portcullis.log());
    assert!(
        refused.headers.contains("retry-after:"),
        "{}",
        refused.headers
    );
    assert!(server.portcullis.logged("directory corp: no URL answered"));
    assert!(server.portcullis.logged("reason=\"directory unavailable\""));
    assert_eq!(
        server.token("alice", "alice-pw", "").status,
        200,
        "a verified password with groups read within groups_refresh_secs needs no directory"
    );
    slapd.start_again();
    assert_eq!(
        server.token("bob", "bob-pw", "").status,
        200,
        "{}",
        server.portcullis.log()
    );
}

#[test]
fn a_hanging_directory_answers_503_after_the_operation_timeout() {
    let slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, TIMEOUTS));
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
    slapd.freeze();
    let started = Instant::now();
    let answer = server.token("bob", "bob-pw", "");
    let waited = started.elapsed();
    slapd.thaw();
    assert_eq!(answer.status, 503, "{}", server.portcullis.log());
    assert!(answer.headers.contains("retry-after:"));
    assert!(
        waited < Duration::from_secs(15),
        "bounded by the timeouts, waited {waited:?}"
    );
    assert!(
        server.portcullis.logged("timed out after 1000 ms"),
        "{}",
        server.portcullis.log()
    );
    assert_eq!(server.token("bob", "bob-pw", "").status, 200);
}

#[test]
fn wrong_directory_passwords_lock_the_account_as_local_ones_do() {
    let slapd = Slapd::start();
    let server = Server::start(Db::Sqlite, &directory("corp", &slapd, ""));
    for attempt in 0..5 {
        let answer = server.token("alice", &format!("wrong-{attempt}"), "");
        assert_eq!(answer.status, 401, "attempt {attempt}");
    }
    let locked = server.token("alice", "alice-pw", "");
    assert_eq!(locked.status, 429, "locked even with the right password");
    assert!(locked.headers.contains("retry-after:"));
    let mark = slapd.log_mark();
    assert_eq!(server.token("alice", "alice-pw", "").status, 429);
    assert_eq!(
        slapd.log_since(mark),
        "",
        "a locked account reaches no directory"
    );
    server.portcullis.cli_ok(&["user", "unlock", "alice"], "");
    assert_eq!(server.token("alice", "alice-pw", "").status, 200);
}

#[test]
fn urls_are_tried_in_order_when_the_first_does_not_answer() {
    let slapd = Slapd::start();
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let entry = directory("corp", &slapd, TIMEOUTS).replace(
        &format!("url = \"{}\"", slapd.ldap_url()),
        &format!("url = [\"{dead}\", \"{}\"]", slapd.ldap_url()),
    );
    let server = Server::start(Db::Sqlite, &entry);
    assert_eq!(
        server.token("alice", "alice-pw", "").status,
        200,
        "{}",
        server.portcullis.log()
    );
    let steps = server
        .portcullis
        .cli_ok(&["ldap", "test", "--user", "bob"], "");
    assert!(
        steps.contains(&format!("cannot connect to {dead}")),
        "{steps}"
    );
    assert!(
        steps.contains(&format!("connected to {}", slapd.ldap_url())),
        "{steps}"
    );
}
