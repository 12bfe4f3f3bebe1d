//! Several realms on one server: each with its own services, issuer, lifetime, keys and users.

use crate::helpers::{claims, header, realm_name, TestApp};
use crate::on_both_engines;
use portcullis::store::{RealmRecord, Role};
use serde_json::Value;

on_both_engines!(realms_are_independent, health_and_readiness);

async fn realms_are_independent(app: TestApp) {
    app.store
        .create_realm(&RealmRecord {
            name: realm_name("team"),
            services: vec!["registry.team".into(), "mirror".into()],
            issuer: Some("https://auth.example.org/team".into()),
            token_ttl_secs: 120,
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
    assert_ne!(
        header(jwt)["kid"],
        header(default["token"].as_str().unwrap())["kid"],
        "own keys"
    );

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
    let app = crate::helpers::spawn_app(crate::helpers::Db::Sqlite).await;
    assert_eq!(app.get_token("service=registry", None).await.status(), 200);
    assert_eq!(app.sql_text("PRAGMA journal_mode").await, ["wal"]);
}
