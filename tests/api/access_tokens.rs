//! Personal and robot access tokens: used as the Basic password or the password grant, found by
//! digest, capped by their scopes, refused once expired, revoked or when their owner is disabled.

use crate::api::helpers::{claims, realm_name, TestApp};
use crate::on_both_engines;
use portcullis::auth::token::{self, TokenSpec};
use portcullis::names::Username;
use portcullis::store::{unix_now, Role, TokenKind};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

on_both_engines!(
    token_reaches_policy_within_its_scopes,
    token_works_with_the_password_grant,
    expired_revoked_and_foreign_tokens_are_refused,
    robots_have_no_password_login,
);

/// Creates an access token for `owner` and returns (secret, id).
async fn create(
    app: &TestApp,
    owner: &str,
    scopes: Option<&str>,
    expires_at: Option<i64>,
) -> (String, String) {
    let user = app
        .store
        .find_user(&realm_name("default"), &Username::parse(owner).unwrap())
        .await
        .unwrap()
        .unwrap();
    // Token names are unique per user.
    static CREATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "t{}",
        CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let spec = TokenSpec {
        kind: TokenKind::Access,
        user_id: user.id,
        name: Some(&name),
        client_id: None,
        scopes,
        expires_at,
    };
    let created = token::create(&app.store, &spec).await.unwrap();
    (created.secret.expose_secret().to_owned(), created.id)
}

async fn access(app: &TestApp, scope: &str, basic: (&str, &str)) -> (u16, Value) {
    let response = app
        .get_token(&format!("service=registry&scope={scope}"), Some(basic))
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let access = body["token"]
        .as_str()
        .map_or(Value::Null, |jwt| claims(jwt)["access"].clone());
    (status, access)
}

async fn token_reaches_policy_within_its_scopes(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let (token, _) = create(
        &app,
        "alice",
        Some("repository:alice/ci/**:pull,push"),
        None,
    )
    .await;
    let (status, granted) = access(
        &app,
        "repository:alice/ci/app:pull,push,delete",
        ("alice", &token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        granted,
        json!([{"type": "repository", "name": "alice/ci/app", "actions": ["pull", "push"]}])
    );
    assert_eq!(
        access(&app, "repository:alice/web:pull", ("alice", &token)).await,
        (200, json!([]))
    );

    let (unscoped, _) = create(&app, "alice", None, None).await;
    let (_, granted) = access(&app, "repository:alice/web:pull", ("alice", &unscoped)).await;
    assert_eq!(
        granted,
        json!([{"type": "repository", "name": "alice/web", "actions": ["pull"]}])
    );
}

async fn token_works_with_the_password_grant(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let (token, _) = create(&app, "alice", None, None).await;
    let form = format!(
        "client_id=containerd-client&grant_type=password&username=alice&password={token}&service=registry&scope=repository%3Aalice%2Fapp%3Apull&access_type=offline"
    );
    let response = app.post_token(&form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "repository:alice/app:pull");
    assert!(
        body.get("refresh_token").is_none(),
        "a token does not mint longer-lived credentials"
    );
}

async fn expired_revoked_and_foreign_tokens_are_refused(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    app.add_user("default", "bob", "bobpw", Role::User).await;
    let scope = "repository:alice/app:pull";
    let (expired, _) = create(&app, "alice", None, Some(unix_now() - 1)).await;
    assert_eq!(access(&app, scope, ("alice", &expired)).await.0, 401);
    let (token, id) = create(&app, "alice", None, Some(unix_now() + 3600)).await;
    assert_eq!(access(&app, scope, ("alice", &token)).await.0, 200);
    assert_eq!(
        access(&app, scope, ("bob", &token)).await.0,
        401,
        "someone else's token"
    );
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(access(&app, scope, ("alice", &tampered)).await.0, 401);
    let realm = realm_name("default");
    let alice = Username::parse("alice").unwrap();
    let status = async || access(&app, scope, ("alice", &token)).await.0;
    app.store.set_disabled(&realm, &alice, true).await.unwrap();
    app.after_change("owner disabled", 401, status).await;
    app.store.set_disabled(&realm, &alice, false).await.unwrap();
    app.after_change("access tokens survive a disable/enable", 200, status)
        .await;
    app.store.revoke_token(&realm, &id).await.unwrap();
    app.after_change("revoked", 401, status).await;
    let listed = app.store.list_tokens(&realm, Some(&alice)).await.unwrap();
    assert!(listed.iter().any(|t| t.id == id && t.revoked_at.is_some()));
}

async fn robots_have_no_password_login(app: TestApp) {
    app.store
        .create_user(
            &realm_name("default"),
            &Username::parse("ci-bot").unwrap(),
            None,
            Role::User,
        )
        .await
        .unwrap();
    for password in ["", "x", "null"] {
        assert_eq!(
            access(&app, "repository:ci-bot/app:push", ("ci-bot", password))
                .await
                .0,
            401
        );
    }
    let (token, _) = create(&app, "ci-bot", Some("repository:ci-bot/**:push"), None).await;
    let (status, granted) = access(&app, "repository:ci-bot/app:push", ("ci-bot", &token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        granted,
        json!([{"type": "repository", "name": "ci-bot/app", "actions": ["push"]}])
    );
}
