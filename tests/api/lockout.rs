//! The lockout against concurrency, retries and several instances: a burst of wrong passwords runs
//! no more password checks than the threshold allows (the rest get 429 at once), a client's retry
//! of the same wrong password is refused again but counted once, and a success on one instance
//! clears the failures counted on another.

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis::auth::lockout::{address_subject, lockout_subject};
use portcullis::auth::password::Hasher;
use portcullis::config::Settings;
use portcullis::names::Username;
use portcullis::store::changes::FRESHNESS;
use portcullis::store::Role;
use secrecy::SecretString;

use crate::api::helpers::{realm_name, spawn_app_beside, spawn_app_with, Db, TestApp};

/// Concurrent attempts in a burst.
const BURST: usize = 60;

async fn status(app: &TestApp, user: &str, password: &str) -> u16 {
    app.get_token("service=registry", Some((user, password)))
        .await
        .status()
        .as_u16()
}

/// Password checks run so far, from `/metrics` (a refusal without a check is not one).
async fn password_checks(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_password_check_duration_seconds_count "))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// Password checks slow enough for a burst to overlap, and a queue that takes the whole burst,
/// so that only the lockout can refuse.
fn slow_checks(settings: &mut Settings) {
    settings.passwords.argon2_memory_kib = 8192;
    settings.passwords.argon2_iterations = 2;
    settings.passwords.max_queued_checks = 4 * BURST;
}

/// Sends `BURST` password attempts at once, `(user, password)` from `attempt(i)`; answers by
/// status, each 429 checked for Retry-After.
async fn burst(app: &TestApp, attempt: impl Fn(usize) -> (String, String)) -> BTreeMap<u16, usize> {
    let requests: Vec<_> = (0..BURST)
        .map(|i| {
            let (user, password) = attempt(i);
            let request = app
                .client
                .get(format!("{}?service=registry", app.token_url("default")))
                .basic_auth(user, Some(password))
                .timeout(Duration::from_secs(60));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for request in requests {
        let response = request.await.unwrap().expect("every attempt is answered");
        let code = response.status().as_u16();
        if code == 429 {
            assert!(
                response.headers().contains_key("retry-after"),
                "429 without Retry-After"
            );
        }
        *counts.entry(code).or_insert(0) += 1;
    }
    counts
}

async fn failures(app: &TestApp, subject: &str) -> i64 {
    app.store.failure_record(subject).await.unwrap().failures
}

fn alice() -> String {
    lockout_subject(&realm_name("default"), &Username::parse("alice").unwrap())
}

/// 60 different wrong passwords for one account at once: at most `account_threshold` are checked
/// (and answered 401), every other one gets 429 without a check; the account is then locked.
async fn a_burst_on_one_account_runs_at_most_threshold_checks(engine: Db) {
    let app = spawn_app_with(engine, slow_checks).await;
    app.add_user("default", "alice", "right", Role::User).await;
    let threshold = app.settings.lockout.account_threshold as usize;
    let counts = burst(&app, |i| ("alice".into(), format!("guess{i}"))).await;
    let checks = password_checks(&app).await;
    assert!(
        checks as usize <= threshold,
        "{checks} checks, answers {counts:?}"
    );
    assert_eq!(
        counts.get(&401).copied().unwrap_or(0),
        checks as usize,
        "{counts:?}"
    );
    assert_eq!(
        counts.get(&429).copied().unwrap_or(0),
        BURST - checks as usize,
        "{counts:?}"
    );
    assert!(failures(&app, &alice()).await <= threshold as i64);
    assert_eq!(status(&app, "alice", "right").await, 429, "locked");
}

#[tokio::test]
async fn a_burst_on_one_account_runs_at_most_threshold_checks_sqlite() {
    a_burst_on_one_account_runs_at_most_threshold_checks(Db::Sqlite).await;
}

#[tokio::test]
async fn a_burst_on_one_account_runs_at_most_threshold_checks_postgres() {
    a_burst_on_one_account_runs_at_most_threshold_checks(Db::Postgres).await;
}

/// The same from one address against 60 different names: at most `address_threshold` checks.
#[tokio::test]
async fn a_burst_from_one_address_runs_at_most_threshold_checks() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        slow_checks(s);
        s.lockout.address_threshold = 7;
    })
    .await;
    let counts = burst(&app, |i| (format!("user{i}"), "guess".into())).await;
    let checks = password_checks(&app).await;
    assert!(checks <= 7, "{checks} checks, answers {counts:?}");
    assert_eq!(
        counts.get(&429).copied().unwrap_or(0),
        BURST - checks as usize,
        "{counts:?}"
    );
    let address = address_subject("127.0.0.1");
    assert!(failures(&app, &address).await <= 7);
}

