//! Several realms on one server: each with its own services, issuer, lifetime, token header, keys and
//! users.

use crate::api::helpers::{claims, header, realm_name, TestApp};
use crate::on_both_engines;
use portcullis::jwt::TokenHeader;
use portcullis::store::{RealmRecord, Role, StoreError};
use serde_json::Value;

on_both_engines!(realms_are_independent, health_and_readiness);

async fn realms_are_independent(app: TestApp) {
    app.store
        .create_realm(&RealmRecord {
            name: realm_name("team"),
            services: vec!["registry.team".into(), "mirror".into()],
            issuer: Some("https://auth.example.org/team".into()),
            token_ttl_secs: 120,
            token_header: TokenHeader::Kid,
        })
        .await
        .unwrap();
    app.add_user("default", "alice", "secret", Role::User).await;
    app.add_user("team", "bob", "bobpw", Role::User).await;

    let team = |query: &str, basic: (&str, &str)| {
        app.client
            .get(format!("{}?{query}", app.token_url("team")))
            .basic_auth(basic.0, Some(basic.1))
            .send()
    };
    let response = team(
        "service=mirror&scope=repository:bob/x:pull",
        ("bob", "bobpw"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let jwt = body["token"].as_str().unwrap();
    let c = claims(jwt);
    assert_eq!(c["iss"], "https://auth.example.org/team");
    assert_eq!(c["aud"], "mirror");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 120);

    let default: Value = app
        .get_token("service=registry", None)
        .await
        .json()
        .await
        .unwrap();
    let default_header = header(default["token"].as_str().unwrap());
    assert_ne!(header(jwt)["kid"], default_header["kid"], "own keys");
    assert!(header(jwt)["kid"].is_string(), "kid-only realm: kid");
    assert!(header(jwt).get("x5c").is_none(), "kid-only realm: no x5c");
    assert!(default_header["x5c"].is_array(), "default realm: x5c");

    assert_eq!(
        team("service=mirror", ("alice", "secret"))
            .await
            .unwrap()
            .status(),
        401,
        "own users"
    );
    assert_eq!(
        app.get_token("service=mirror", None).await.status(),
        400,
        "own services"
    );

    let team = realm_name("team");
    app.store
        .set_realm_token_header(&team, TokenHeader::X5c)
        .await
        .unwrap();
    let stored = app.store.find_realm(&team).await.unwrap().unwrap();
    assert_eq!(stored.token_header, TokenHeader::X5c);
    let missing = app
        .store
        .set_realm_token_header(&realm_name("nope"), TokenHeader::Kid)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn health_and_readiness(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

/// The embedded database runs in write-ahead-log mode, so readers never wait for a writer.
#[tokio::test]
async fn sqlite_uses_write_ahead_logging() {
    let app = crate::api::helpers::spawn_app(crate::api::helpers::Db::Sqlite).await;
    assert_eq!(app.get_token("service=registry", None).await.status(), 200);
    assert_eq!(app.sql_text("PRAGMA journal_mode").await, ["wal"]);
}
