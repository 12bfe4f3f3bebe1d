//! A database outage on PostgreSQL, under load: the test stops its own throwaway cluster
//! (`scripts/pg.sh`) and starts it again. Requests are answered 503 with Retry-After within
//! `database.acquire_timeout_ms` (plus the freshness bound while caches may still answer), never
//! 500 and never hung; `/readyz` fails; once the database is back everything is served again
//! without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::helpers::{spawn_app_at, TestApp};
use portcullis::config::Settings;
use portcullis::store::Role;

/// Requests sent at once during the test.
const LOADERS: usize = 4;
/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(4);
/// The longest any answer may take: the acquire timeout (1 s) and generous room for a loaded
/// machine. Without a bound, a request waited 30 s (sqlx's default) or until the database returned.
const ANSWER_BOUND: Duration = Duration::from_secs(4);
/// How long the server may take to notice the outage, or the return of the database.
const NOTICE_BOUND: Duration = Duration::from_secs(10);

/// A throwaway PostgreSQL cluster of this test's own, stopped when dropped.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn pg(&self, action: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh");
        let output = Command::new(script)
            .args([action, self.dir.to_str().unwrap()])
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            output.status.success(),
            "pg.sh {action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg("stop");
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: bool,
    took: Duration,
}

/// The kinds of request the load mixes: anonymous, a user's right password (checked once, then
/// cached), a wrong password (checked, counted towards a lock).
const CREDENTIALS: [Option<(&str, &str)>; 3] =
    [None, Some(("alice", "pw")), Some(("bob", "wrong"))];

async fn anonymous_token(app: &TestApp) -> Answer {
    token(app, None).await
}

async fn token(app: &TestApp, credentials: Option<(&str, &str)>) -> Answer {
    let started = Instant::now();
    let mut request = app
        .client
        .get(format!(
            "{}?service=registry&scope=repository:library/a:pull",
            app.token_url("default")
        ))
        .timeout(NOTICE_BOUND);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.expect("every request is answered");
    Answer {
        status: response.status().as_u16(),
        retry_after: response.headers().contains_key("retry-after"),
        took: started.elapsed(),
    }
}

async fn readyz(app: &TestApp) -> u16 {
    app.client
        .get(format!("{}/readyz", app.address))
        .timeout(NOTICE_BOUND)
        .send()
        .await
        .expect("/readyz answers")
        .status()
        .as_u16()
}

/// Waits until `/readyz` answers `status`; how long that took.
async fn ready_becomes(app: &TestApp, status: u16) -> Duration {
    let started = Instant::now();
    while readyz(app).await != status {
        assert!(
            started.elapsed() < NOTICE_BOUND,
            "/readyz not {status} after {NOTICE_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_database_outage_gets_quick_503s_and_recovers() {
    let base = tempfile::Builder::new()
        .prefix("pg-outage-")
        .tempdir_in("/tmp")
        .unwrap();
    let cluster = Cluster {
        dir: base.path().join("pg"),
    };
    let url = cluster.pg("start");
    let app = spawn_app_at(tempfile::tempdir().unwrap(), url, |settings| {
        settings.database.acquire_timeout_ms = Settings::default().database.acquire_timeout_ms;
    })
    .await;
    app.add_user("default", "alice", "pw", Role::User).await;
    app.add_user("default", "bob", "right", Role::User).await;
    assert_eq!(anonymous_token(&app).await.status, 200);

    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let loaders: Vec<_> = (0..LOADERS)
        .map(|loader| {
            let (app, answers, stop) = (app.clone(), answers.clone(), stop.clone());
            tokio::spawn(async move {
                for credentials in CREDENTIALS.iter().cycle().skip(loader) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let answer = token(&app, *credentials).await;
                    answers.lock().unwrap().push(answer);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg("stop");
    let noticed = ready_becomes(&app, 503).await;
    tokio::time::sleep(OUTAGE.saturating_sub(noticed)).await;
    let during: Vec<u16> = answers.lock().unwrap().iter().map(|a| a.status).collect();
    assert!(
        during.contains(&503),
        "no 503 during the outage: {during:?}"
    );
    cluster.pg("start");
    ready_becomes(&app, 200).await;
    let back = Instant::now();
    while anonymous_token(&app).await.status != 200 {
        assert!(back.elapsed() < NOTICE_BOUND, "tokens not served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for loader in loaders {
        loader.await.unwrap();
    }

    let answers = answers.lock().unwrap();
    for answer in answers.iter() {
        // 401 and 429 answer the wrong password.
        assert!(
            matches!(answer.status, 200 | 401 | 429)
                || (answer.status == 503 && answer.retry_after),
            "{answer:?}"
        );
        assert!(answer.took < ANSWER_BOUND, "{answer:?}");
    }
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    eprintln!(
        "{} answers, {} of them 503, the slowest after {slowest:?}",
        answers.len(),
        answers.iter().filter(|a| a.status == 503).count()
    );
}
