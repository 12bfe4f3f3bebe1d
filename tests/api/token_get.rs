//! GET with HTTP Basic or anonymous: what docker, skopeo and podman send.

use crate::api::helpers::{claims, header, TestApp};
use crate::on_both_engines;
use portcullis::store::Role;
use serde_json::{json, Value};

on_both_engines!(
    anonymous_gets_a_token_with_no_access,
    user_gets_own_namespace_only,
    admin_gets_catalog_and_everything,
    repeated_and_space_separated_scopes,
    token_shape_matches_the_registry,
    every_route_alias_answers,
    login_without_scope,
    password_may_contain_colons,
);

async fn anonymous_gets_a_token_with_no_access(app: TestApp) {
    let response = app
        .get_token(
            "service=registry&scope=repository:library/alpine:pull",
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let c = claims(body["token"].as_str().unwrap());
    assert_eq!(c["sub"], "");
    assert_eq!(c["access"], json!([]));
}

async fn user_gets_own_namespace_only(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app
        .get_token(
            "account=alice&service=registry&scope=repository:alice/app:pull,push&scope=repository:bob/app:pull",
            Some(("alice", "secret")),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "alice");
    assert_eq!(
        c["access"],
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}])
    );
}

async fn admin_gets_catalog_and_everything(app: TestApp) {
    app.add_user("default", "root", "rootpw", Role::Admin).await;
    app.add_user("default", "alice", "secret", Role::User).await;
    let query = "service=registry&scope=registry:catalog:*&scope=repository:bob/app:*";
    let admin: Value = app
        .get_token(query, Some(("root", "rootpw")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(admin["token"].as_str().unwrap())["access"],
        json!([
            {"type": "registry", "name": "catalog", "actions": ["*"]},
            {"type": "repository", "name": "bob/app", "actions": ["*"]}
        ])
    );
    let user: Value = app
        .get_token(query, Some(("alice", "secret")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims(user["token"].as_str().unwrap())["access"], json!([]));
}

async fn repeated_and_space_separated_scopes(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app
        .get_token(
            "service=registry&scope=repository:alice/a:pull%20repository:alice/b:push&scope=repository:alice/a:push",
            Some(("alice", "secret")),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([
            {"type": "repository", "name": "alice/a", "actions": ["pull", "push"]},
            {"type": "repository", "name": "alice/b", "actions": ["push"]}
        ])
    );
}

async fn token_shape_matches_the_registry(app: TestApp) {
    let first: Value = app
        .get_token("service=registry", None)
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .get_token("service=registry", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["token"], first["access_token"]);
    assert_eq!(first["expires_in"], 300);
    let issued_at = first["issued_at"].as_str().unwrap();
    assert!(
        issued_at.ends_with('Z') && issued_at.contains('T'),
        "{issued_at}"
    );
    let jwt = first["token"].as_str().unwrap();
    let h = header(jwt);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"].as_str().unwrap().split(':').count(), 12);
    assert_eq!(h["x5c"].as_array().unwrap().len(), 1);
    let c = claims(jwt);
    assert!(c["aud"].is_string());
    assert_eq!(c["aud"], "registry");
    // Without server.public_url, a loopback listen address is named `localhost` in derived URLs.
    let issuer = app
        .token_url("default")
        .replacen("127.0.0.1", "localhost", 1);
    assert_eq!(c["iss"], issuer);
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(c["nbf"].as_u64().unwrap() <= iat);
    assert_ne!(c["jti"], claims(second["token"].as_str().unwrap())["jti"]);
}

async fn every_route_alias_answers(app: TestApp) {
    for path in [
        "/auth/realms/default/protocol/docker-v2/auth",
        "/auth/realms/default/protocol/docker-v2",
        "/realms/default/protocol/docker-v2/auth",
        "/realms/default/protocol/docker-v2",
    ] {
        let url = format!("{}{path}?service=registry", app.address);
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}

async fn login_without_scope(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app
        .get_token(
            "account=alice&client_id=docker&offline_token=true&service=registry",
            Some(("alice", "secret")),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("pcrt_"));
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "alice");
}

async fn password_may_contain_colons(app: TestApp) {
    app.add_user("default", "alice", "a:b:c", Role::User).await;
    let response = app
        .get_token("service=registry", Some(("alice", "a:b:c")))
        .await;
    assert_eq!(response.status(), 200);
}
