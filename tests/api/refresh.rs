//! Refresh tokens: issued to `docker login` (GET `offline_token=true`) and the offline password grant,
//! accepted through the refresh grant and containerd's `Basic :<token>` fallback, never rotated,
//! revoked with their user's password or status.

use crate::api::helpers::{claims, realm_name, TestApp};
use crate::on_both_engines;
use portcullis::auth::password::Hasher;
use portcullis::names::Username;
use portcullis::store::Role;
use secrecy::SecretString;
use serde_json::{json, Value};

on_both_engines!(
    docker_login_gets_a_refresh_token_that_works_through_the_refresh_grant,
    offline_password_grant_gets_one_too,
    containerd_fallback_basic_with_empty_user,
    bad_refresh_tokens_are_invalid_grants,
    revoked_by_password_change_disable_delete_and_command,
    expired_and_idle_tokens_are_refused,
    only_the_digest_is_stored,
);

const LOGIN: &str = "account=alice&client_id=docker&offline_token=true&service=registry";

async fn refresh_token_of_alice(app: &TestApp) -> String {
    app.add_user("default", "alice", "secret", Role::User).await;
    let body: Value = app
        .get_token(LOGIN, Some(("alice", "secret")))
        .await
        .json()
        .await
        .unwrap();
    let token = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert!(token.starts_with("pcrt_"), "{token}");
    token
}

fn refresh_form(token: &str, scope: &str) -> String {
    format!("client_id=docker&grant_type=refresh_token&refresh_token={token}&service=registry&scope={scope}")
}

async fn docker_login_gets_a_refresh_token_that_works_through_the_refresh_grant(app: TestApp) {
    let token = refresh_token_of_alice(&app).await;
    for _ in 0..2 {
        let response = app
            .post_token(&refresh_form(
                &token,
                "repository%3Aalice%2Fapp%3Apull+repository%3Abob%2Fx%3Apull",
            ))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "never rotated");
        assert_eq!(body["scope"], "repository:alice/app:pull");
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], "alice");
        assert_eq!(
            c["access"],
            json!([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
        );
    }
    let anonymous: Value = app
        .get_token("offline_token=true&service=registry", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(anonymous.get("refresh_token").is_none());
    let plain: Value = app
        .get_token("service=registry", Some(("alice", "secret")))
        .await
        .json()
        .await
        .unwrap();
    assert!(plain.get("refresh_token").is_none(), "only when asked for");
}

async fn offline_password_grant_gets_one_too(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let form = "client_id=containerd-client&grant_type=password&username=alice&password=secret&service=registry&access_type=offline";
    let body: Value = app.post_token(form).await.json().await.unwrap();
    let token = body["refresh_token"].as_str().unwrap();
    assert_eq!(app.post_token(&refresh_form(token, "")).await.status(), 200);
}

async fn containerd_fallback_basic_with_empty_user(app: TestApp) {
    let token = refresh_token_of_alice(&app).await;
    let query = "service=registry&scope=repository:alice/app:pull";
    let response = app.get_token(query, Some(("", &token))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "alice");
    assert_eq!(
        app.get_token(query, Some(("alice", &token))).await.status(),
        200
    );
    app.add_user("default", "bob", "bobpw", Role::User).await;
    assert_eq!(
        app.get_token(query, Some(("bob", &token))).await.status(),
        401
    );
}

async fn bad_refresh_tokens_are_invalid_grants(app: TestApp) {
    let token = refresh_token_of_alice(&app).await;
    let mut tampered = token.clone();
    tampered.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
    for bad in ["", "garbage", "pcrt_", &tampered, &format!("{token}x")] {
        let response = app.post_token(&refresh_form(bad, "")).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if bad.is_empty() {
            assert_eq!(status, 400, "missing refresh_token");
        } else {
            assert_eq!(status, 401, "{bad}");
            assert_eq!(body["error"], "invalid_grant");
        }
    }
    let no_client = format!("grant_type=refresh_token&refresh_token={token}&service=registry");
    assert_eq!(app.post_token(&no_client).await.status(), 400);
}

async fn revoked_by_password_change_disable_delete_and_command(app: TestApp) {
    let realm = realm_name("default");
    let alice = Username::parse("alice").unwrap();
    let token = refresh_token_of_alice(&app).await;
    let hash = Hasher::new(&app.settings.passwords)
        .unwrap()
        .hash(&SecretString::from("new"))
        .unwrap();
    app.store.set_password(&realm, &alice, &hash).await.unwrap();
    app.after_change("password change", 401, async || {
        app.post_token(&refresh_form(&token, ""))
            .await
            .status()
            .as_u16()
    })
    .await;

    let login = |password: &'static str| {
        let app = &app;
        async move {
            let response = app.get_token(LOGIN, Some(("alice", password))).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            body["refresh_token"]
                .as_str()
                .unwrap_or_else(|| panic!("login with {password:?}: {status} {body}"))
                .to_owned()
        }
    };
    let token = login("new").await;
    app.store.set_disabled(&realm, &alice, true).await.unwrap();
    app.store.set_disabled(&realm, &alice, false).await.unwrap();
    app.after_change("disable", 401, async || {
        app.post_token(&refresh_form(&token, ""))
            .await
            .status()
            .as_u16()
    })
    .await;

    let token = login("new").await;
    let listed = app.store.list_tokens(&realm, Some(&alice)).await.unwrap();
    let active = listed.iter().find(|t| t.revoked_at.is_none()).unwrap();
    app.store.revoke_token(&realm, &active.id).await.unwrap();
    app.after_change("revoke", 401, async || {
        app.post_token(&refresh_form(&token, ""))
            .await
            .status()
            .as_u16()
    })
    .await;

    let token = login("new").await;
    app.store.delete_user(&realm, &alice).await.unwrap();
    app.after_change("delete", 401, async || {
        app.post_token(&refresh_form(&token, ""))
            .await
            .status()
            .as_u16()
    })
    .await;
}

async fn expired_and_idle_tokens_are_refused(app: TestApp) {
    let token = refresh_token_of_alice(&app).await;
    let status = async || {
        app.post_token(&refresh_form(&token, ""))
            .await
            .status()
            .as_u16()
    };
    app.sql("UPDATE tokens SET created_at = created_at - 31 * 86400")
        .await;
    app.after_change("idle 31 days", 401, status).await;
    app.sql("UPDATE tokens SET created_at = created_at + 31 * 86400")
        .await;
    app.after_change("active again", 200, status).await;
    app.sql("UPDATE tokens SET expires_at = 1").await;
    app.after_change("expired", 401, status).await;
}

async fn only_the_digest_is_stored(app: TestApp) {
    let token = refresh_token_of_alice(&app).await;
    let stored = app.sql_text("SELECT secret_sha256 FROM tokens").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0],
        portcullis::auth::token::sha256_hex(&SecretString::from(token.clone()))
    );
    let everything = app
        .sql_text("SELECT id || ' ' || secret_sha256 || ' ' || COALESCE(client_id, '') FROM tokens")
        .await;
    assert!(
        !everything[0].contains(&token[5..]),
        "the secret itself is not stored"
    );
    assert!(
        everything[0].ends_with("docker"),
        "client id recorded: {}",
        everything[0]
    );
}
