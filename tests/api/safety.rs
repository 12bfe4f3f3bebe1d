//! Safety under attack: the verified-credential cache follows password changes, repeated failures
//! lock an account or address (429, even for the right password), and a flood of password checks
//! gets quick 503s while token requests keep being served.

use std::time::{Duration, Instant};

use crate::api::helpers::{realm_name, spawn_app_with, Db, TestApp};
use crate::on_both_engines;
use portcullis::auth::lockout::lockout_subject;
use portcullis::auth::password::Hasher;
use portcullis::auth::token::{self, TokenSpec};
use portcullis::config::LockoutSettings;
use portcullis::names::Username;
use portcullis::store::{unix_now, Role, TokenKind};
use secrecy::{ExposeSecret, SecretString};

on_both_engines!(
    cached_logins_follow_password_changes,
    repeated_failures_lock_the_account,
    concurrent_failures_are_all_counted
);

async fn status(app: &TestApp, user: &str, password: &str) -> u16 {
    app.get_token("service=registry", Some((user, password)))
        .await
        .status()
        .as_u16()
}

async fn cached_logins_follow_password_changes(app: TestApp) {
    app.add_user("default", "alice", "old", Role::User).await;
    assert_eq!(status(&app, "alice", "old").await, 200);
    assert_eq!(
        status(&app, "alice", "old").await,
        200,
        "served from the cache"
    );
    let hash = Hasher::new(&app.settings.passwords)
        .unwrap()
        .hash(&SecretString::from("new"))
        .unwrap();
    let realm = realm_name("default");
    let alice = Username::parse("alice").unwrap();
    app.store.set_password(&realm, &alice, &hash).await.unwrap();
    app.after_change("a password change empties the cache", 401, async || {
        status(&app, "alice", "old").await
    })
    .await;
    assert_eq!(status(&app, "alice", "new").await, 200);
    app.store.set_disabled(&realm, &alice, true).await.unwrap();
    app.after_change("disable beats the cache", 401, async || {
        status(&app, "alice", "new").await
    })
    .await;
}

/// Failures arriving together (a flood, several instances) are each counted once: none is lost to
/// a race and none fails on a database lock.
async fn concurrent_failures_are_all_counted(app: TestApp) {
    const ATTEMPTS: i64 = 40;
    const THRESHOLD: u32 = 30;
    let lockout = LockoutSettings::default();
    let subject = "account:default/alice";
    let now = unix_now();
    let attempts: Vec<_> = (0..ATTEMPTS)
        .map(|_| {
            let store = app.store.clone();
            let lockout = lockout.clone();
            tokio::spawn(async move {
                store
                    .record_failure(subject, now, &lockout, THRESHOLD)
                    .await
            })
        })
        .collect();
    for attempt in attempts {
        attempt.await.unwrap().expect("every failure is recorded");
    }
    let record = app.store.failure_record(subject).await.unwrap();
    assert_eq!(record.failures, ATTEMPTS);
    assert_eq!(
        record.locked_until,
        lockout.lock_deadline(ATTEMPTS, THRESHOLD, now),
        "the deadline of the last failure"
    );
}

async fn repeated_failures_lock_the_account(app: TestApp) {
    app.add_user("default", "alice", "right", Role::User).await;
    app.add_user("default", "bob", "bobpw", Role::User).await;
    for i in 0..app.settings.lockout.account_threshold {
        assert_eq!(status(&app, "alice", &format!("wrong{i}")).await, 401);
    }
    let locked = app
        .get_token("service=registry", Some(("alice", "right")))
        .await;
    assert_eq!(locked.status(), 429, "even the right password while locked");
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1 && retry <= u64::from(app.settings.lockout.base_lock_secs));
    assert_eq!(
        status(&app, "bob", "bobpw").await,
        200,
        "other accounts are not locked"
    );
    let realm = realm_name("default");
    app.store
        .clear_failures(&lockout_subject(&realm, &Username::parse("alice").unwrap()))
        .await
        .unwrap();
    app.after_change("unlocked", 200, async || {
        status(&app, "alice", "right").await
    })
    .await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_locked() {
    let app = spawn_app_with(Db::Sqlite, |s| s.lockout.account_threshold = 1000).await;
    app.add_user("default", "alice", "right", Role::User).await;
    for i in 0..app.settings.lockout.address_threshold {
        assert_eq!(status(&app, &format!("guess{i}"), "x").await, 401);
    }
    assert_eq!(
        status(&app, "alice", "right").await,
        429,
        "the address is locked"
    );
}

