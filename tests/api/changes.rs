//! The change counters that tell servers their caches are stale: every write a token request
//! depends on moves them, whoever makes it (commands, hand-written SQL); the writes of the request
//! path itself (minting a token, recording its use or a replay, a further failure short of a lock)
//! do not, so they never empty the caches. On PostgreSQL a change still arrives within the documented bound
//! when the server's notification connection is lost.

use portcullis::auth::token::{self, TokenSpec};
use portcullis::config::LockoutSettings;
use portcullis::names::Username;
use portcullis::store::changes::Counters;
use portcullis::store::{unix_now, GrantRecord, Role, TokenKind};
use serde_json::{json, Value};

use crate::api::helpers::{claims, realm_name, spawn_app, Db, TestApp};
use crate::on_both_engines;

on_both_engines!(
    counters_follow_every_write_a_request_depends_on,
    hand_written_sql_reaches_the_next_request
);

async fn counters(app: &TestApp) -> Counters {
    app.store.counters().await.unwrap()
}

/// Runs `write` and returns how each counter moved: (accounts, grants, locks), each 0 or 1.
async fn moved(app: &TestApp, write: impl AsyncFnOnce()) -> (bool, bool, bool) {
    let before = counters(app).await;
    write().await;
    let after = counters(app).await;
    (
        after.accounts > before.accounts,
        after.grants > before.grants,
        after.locks > before.locks,
    )
}

const ACCOUNTS: (bool, bool, bool) = (true, false, false);
const GRANTS: (bool, bool, bool) = (false, true, false);
const LOCKS: (bool, bool, bool) = (false, false, true);
const NONE: (bool, bool, bool) = (false, false, false);

async fn counters_follow_every_write_a_request_depends_on(app: TestApp) {
    let realm = realm_name("default");
    let alice = Username::parse("alice").unwrap();
    let store = &app.store;
    let added = moved(&app, async || {
        app.add_user("default", "alice", "pw", Role::User).await
    });
    assert_eq!(added.await, ACCOUNTS, "user added");
    let user_id = store.find_user(&realm, &alice).await.unwrap().unwrap().id;

    let created = std::cell::OnceCell::new();
    let create = async || {
        let spec = TokenSpec {
            kind: TokenKind::Refresh,
            user_id,
            name: None,
            client_id: Some("docker"),
            scopes: None,
            expires_at: None,
        };
        let _ = created.set(token::create(store, &spec).await.unwrap());
    };
    assert_eq!(moved(&app, create).await, NONE, "a token minted");
    let created = created.into_inner().expect("created");
    let touch = async || store.touch_token(&created.id, unix_now()).await.unwrap();
    assert_eq!(moved(&app, touch).await, NONE, "a token's use recorded");
    let replay = async || {
        assert!(store
            .record_munge_use("00ff", unix_now() + 60, unix_now())
            .await
            .unwrap())
    };
    assert_eq!(moved(&app, replay).await, NONE, "a MUNGE replay recorded");
    let revoke = async || store.revoke_token(&realm, &created.id).await.unwrap();
    assert_eq!(moved(&app, revoke).await, ACCOUNTS, "a token revoked");

    let group = async || {
        store.create_group(&realm, "team").await.unwrap();
        store
            .set_membership(&realm, "team", &alice, true)
            .await
            .unwrap();
    };
    assert_eq!(moved(&app, group).await, ACCOUNTS, "a group and a member");
    let map = async || store.munge_map(&realm, "hpc", 1000, &alice).await.unwrap();
    assert_eq!(moved(&app, map).await, ACCOUNTS, "a MUNGE mapping");
    let disable = async || store.set_disabled(&realm, &alice, true).await.unwrap();
    assert_eq!(moved(&app, disable).await, ACCOUNTS, "a user disabled");

    let grant = GrantRecord {
        id: 0,
        subject: "group:team".into(),
        resource: "repository".into(),
        name: "team/**".into(),
        actions: vec!["pull".into()],
        effect: "allow".into(),
    };
    let add = async || {
        store.add_grant(&realm, &grant).await.unwrap();
    };
    assert_eq!(moved(&app, add).await, GRANTS, "a grant");

    let lockout = LockoutSettings::default();
    let subject = "address:192.0.2.1";
    let fail = async || {
        store
            .record_failure(subject, unix_now(), &lockout, 3)
            .await
            .unwrap();
    };
    assert_eq!(moved(&app, fail).await, LOCKS, "a subject's first failure");
    assert_eq!(
        moved(&app, fail).await,
        NONE,
        "a further failure short of a lock"
    );
    assert_eq!(moved(&app, fail).await, LOCKS, "the failure that locks");
    let unlock = async || assert!(store.clear_failures(subject).await.unwrap());
    assert_eq!(moved(&app, unlock).await, LOCKS, "an unlock");
}

async fn access(app: &TestApp, user: &str, scope: &str) -> (u16, Value) {
    let response = app
        .get_token(
            &format!("service=registry&scope={scope}"),
            Some((user, "pw")),
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let granted = body["token"]
        .as_str()
        .map_or(Value::Null, |jwt| claims(jwt)["access"].clone());
    (status, granted)
}

async fn hand_written_sql_reaches_the_next_request(app: TestApp) {
    app.add_user("default", "alice", "pw", Role::User).await;
    let team = "repository:team/app:pull";
    assert_eq!(access(&app, "alice", team).await, (200, json!([])));
    app.sql(
        "INSERT INTO grants (realm, subject, resource, name, actions, effect, created_at) \
         VALUES ('default', 'group:team', 'repository', 'team/**', 'pull', 'allow', 0)",
    )
    .await;
    app.sql("INSERT INTO groups (realm, name, created_at) VALUES ('default', 'team', 0)")
        .await;
    app.sql(
        "INSERT INTO group_members (group_id, user_id) \
         SELECT g.id, u.id FROM groups g, users u WHERE g.name = 'team' AND u.username = 'alice'",
    )
    .await;
    let pulled = json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]);
    app.after_change("grant and membership by SQL", (200, pulled), async || {
        access(&app, "alice", team).await
    })
    .await;
    app.sql("DELETE FROM group_members").await;
    app.after_change("membership removed by SQL", (200, json!([])), async || {
        access(&app, "alice", team).await
    })
    .await;
    app.sql("UPDATE users SET disabled_at = 1 WHERE username = 'alice'")
        .await;
    app.after_change("disabled by SQL", 401, async || {
        access(&app, "alice", team).await.0
    })
    .await;
}

/// The server's LISTEN connection is killed, then a change is made at once: the poll (or the
/// reconnection) still brings it within the bound.
#[tokio::test]
async fn postgres_changes_arrive_when_notifications_are_lost() {
    let app = spawn_app(Db::Postgres).await;
    app.add_user("default", "alice", "pw", Role::User).await;
    assert_eq!(
        access(&app, "alice", "repository:alice/app:pull").await.0,
        200
    );
    let listeners = app
        .sql_text(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
    assert_eq!(listeners, ["true"], "the server listens on one connection");
    app.store
        .set_disabled(
            &realm_name("default"),
            &Username::parse("alice").unwrap(),
            true,
        )
        .await
        .unwrap();
    app.after_change("disabled while not listening", 401, async || {
        access(&app, "alice", "repository:alice/app:pull").await.0
    })
    .await;
}
