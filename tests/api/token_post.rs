//! The OAuth2 POST form: what containerd sends first, with Content-Length or chunked.

use std::io::{Read, Write};

use crate::api::helpers::{claims, TestApp};
use crate::on_both_engines;
use portcullis::store::Role;
use serde_json::{json, Value};

on_both_engines!(
    password_grant_as_containerd_sends_it,
    chunked_body_is_read,
    wrong_password_is_invalid_grant,
    other_grant_types_are_unsupported,
    missing_fields_are_invalid_requests,
    oversized_body_is_refused,
    wrong_content_type_is_refused,
);

const CONTAINERD_FORM: &str = "client_id=containerd-client&grant_type=password&password=secret&scope=repository%3Aalice%2Fapp%3Apull+repository%3Abob%2Fapp%3Apull&service=registry&username=alice";

async fn password_grant_as_containerd_sends_it(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app.post_token(CONTAINERD_FORM).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "repository:alice/app:pull");
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].is_string());
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    );
}

/// containers/image sends its form with `Transfer-Encoding: chunked` and no Content-Length.
async fn chunked_body_is_read(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        let (first, second) = CONTAINERD_FORM.split_at(40);
        let request = format!(
            "POST /auth/realms/default/protocol/docker-v2/auth HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
            first.len(),
            second.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].to_owned();
        (status, response)
    })
    .await
    .unwrap();
    assert_eq!(status, "200", "{body}");
    assert!(
        body.contains("\"scope\":\"repository:alice/app:pull\""),
        "{body}"
    );
}

async fn wrong_password_is_invalid_grant(app: TestApp) {
    app.add_user("default", "alice", "secret", Role::User).await;
    let response = app
        .post_token(&CONTAINERD_FORM.replace("password=secret", "password=nope"))
        .await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

async fn other_grant_types_are_unsupported(app: TestApp) {
    for grant in [
        "implicit",
        "client_credentials",
        "authorization_code",
        "nonsense",
    ] {
        let response = app
            .post_token(&format!(
                "grant_type={grant}&client_id=docker&service=registry&refresh_token=x"
            ))
            .await;
        assert_eq!(response.status(), 400, "{grant}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unsupported_grant_type", "{grant}");
    }
}

async fn missing_fields_are_invalid_requests(app: TestApp) {
    for (form, missing) in [
        ("", "grant_type"),
        (
            "grant_type=password&username=a&password=b&service=registry",
            "client_id",
        ),
        (
            "grant_type=password&client_id=c&password=b&service=registry",
            "username",
        ),
        (
            "grant_type=password&client_id=c&username=a&service=registry",
            "password",
        ),
        (
            "grant_type=password&client_id=c&username=a&password=b",
            "service",
        ),
    ] {
        let response = app.post_token(form).await;
        assert_eq!(response.status(), 400, "{form}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(missing),
            "{body}"
        );
    }
}

async fn oversized_body_is_refused(app: TestApp) {
    let huge = format!(
        "grant_type=password&padding={}",
        "x".repeat(app.settings.server.max_body_bytes)
    );
    let response = app.post_token(&huge).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

async fn wrong_content_type_is_refused(app: TestApp) {
    let response = app
        .client
        .post(app.token_url("default"))
        .header("content-type", "application/json")
        .body("{\"grant_type\":\"password\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
