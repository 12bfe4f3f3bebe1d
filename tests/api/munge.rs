//! The MUNGE front door over HTTP, with credentials made by a real munged: uid mappings, gateway
//! payloads with `authorized_locations`, the carriers Shifter uses, binding, restriction, and a
//! replay cache shared by every instance on one database.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::FutureExt;
use portcullis::config::{MungeSettings, PlatformSettings, Settings};
use portcullis::munge::MAX_TTL_SECS;
use portcullis::names::Username;
use portcullis::store::{unix_now, Role};
use serde_json::{json, Value};

use crate::api::helpers::{claims, realm_name, spawn_app_beside, spawn_app_with, Db, TestApp};
use crate::common::munged::Munged;
use crate::on_both_engines;

const PLATFORM: &str = "perlmutter";
const LOCATION: &str = "registry.example.org";

fn munge_realm(munged: &Munged) -> impl FnOnce(&mut Settings) {
    let key_file = munged.key_path().to_owned();
    move |settings| {
        settings.realms.entry("default".into()).or_default().munge = Some(MungeSettings {
            platforms: vec![PlatformSettings {
                name: PLATFORM.into(),
                key_file,
                max_ttl_secs: MAX_TTL_SECS,
                clock_skew_secs: 0,
            }],
            locations: vec![LOCATION.into()],
            default_location: true,
            ..MungeSettings::default()
        });
    }
}

/// A server whose default realm accepts `munged`'s platform, with alice (mapped from uid 0, the
/// uid `munge` runs as here) and bob.
async fn app(db: Db, munged: &Munged) -> TestApp {
    let app = spawn_app_with(db, munge_realm(munged)).await;
    app.add_user("default", "alice", "alice:pw:with:colons", Role::User)
        .await;
    app.add_user("default", "bob", "bobpw", Role::User).await;
    app.store
        .munge_map(
            &realm_name("default"),
            PLATFORM,
            0,
            &Username::parse("alice").unwrap(),
        )
        .await
        .unwrap();
    app
}

const QUERY: &str = "service=registry&scope=repository:alice/app:pull";

async fn with_header(app: &TestApp, credential: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}?{QUERY}", app.token_url("default")))
        .header("authentication", credential)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn subject(body: &Value) -> Value {
    claims(body["token"].as_str().unwrap())["sub"].clone()
}

macro_rules! munge_cases {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn sqlite() {
                    let munged = crate::common::munged::Munged::start(&[]);
                    super::$case(super::app(crate::api::helpers::Db::Sqlite, &munged).await, &munged).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let munged = crate::common::munged::Munged::start(&[]);
                    super::$case(super::app(crate::api::helpers::Db::Postgres, &munged).await, &munged).await;
                }
            }
        )*
    };
}

munge_cases!(
    mapped_uid_gets_a_token_once,
    authorized_locations_choose_our_entry,
    shifter_carriers_work,
    binding_and_restriction,
    credentials_sent_together_are_each_accepted_once,
);

async fn mapped_uid_gets_a_token_once(app: TestApp, munged: &Munged) {
    let credential = make(munged, &[], b"");
    let (status, body) = with_header(&app, &credential).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(subject(&body), "alice");
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
    );
    let (status, body) = with_header(&app, &credential).await;
    assert_eq!(status, 401, "replayed: {body}");
    let metrics = app.metrics().await;
    let issued = format!(
        r#"portcullis_tokens_issued_total{{realm="default",method="munge",platform="{PLATFORM}"}} 1"#
    );
    assert!(metrics.contains(&issued), "{metrics}");
    assert!(
        metrics.contains(r#"portcullis_denials_total{reason="munge: credential replayed"} 1"#),
        "{metrics}"
    );

    app.store
        .munge_unmap(&realm_name("default"), PLATFORM, 0)
        .await
        .unwrap();
    app.after_change("unmapped", 401, async || {
        with_header(&app, &make(munged, &[], b"")).await.0
    })
    .await;
    let (status, body) = with_header(&app, &make(munged, &[], b"")).await;
    assert_eq!(status, 401);
    assert!(
        !body.to_string().contains("uid"),
        "the response does not name the uid: {body}"
    );

    let form = format!(
        "grant_type=password&client_id=gateway&service=registry&username=x&password={}",
        urlencode(&make(munged, &[], b""))
    );
    assert_eq!(
        app.post_token(&form).await.status(),
        401,
        "unmapped through POST too"
    );
}