/// 300 concurrent wrong passwords against one slot and a short queue: quick 503s, no hung request,
/// and an access-token request in the middle of it is served.
#[tokio::test]
async fn a_password_flood_gets_quick_503s_and_tokens_are_still_served() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.passwords.argon2_memory_kib = 8192;
        s.passwords.argon2_iterations = 2;
        s.passwords.max_concurrent_checks = 1;
        s.passwords.max_queued_checks = 4;
        s.lockout.account_threshold = 100_000;
        s.lockout.address_threshold = 100_000;
    })
    .await;
    app.add_user("default", "alice", "right", Role::User).await;
    let user = app
        .store
        .find_user(&realm_name("default"), &Username::parse("alice").unwrap())
        .await
        .unwrap()
        .unwrap();
    let spec = TokenSpec {
        kind: TokenKind::Access,
        user_id: user.id,
        name: Some("ci"),
        client_id: None,
        scopes: None,
        expires_at: None,
    };
    let created = token::create(&app.store, &spec).await.unwrap();
    let token = created.secret.expose_secret().to_owned();

    let started = Instant::now();
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}?service=registry", app.token_url("default"));
            tokio::spawn(async move {
                client
                    .get(url)
                    .basic_auth(format!("user{i}"), Some("wrong"))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .map(|r| (r.status().as_u16(), r.headers().contains_key("retry-after")))
            })
        })
        .collect();
    let during = Instant::now();
    assert_eq!(
        status(&app, "alice", &token).await,
        200,
        "a token request during the flood"
    );
    let token_latency = during.elapsed();
    let mut counts = std::collections::BTreeMap::new();
    for answer in flood {
        let (code, retry_after) = answer.await.unwrap().expect("no request hung or failed");
        if code == 503 {
            assert!(retry_after, "503 carries Retry-After");
        }
        *counts.entry(code).or_insert(0) += 1;
    }
    assert!(
        counts.get(&503).copied().unwrap_or(0) > 200,
        "most were refused at once: {counts:?}"
    );
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        [401, 503],
        "{counts:?}"
    );
    let metrics = app.metrics().await;
    let overloaded = format!(
        r#"portcullis_denials_total{{reason="password checks overloaded"}} {}"#,
        counts[&503]
    );
    assert!(
        metrics.contains(&overloaded),
        "each 503 is a refusal for overload: {overloaded:?} in\n{metrics}"
    );
    println!(
        "flood answers {counts:?} in {:?}; token request served in {token_latency:?}",
        started.elapsed()
    );
}

/// `/metrics` exposes every series an operator alerts on, with the values the requests produced.
#[tokio::test]
async fn metrics_expose_every_named_series() {
    let app = spawn_app_with(Db::Sqlite, |s| s.lockout.account_threshold = 1).await;
    app.add_user("default", "alice", "right", Role::User).await;
    assert_eq!(status(&app, "alice", "right").await, 200);
    assert_eq!(status(&app, "alice", "right").await, 200);
    assert_eq!(status(&app, "alice", "wrong").await, 401);
    assert_eq!(status(&app, "alice", "right").await, 429);
    let text = app.metrics().await;
    for series in [
        r#"portcullis_tokens_issued_total{realm="default",method="password",platform=""} 2"#,
        r#"portcullis_denials_total{reason="wrong password"} 1"#,
        r#"portcullis_denials_total{reason="locked after repeated failures"} 1"#,
        "portcullis_password_check_duration_seconds_count 3",
        "portcullis_password_check_queue_depth 0",
        "portcullis_credential_cache_hit_ratio 0.3333",
        "portcullis_lockouts_total 1",
        r#"portcullis_http_request_duration_seconds_count{route="/auth/realms/{realm}/protocol/docker-v2/auth",status="200"} 2"#,
    ] {
        assert!(text.contains(series), "missing {series:?} in:\n{text}");
    }
}
