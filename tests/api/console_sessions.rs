//! The web console's sessions over plain HTTP (the browser test, `tests/console.rs`, drives the
//! pages): sign-in answers alike for a wrong password and an unknown user, counts toward the token
//! endpoint's lockout, and sessions end at their idle and absolute deadlines, when their user is
//! disabled, and everywhere at once.

use crate::api::helpers::TestApp;
use crate::on_both_engines;
use portcullis::store::{unix_now, Role};
use reqwest::redirect::Policy;
use reqwest::Response;

on_both_engines!(
    sign_in_refuses_alike_and_shares_the_token_endpoints_lockout,
    sessions_end_idle_absolute_disabled_and_everywhere,
);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(app: &TestApp, user: &str, password: &str) -> Response {
    client()
        .post(format!("{}/console/sign-in", app.address))
        .form(&[
            ("realm", "default"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// The session cookie a successful sign-in set, as `name=value`.
async fn session(app: &TestApp, user: &str, password: &str) -> String {
    let response = sign_in(app, user, password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/tokens");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The status of the tokens page with this cookie (200, or 303 to sign in).
async fn tokens_page(app: &TestApp, cookie: &str) -> (u16, String) {
    let response = client()
        .get(format!("{}/console/tokens", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The session's CSRF token, from its tokens page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().unwrap().to_owned()
}

async fn sign_in_refuses_alike_and_shares_the_token_endpoints_lockout(app: TestApp) {
    app.add_user("default", "alice", "alice-pw", Role::User)
        .await;
    let wrong = sign_in(&app, "alice", "nope").await;
    let wrong = (wrong.status().as_u16(), wrong.text().await.unwrap());
    let unknown = sign_in(&app, "nobody", "nope").await;
    let unknown = (unknown.status().as_u16(), unknown.text().await.unwrap());
    assert_eq!(wrong.0, 401);
    assert_eq!(
        wrong.1.replace("alice", "USER"),
        unknown.1.replace("nobody", "USER"),
        "a wrong password and an unknown user read the same"
    );
    // Different wrong passwords (a retried one counts once).
    for i in 0..4 {
        let wrong = format!("nope-{i}");
        assert_eq!(sign_in(&app, "alice", &wrong).await.status(), 401);
    }
    // Five failures at the console lock the account at the token endpoint too, and back.
    let token = app
        .get_token("service=registry", Some(("alice", "alice-pw")))
        .await;
    assert_eq!(token.status(), 429, "locked by the console's failures");
    let locked = sign_in(&app, "alice", "alice-pw").await;
    assert_eq!(locked.status(), 429);
    assert!(locked
        .text()
        .await
        .unwrap()
        .contains("Too many failed attempts"));
}

async fn sessions_end_idle_absolute_disabled_and_everywhere(app: TestApp) {
    app.add_user("default", "alice", "alice-pw", Role::User)
        .await;
    let cookie = session(&app, "alice", "alice-pw").await;
    assert_eq!(tokens_page(&app, &cookie).await.0, 200);
    assert_eq!(tokens_page(&app, "portcullis_console=forged").await.0, 303);

    // Idle: no request for longer than idle_timeout_secs.
    let idle = app.settings.console.idle_timeout_secs as i64;
    app.sql(&format!(
        "UPDATE console_sessions SET last_seen_at = {}",
        unix_now() - idle - 1
    ))
    .await;
    assert_eq!(tokens_page(&app, &cookie).await.0, 303, "idle too long");
    assert_eq!(tokens_page(&app, &cookie).await.0, 303, "and gone for good");

    // Absolute: however busy, it ends at expires_at.
    let cookie = session(&app, "alice", "alice-pw").await;
    app.sql(&format!(
        "UPDATE console_sessions SET expires_at = {}",
        unix_now() - 1
    ))
    .await;
    assert_eq!(
        tokens_page(&app, &cookie).await.0,
        303,
        "past its absolute end"
    );

    // A disabled user's session opens nothing.
    let cookie = session(&app, "alice", "alice-pw").await;
    app.sql("UPDATE users SET disabled_at = 1 WHERE username = 'alice'")
        .await;
    assert_eq!(tokens_page(&app, &cookie).await.0, 303, "disabled");
    app.sql("UPDATE users SET disabled_at = NULL WHERE username = 'alice'")
        .await;

    // Sign-out everywhere ends every session of the user, and only with the CSRF token.
    let first = session(&app, "alice", "alice-pw").await;
    let second = session(&app, "alice", "alice-pw").await;
    let (_, page) = tokens_page(&app, &first).await;
    let everywhere = format!("{}/console/sign-out-everywhere", app.address);
    let forged = client()
        .post(&everywhere)
        .header("cookie", &first)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(tokens_page(&app, &second).await.0, 200, "nothing ended");
    let ended = client()
        .post(&everywhere)
        .header("cookie", &first)
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    assert_eq!(tokens_page(&app, &first).await.0, 303);
    assert_eq!(tokens_page(&app, &second).await.0, 303);
}
