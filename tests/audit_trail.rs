//! The recent audit trail, on the real binary over SQLite and PostgreSQL: what the token endpoint
//! and the admin API log as audit events is kept in the database and read back through
//! `GET /api/v1/realms/{realm}/audit-events`, newest first, a page at a time, by event name, only
//! by the realm's admins; grants only with `audit.keep_grants`; `audit.keep_secs = 0` keeps none.

pub mod common;

use std::time::{Duration, Instant};

use common::curl::{curl, Answer};
use common::database::Db;
use common::portcullis::Portcullis;
use serde_json::Value;

/// How long an event may take to reach the database (it is written at once; the machine is busy).
const KEPT_WITHIN: Duration = Duration::from_secs(10);

fn get(server: &Portcullis, bearer: &str, path: &str) -> Answer {
    curl(&[
        "-H",
        &format!("Authorization: Bearer {bearer}"),
        &format!("{}/api/v1/realms/default{path}", server.url()),
    ])
}

/// The events of the page at `query`, once at least `count` of them are kept.
fn events(server: &Portcullis, admin: &str, query: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let answer = get(server, admin, &format!("/audit-events{query}"));
        assert_eq!(answer.status, 200, "{}", answer.body);
        let items = answer.body["items"].as_array().unwrap().clone();
        if items.len() >= count || started.elapsed() > KEPT_WITHIN {
            return items;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An access token of `user` with the `admin` scope, which the API asks of every caller.
fn api_token(server: &Portcullis, user: &str) -> String {
    let secret = server
        .cli_ok(
            &[
                "token", "create", "--user", user, "--name", "api", "--scope", "admin",
            ],
            "",
        )
        .trim()
        .to_owned();
    assert!(secret.starts_with("pcat_"), "{secret}");
    secret
}

fn admin_token(server: &Portcullis) -> String {
    server.add_user("root", "root-password-1", true);
    api_token(server, "root")
}

fn the_trail_keeps_grants_refusals_and_admin_changes(db: Db) {
    let server = Portcullis::start_on(db, "[audit]\nkeep_grants = true\n");
    let admin = admin_token(&server);
    server.add_user("alice", "alice-password-1", false);
    let user_token = api_token(&server, "alice");

    // A grant, a refusal with a wrong password, and an admin's change through the API.
    let granted = server.basic_token(
        "alice",
        "alice-password-1",
        "&scope=repository:alice/app:pull",
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(
        server
            .basic_token(
                "alice",
                "wrong-password",
                "&scope=repository:alice/app:pull"
            )
            .status,
        401
    );
    let added = curl(&[
        "-H",
        &format!("Authorization: Bearer {admin}"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"subject":"user:alice","name":"shared/**","actions":["pull"]}"#,
        &format!("{}/api/v1/realms/default/grants", server.url()),
    ]);
    assert_eq!(added.status, 201, "{}", added.body);

    let kept = events(&server, &admin, "", 3);
    let names: Vec<&str> = kept.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["grant_added", "refused", "granted"], "{kept:#?}");
    // Newest first, ids descending, times in order.
    assert!(kept[0]["id"].as_i64() > kept[1]["id"].as_i64());
    assert!(kept[0]["at_ms"].as_i64() >= kept[2]["at_ms"].as_i64());
    assert!(kept[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(kept[0]["fields"]["by"], "root");
    assert_eq!(kept[1]["fields"]["subject"], "alice");
    assert_eq!(kept[2]["fields"]["granted"], "repository:alice/app:pull");
    assert_eq!(kept[2]["fields"]["method"], "password");
    let text = serde_json::to_string(&kept).unwrap();
    for secret in ["alice-password-1", "wrong-password", admin.as_str()] {
        assert!(!text.contains(secret), "a secret is in the trail: {text}");
    }

    // Pages of one, then the rest before the last one seen.
    let first = get(&server, &admin, "/audit-events?limit=1");
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let next = first.body["next"].as_str().unwrap().to_owned();
    let rest = get(&server, &admin, &format!("/audit-events?before={next}"));
    let rest_names: Vec<&str> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(rest_names, ["refused", "granted"]);
    assert_eq!(rest.body["next"], Value::Null);

    // By name.
    let refused = events(&server, &admin, "?event=refused", 1);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["fields"]["reason"], "wrong password");

    // Bad parameters, a user, nobody, another realm.
    for query in ["?limit=0", "?limit=501", "?before=x", "?event=Bad-Name"] {
        let answer = get(&server, &admin, &format!("/audit-events{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "invalid");
    }
    assert_eq!(get(&server, &user_token, "/audit-events").status, 403);
    assert_eq!(get(&server, "pcat_nothing", "/audit-events").status, 401);
    let elsewhere = curl(&[
        "-H",
        &format!("Authorization: Bearer {admin}"),
        &format!("{}/api/v1/realms/other/audit-events", server.url()),
    ]);
    // The token is the default realm's: another realm does not know it.
    assert_eq!(elsewhere.status, 401);
}

#[test]
fn the_trail_keeps_grants_refusals_and_admin_changes_on_sqlite() {
    the_trail_keeps_grants_refusals_and_admin_changes(Db::Sqlite);
}

#[test]
fn the_trail_keeps_grants_refusals_and_admin_changes_on_postgres() {
    the_trail_keeps_grants_refusals_and_admin_changes(Db::Postgres);
}

#[test]
fn by_default_refusals_are_kept_and_grants_are_not() {
    let server = Portcullis::start();
    let admin = admin_token(&server);
    server.add_user("alice", "alice-password-1", false);
    let scope = "&scope=repository:alice/app:pull";
    assert_eq!(
        server
            .basic_token("alice", "alice-password-1", scope)
            .status,
        200
    );
    assert_eq!(
        server.basic_token("alice", "wrong-password", scope).status,
        401
    );
    let kept = events(&server, &admin, "", 1);
    let names: Vec<&str> = kept.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["refused"], "{kept:#?}");
    assert!(
        server.logged("outcome=\"granted\""),
        "the log has the grant"
    );
}

#[test]
fn keep_secs_zero_keeps_no_trail() {
    let server = Portcullis::start_with_config("[audit]\nkeep_secs = 0\n");
    let admin = admin_token(&server);
    server.add_user("alice", "alice-password-1", false);
    assert_eq!(
        server
            .basic_token(
                "alice",
                "alice-password-1",
                "&scope=repository:alice/app:pull"
            )
            .status,
        200
    );
    assert!(server.logged("outcome=\"granted\""));
    std::thread::sleep(Duration::from_millis(500));
    let answer = get(&server, &admin, "/audit-events");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["items"], Value::Array(Vec::new()));
}
