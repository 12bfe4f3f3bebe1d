//! The policy behind the endpoint: database grants and groups take effect on the next request, a
//! policy file edit within moments, and a broken edit keeps the last good policy.

use std::time::{Duration, Instant};

use crate::api::helpers::{claims, realm_name, spawn_app_with, Db, TestApp};
use crate::on_both_engines;
use portcullis::names::Username;
use portcullis::store::{GrantRecord, Role};
use serde_json::{json, Value};

on_both_engines!(grants_and_groups_take_effect_on_the_next_request);

fn grant(subject: &str, name: &str, actions: &[&str], effect: &str) -> GrantRecord {
    GrantRecord {
        id: 0,
        subject: subject.into(),
        resource: "repository".into(),
        name: name.into(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        effect: effect.into(),
    }
}

async fn access(app: &TestApp, scope: &str, basic: Option<(&str, &str)>) -> Value {
    let response = app
        .get_token(&format!("service=registry&scope={scope}"), basic)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    claims(body["token"].as_str().unwrap())["access"].clone()
}

async fn grants_and_groups_take_effect_on_the_next_request(app: TestApp) {
    let realm = realm_name("default");
    app.add_user("default", "alice", "secret", Role::User).await;
    app.add_user("default", "bob", "bobpw", Role::User).await;
    let alice = Some(("alice", "secret"));
    let bob = Some(("bob", "bobpw"));
    let team_app = "repository:team/app:pull,push";
    assert_eq!(access(&app, team_app, alice).await, json!([]));

    let id = app
        .store
        .add_grant(&realm, &grant("user:alice", "team/**", &["pull"], "allow"))
        .await
        .unwrap();
    app.after_change(
        "a grant",
        json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]),
        async || access(&app, team_app, alice).await,
    )
    .await;

    app.store.create_group(&realm, "team").await.unwrap();
    app.store
        .set_membership(&realm, "team", &Username::parse("bob").unwrap(), true)
        .await
        .unwrap();
    app.store
        .add_grant(
            &realm,
            &grant("group:team", "team/**", &["pull", "push"], "allow"),
        )
        .await
        .unwrap();
    app.after_change(
        "a group's grant",
        json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]),
        async || access(&app, team_app, bob).await,
    )
    .await;
    app.store
        .add_grant(&realm, &grant("any", "team/secret", &["*"], "deny"))
        .await
        .unwrap();
    app.after_change("deny wins", json!([]), async || {
        access(&app, "repository:team/secret:pull", bob).await
    })
    .await;

    app.store.remove_grant(&realm, id).await.unwrap();
    app.after_change("a removed grant", json!([]), async || {
        access(&app, team_app, alice).await
    })
    .await;
    app.store
        .set_membership(&realm, "team", &Username::parse("bob").unwrap(), false)
        .await
        .unwrap();
    app.after_change("a membership removed", json!([]), async || {
        access(&app, team_app, bob).await
    })
    .await;
}

const PUBLIC_LIBRARY: &str = r#"
[[rule]]
subject = "any"
name = "library/**"
actions = ["pull"]
"#;

async fn anonymous_library(app: &TestApp) -> Value {
    access(app, "repository:library/alpine:pull", None).await
}

/// Waits up to 2 s for the anonymous grant on library/alpine to become `expected`.
async fn within_two_seconds(app: &TestApp, expected: Value) {
    let started = Instant::now();
    loop {
        let got = anonymous_library(app).await;
        if got == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {got} after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn policy_file_edits_apply_and_broken_edits_keep_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "evaluation = \"union\"\n").unwrap();
    let path = file.clone();
    let app = spawn_app_with(Db::Sqlite, move |settings| {
        settings
            .realms
            .entry("default".into())
            .or_default()
            .policy_file = Some(path);
    })
    .await;
    assert_eq!(anonymous_library(&app).await, json!([]));

    std::fs::write(&file, PUBLIC_LIBRARY).unwrap();
    let pulled = json!([{"type": "repository", "name": "library/alpine", "actions": ["pull"]}]);
    within_two_seconds(&app, pulled.clone()).await;

    std::fs::write(
        &file,
        "[[rule]]\nsubject = \"nobody:x\"\nname = \"**\"\nactions = [\"pull\"]\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_eq!(
            anonymous_library(&app).await,
            pulled,
            "the last good policy stays"
        );
    }
    std::fs::write(&file, "evaluation = \"union\"\n").unwrap();
    within_two_seconds(&app, json!([])).await;
}