/// The same wrong password sent 60 times at once is checked once and counted once: the attempt
/// checked gets 401, the copies that waited for it 429 (a burst, whatever its passwords), and any
/// sent after it ended 401 again without a check.
#[tokio::test]
async fn copies_of_one_attempt_are_checked_and_counted_once() {
    let app = spawn_app_with(Db::Sqlite, slow_checks).await;
    app.add_user("default", "alice", "right", Role::User).await;
    let counts = burst(&app, |_| ("alice".into(), "typo".into())).await;
    let refused = counts.get(&401).copied().unwrap_or(0);
    let throttled = counts.get(&429).copied().unwrap_or(0);
    assert!(refused >= 1 && refused + throttled == BURST, "{counts:?}");
    assert!(throttled >= BURST / 2, "copies answered 401: {counts:?}");
    assert_eq!(password_checks(&app).await, 1);
    assert_eq!(failures(&app, &alice()).await, 1);
    assert_eq!(failures(&app, &address_subject("127.0.0.1")).await, 1);
}

/// oras retries a refused login five times: one typo must not lock the account. A repeat costs no
/// check, for a user and for an unknown name alike, and is checked again once the stored hash
/// changes.
async fn a_clients_retries_count_once(app: TestApp) {
    app.add_user("default", "alice", "right", Role::User).await;
    let threshold = app.settings.lockout.account_threshold;
    for _ in 0..=threshold {
        assert_eq!(status(&app, "alice", "typo").await, 401);
        assert_eq!(status(&app, "ghost", "typo").await, 401);
    }
    assert_eq!(
        password_checks(&app).await,
        2,
        "each repeat refused without a check"
    );
    assert_eq!(failures(&app, &alice()).await, 1);
    assert_eq!(status(&app, "alice", "right").await, 200, "not locked");

    let hash = Hasher::new(&app.settings.passwords)
        .unwrap()
        .hash(&SecretString::from("typo"))
        .unwrap();
    let realm = realm_name("default");
    let name = Username::parse("alice").unwrap();
    assert_eq!(status(&app, "alice", "typo").await, 401);
    app.store.set_password(&realm, &name, &hash).await.unwrap();
    app.after_change("a new hash is checked again", 200, async || {
        status(&app, "alice", "typo").await
    })
    .await;

    for i in 0..threshold {
        assert_eq!(status(&app, "alice", &format!("wrong{i}")).await, 401);
    }
    assert_eq!(
        status(&app, "alice", "typo").await,
        429,
        "different ones still lock"
    );
}

#[tokio::test]
async fn a_clients_retries_count_once_sqlite() {
    a_clients_retries_count_once(spawn_app_with(Db::Sqlite, |_| {}).await).await;
}

#[tokio::test]
async fn a_clients_retries_count_once_postgres() {
    a_clients_retries_count_once(spawn_app_with(Db::Postgres, |_| {}).await).await;
}

/// Four wrong passwords on instance A, the right one on B (whose cache had seen no failure), one
/// more wrong on A: the success in between cleared the failures, so the account is not locked.
async fn a_success_on_one_instance_clears_failures_counted_on_another(engine: Db) {
    let a = spawn_app_with(engine, |_| {}).await;
    let b = spawn_app_beside(&a, |_| {}).await;
    a.add_user("default", "alice", "right", Role::User).await;
    assert_eq!(
        status(&b, "alice", "right").await,
        200,
        "B caches: no failures"
    );
    let threshold = a.settings.lockout.account_threshold;
    for i in 1..threshold {
        assert_eq!(status(&a, "alice", &format!("wrong{i}")).await, 401);
    }
    // The documented bound for a change to reach another instance.
    tokio::time::sleep(FRESHNESS).await;
    assert_eq!(status(&b, "alice", "right").await, 200);
    assert_eq!(
        failures(&a, &alice()).await,
        0,
        "B's success cleared A's failures"
    );
    assert_eq!(status(&a, "alice", "wrong-again").await, 401);
    assert_eq!(status(&a, "alice", "right").await, 200, "not locked");
}

#[tokio::test]
async fn a_success_on_one_instance_clears_failures_counted_on_another_sqlite() {
    a_success_on_one_instance_clears_failures_counted_on_another(Db::Sqlite).await;
}

#[tokio::test]
async fn a_success_on_one_instance_clears_failures_counted_on_another_postgres() {
    a_success_on_one_instance_clears_failures_counted_on_another(Db::Postgres).await;
}