/// Uses that arrive together are recorded together: each fresh credential is accepted, and a
/// credential sent several times at once is accepted exactly once.
async fn credentials_sent_together_are_each_accepted_once(app: TestApp, munged: &Munged) {
    let fresh = (0..6).map(|_| make(munged, &[], b"")).collect::<Vec<_>>();
    let repeated = make(munged, &[], b"");
    let all = fresh.iter().chain([&repeated; 6]);
    let answers = statuses(&app, all).await;
    assert_eq!(answers[..6], [200; 6], "fresh: {answers:?}");
    let mut repeats = answers[6..].to_vec();
    repeats.sort_unstable();
    assert_eq!(repeats, [200, 401, 401, 401, 401, 401], "{answers:?}");
    let again = statuses(&app, &fresh).await;
    assert_eq!(again, [401; 6], "each recorded");
}

on_both_engines!(a_dropped_request_leaves_no_use_unrecorded_or_unanswered);

/// A client that hangs up while its credential's use waits to be recorded with others: the use it
/// brought is still recorded (a later replay is refused), and the use that waited with it gets
/// its answer.
async fn a_dropped_request_leaves_no_use_unrecorded_or_unanswered(app: TestApp) {
    let store = &app.store;
    let (now, expires_at) = (unix_now(), unix_now() + 60);
    // The first use of a process also purges expired records: out of the way before the test.
    assert!(store.record_munge_use("00", expires_at, now).await.unwrap());
    let mut first = Box::pin(store.record_munge_use("aa", expires_at, now));
    assert!(
        (&mut first).now_or_never().is_none(),
        "waits for the others"
    );
    let second = store.record_munge_use("bb", expires_at, now);
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), second).await;
    assert!(second.expect("answered, not left waiting").unwrap());
    assert!(!store.record_munge_use("aa", expires_at, now).await.unwrap());
}

/// The statuses of requests sent at once, one per credential.
async fn statuses(app: &TestApp, credentials: impl IntoIterator<Item = &String>) -> Vec<u16> {
    join_all(
        credentials
            .into_iter()
            .map(|credential| async { with_header(app, credential).await.0 }),
    )
    .await
}

async fn authorized_locations_choose_our_entry(app: TestApp, munged: &Munged) {
    let both = json!({"authorized_locations": {"default": "bob:bobpw", LOCATION: "alice:alice:pw:with:colons"}});
    let (status, body) = with_header(&app, &make(munged, &[], both.to_string().as_bytes())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        subject(&body),
        "alice",
        "the specific entry wins; the password keeps its colons"
    );
    let default_only = json!({"authorized_locations": {"default": "bob:bobpw"}});
    let (status, body) = with_header(
        &app,
        &make(munged, &[], default_only.to_string().as_bytes()),
    )
    .await;
    assert_eq!((status, subject(&body)), (200, json!("bob")));
    let wrong = json!({"authorized_locations": {LOCATION: "bob:wrong"}});
    assert_eq!(
        with_header(&app, &make(munged, &[], wrong.to_string().as_bytes()))
            .await
            .0,
        401
    );
    let elsewhere = json!({"authorized_locations": {"other.example.org": "bob:bobpw"}});
    assert_eq!(
        with_header(&app, &make(munged, &[], elsewhere.to_string().as_bytes()))
            .await
            .0,
        401
    );
}

