//! Every refusal: the right status, a JSON body every client can read, and nothing that tells an
//! unknown user from a wrong password.

use crate::api::helpers::{realm_name, TestApp};
use crate::on_both_engines;
use portcullis::auth::password::Hasher;
use portcullis::names::Username;
use portcullis::store::Role;
use secrecy::SecretString;
use serde_json::Value;

on_both_engines!(
    wrong_password_and_unknown_user_look_the_same,
    disabled_and_deleted_users_are_refused,
    password_change_takes_effect,
    unknown_realm_is_404,
    service_must_be_present_and_known,
    malformed_scope_is_named,
    request_limits,
    malformed_authorization_header,
    account_must_match_the_basic_user,
    unknown_route_and_method,
);

async fn wrong_password_and_unknown_user_look_the_same(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let mut answers = Vec::new();
    for (user, password) in [
        ("alice", "wrong"),
        ("mallory", "secret"),
        ("Not A Valid Name", "x"),
        ("", ""),
    ] {
        let response = app
            .get_token("service=registry", Some((user, password)))
            .await;
        assert_eq!(response.status(), 401, "{user}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"default\""
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["details"], "incorrect username or password");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "identical bodies");
}

async fn disabled_and_deleted_users_are_refused(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let alice = Username::parse("alice").unwrap();
    let realm = realm_name("default");
    let status = async || {
        app.get_token("service=registry", Some(("alice", "secret")))
            .await
            .status()
            .as_u16()
    };
    app.store.set_disabled(&realm, &alice, true).await.unwrap();
    app.after_change("disabled", 401, status).await;
    app.store.set_disabled(&realm, &alice, false).await.unwrap();
    app.after_change("enabled again", 200, status).await;
    app.store.delete_user(&realm, &alice).await.unwrap();
    app.after_change("deleted", 401, status).await;
}

async fn password_change_takes_effect(app: TestApp) {
    app.add_user("default", "alice", "old", Role::User).await;
    let hash = Hasher::new(&app.settings.passwords)
        .unwrap()
        .hash(&SecretString::from("new"))
        .unwrap();
    app.store
        .set_password(
            &realm_name("default"),
            &Username::parse("alice").unwrap(),
            &hash,
        )
        .await
        .unwrap();
    assert_eq!(
        app.get_token("service=registry", Some(("alice", "old")))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_token("service=registry", Some(("alice", "new")))
            .await
            .status(),
        200
    );
}

async fn unknown_realm_is_404(app: TestApp) {
    for realm in ["nope", "UPPER", "..", "a%2Fb"] {
        let url = format!(
            "{}/auth/realms/{realm}/protocol/docker-v2/auth?service=registry",
            app.address
        );
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 404, "{realm}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
}

async fn service_must_be_present_and_known(app: TestApp) {
    for query in ["scope=repository:a:pull", "service=", "service=other"] {
        let response = app.get_token(query, None).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{query}");
    }
}

async fn malformed_scope_is_named(app: TestApp) {
    let response = app
        .get_token("service=registry&scope=repository:Bad%20Name:pull", None)
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert!(
        body["details"].as_str().unwrap().contains("repository:Bad"),
        "{body}"
    );
    let response = app
        .get_token("service=registry&scope=%00%ff:::", None)
        .await;
    assert_eq!(response.status(), 400);
}

async fn request_limits(app: TestApp) {
    let many: Vec<String> = (0..33)
        .map(|i| format!("scope=repository:r{i}:pull"))
        .collect();
    let response = app
        .get_token(&format!("service=registry&{}", many.join("&")), None)
        .await;
    assert_eq!(response.status(), 400);
    let long = format!(
        "service=registry&scope=repository:{}:pull",
        "a".repeat(5000)
    );
    assert_eq!(app.get_token(&long, None).await.status(), 400);
    let params: Vec<String> = (0..100).map(|i| format!("x{i}=y")).collect();
    assert_eq!(
        app.get_token(&format!("service=registry&{}", params.join("&")), None)
            .await
            .status(),
        400
    );
    let huge_user = "a".repeat(10_000);
    let response = app
        .get_token("service=registry", Some((&huge_user, "pw")))
        .await;
    assert_eq!(response.status(), 401);
    let huge_password = "p".repeat(10_000);
    let response = app
        .get_token("service=registry", Some(("alice", &huge_password)))
        .await;
    assert_eq!(response.status(), 401);
}

async fn malformed_authorization_header(app: TestApp) {
    for value in [
        "Basic",
        "Basic !!!notbase64",
        "Basic bm9jb2xvbg==",
        "Bearer abc",
        "Digest x=y",
    ] {
        let response = app
            .client
            .get(format!("{}?service=registry", app.token_url("default")))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{value}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["details"].as_str().unwrap().contains("Authorization"),
            "{value}"
        );
    }
}

async fn account_must_match_the_basic_user(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app
        .get_token("service=registry&account=bob", Some(("alice", "secret")))
        .await;
    assert_eq!(response.status(), 400);
}

async fn unknown_route_and_method(app: TestApp) {
    let response = app
        .client
        .get(format!("{}/nothing/here", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
    let response = app
        .client
        .put(app.token_url("default"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}