async fn shifter_carriers_work(app: TestApp, munged: &Munged) {
    let stripped = make(munged, &[], b"").replace(':', "");
    let response = app.get_token(QUERY, Some(("gateway", &stripped))).await;
    assert_eq!(response.status(), 200, "colons stripped");
    let python_bytes = format!(
        "Basic b'{}'",
        STANDARD.encode(format!("gateway:{}", make(munged, &[], b"")))
    );
    let response = app
        .client
        .get(format!("{}?{QUERY}", app.token_url("default")))
        .header("authorization", python_bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "Basic b'...'");
    let form = format!(
        "grant_type=password&client_id=gateway&service=registry&username=gateway&password={}",
        urlencode(&make(munged, &[], b""))
    );
    let body: Value = app.post_token(&form).await.json().await.unwrap();
    assert_eq!(
        subject(&body),
        "alice",
        "POST password grant carrying a credential"
    );
    let response = app
        .client
        .post(app.token_url("default"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authentication", make(munged, &[], b""))
        .body("grant_type=password&client_id=gateway&service=registry")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "POST with the authentication header"
    );
}

async fn binding_and_restriction(app: TestApp, munged: &Munged) {
    let bound = |extra: Value| {
        let mut payload = json!({"authorized_locations": {LOCATION: "bob:bobpw"}});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        make(munged, &[], payload.to_string().as_bytes())
    };
    assert_eq!(
        with_header(&app, &bound(json!({"service": "registry"})))
            .await
            .0,
        200
    );
    assert_eq!(
        with_header(&app, &bound(json!({"service": "other"})))
            .await
            .0,
        401
    );
    assert_eq!(
        with_header(&app, &bound(json!({"scope": "repository:alice/app:pull"})))
            .await
            .0,
        200
    );
    assert_eq!(
        with_header(&app, &bound(json!({"scope": "repository:alice/app:push"})))
            .await
            .0,
        401
    );
    assert_eq!(
        with_header(&app, &make(munged, &["-u", "4321"], b""))
            .await
            .0,
        401,
        "restricted to another uid"
    );
    assert_eq!(with_header(&app, "MUNGE:garbage:").await.0, 401);
    let response = app
        .client
        .get(format!("{}?{QUERY}", app.token_url("default")))
        .header("authentication", "not a credential")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// Instances sharing one PostgreSQL share the replay cache.
#[tokio::test]
async fn a_replay_against_a_second_instance_is_refused() {
    let munged = Munged::start(&[]);
    let first = app(Db::Postgres, &munged).await;
    let second = spawn_app_beside(&first, munge_realm(&munged)).await;
    let credential = make(&munged, &[], b"");
    assert_eq!(with_header(&first, &credential).await.0, 200);
    assert_eq!(
        with_header(&second, &credential).await.0,
        401,
        "replayed on the other instance"
    );
    assert_eq!(with_header(&second, &make(&munged, &[], b"")).await.0, 200);
}

/// A realm without platforms refuses credentials.
#[tokio::test]
async fn realms_without_platforms_refuse_credentials() {
    let munged = Munged::start(&[]);
    let app = spawn_app_with(Db::Sqlite, |_| {}).await;
    assert_eq!(with_header(&app, &make(&munged, &[], b"")).await.0, 401);
}

/// A credential from the real `munge`, as a gateway would send it (no trailing newline).
fn make(munged: &Munged, args: &[&str], payload: &[u8]) -> String {
    munged.encode(args, payload).trim().to_owned()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A platform key readable by others, or too short, stops the server at start.
#[tokio::test]
async fn exposed_or_short_platform_keys_refuse_to_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (bytes, mode, expected) in [(vec![7u8; 64], 0o644, "mode"), (vec![7u8; 16], 0o600, "")] {
        let key_file = dir.path().join(format!("key-{mode:o}-{}", bytes.len()));
        std::fs::write(&key_file, &bytes).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut settings = Settings::default();
        settings.server.listen = "127.0.0.1:0".into();
        settings.database.url = format!("sqlite://{}/db.sqlite", dir.path().display());
        settings.keys.dir = dir.path().join("keys");
        settings.realms.entry("default".into()).or_default().munge = Some(MungeSettings {
            platforms: vec![PlatformSettings {
                name: PLATFORM.into(),
                key_file: key_file.clone(),
                max_ttl_secs: MAX_TTL_SECS,
                clock_skew_secs: 0,
            }],
            ..MungeSettings::default()
        });
        let error = portcullis::startup::Application::build(&settings)
            .await
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(
            message.contains(PLATFORM) && message.contains(&*key_file.to_string_lossy()),
            "{message}"
        );
        assert!(message.contains(expected), "{message}");
    }
}
