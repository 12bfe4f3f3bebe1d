//! Clients that hold connections: a body announced and never finished is cut after
//! `server.client_timeout_secs` (408, connection closed), an announced body over
//! `server.max_body_bytes` is refused before it is sent (413), and hundreds of stalled bodies are
//! all let go while other clients are served. Raw sockets, since HTTP clients finish their bodies.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::helpers::{spawn_app_with, Db, TestApp};

/// The timeout these tests configure.
const CLIENT_TIMEOUT_SECS: u64 = 1;
/// How long past the timeout an answer may take on a loaded machine (the bug: never).
const SLACK: Duration = Duration::from_secs(4);
/// Stalled connections opened at once: more than the server has workers or password threads.
const STALLED: usize = 200;

async fn app() -> TestApp {
    spawn_app_with(Db::Sqlite, |s| {
        s.server.client_timeout_secs = CLIENT_TIMEOUT_SECS
    })
    .await
}

fn port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A POST head to the token endpoint with these extra header lines, and the start of a body.
fn post_head(extra: &str, body_start: &str) -> String {
    format!(
        "POST /auth/realms/default/protocol/docker-v2/auth HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{extra}\r\n{body_start}"
    )
}

/// Everything the server sends until it closes the connection, within `within`; `None` when it
/// keeps the connection open longer.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    match read {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&received).into_owned()),
        // A reset after the answer also ends the connection.
        Ok(Err(_)) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("none")
}

async fn stalled_after(app: &TestApp, head: &str) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port(app))).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let response = read_until_closed(
        &mut stream,
        Duration::from_secs(CLIENT_TIMEOUT_SECS) + SLACK,
    )
    .await
    .expect("the server closes a stalled connection");
    (response, started.elapsed())
}

#[tokio::test]
async fn a_body_that_stops_is_cut_with_408() {
    let app = app().await;
    let (response, _) = stalled_after(
        &app,
        &post_head("Content-Length: 10000\r\n", "grant_type=pass"),
    )
    .await;
    assert_eq!(status(&response), "408", "{response}");
    assert!(response.contains("not received within 1 s"), "{response}");
}

#[tokio::test]
async fn a_chunked_body_that_stops_is_cut_with_408() {
    let app = app().await;
    let (response, _) = stalled_after(
        &app,
        &post_head("Transfer-Encoding: chunked\r\n", "5\r\ngrant\r\n"),
    )
    .await;
    assert_eq!(status(&response), "408", "{response}");
}

#[tokio::test]
async fn an_announced_body_over_the_limit_is_refused_at_once() {
    // The default timeout (5 s): the answer must not wait for it.
    let app = spawn_app_with(Db::Sqlite, |_| {}).await;
    let (response, elapsed) =
        stalled_after(&app, &post_head("Content-Length: 99999999999999\r\n", "")).await;
    assert_eq!(status(&response), "413", "{response}");
    assert!(
        elapsed < Duration::from_secs(app.settings.server.client_timeout_secs),
        "413 after {elapsed:?}"
    );
}

#[tokio::test]
async fn hundreds_of_stalled_bodies_are_all_let_go() {
    let app = app().await;
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut stream = TcpStream::connect(("127.0.0.1", port(&app))).await.unwrap();
        stream
            .write_all(post_head("Content-Length: 10000\r\n", "").as_bytes())
            .await
            .unwrap();
        stalled.push(stream);
    }
    // Served meanwhile.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .timeout(SLACK)
        .send()
        .await
        .expect("answered beside the stalled connections");
    assert_eq!(health.status(), 200);
    let deadline = Duration::from_secs(CLIENT_TIMEOUT_SECS) + SLACK;
    let closed = futures_util::future::join_all(
        stalled
            .iter_mut()
            .map(|stream| read_until_closed(stream, deadline)),
    )
    .await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        open, 0,
        "{open} of {STALLED} stalled connections still open"
    );
    assert!(closed.iter().flatten().all(|r| status(r) == "408"));
}

#[tokio::test]
async fn a_chunked_body_no_route_reads_is_not_waited_for() {
    let app = app().await;
    let (response, _) = stalled_after(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    assert_eq!(status(&response), "200", "{response}");
}

#[tokio::test]
async fn a_chunked_body_that_arrives_is_read() {
    let app = app().await;
    let form = "grant_type=password&client_id=c&service=registry&username=nobody&password=x";
    let (first, rest) = form.split_at(20);
    let (response, _) = stalled_after(
        &app,
        &post_head(
            "Transfer-Encoding: chunked\r\nConnection: close\r\n",
            &format!(
                "{:x}\r\n{first}\r\n{:x}\r\n{rest}\r\n0\r\n\r\n",
                first.len(),
                rest.len()
            ),
        ),
    )
    .await;
    assert_eq!(status(&response), "401", "{response}");
}

#[tokio::test]
async fn a_head_that_stops_is_cut_by_the_same_timeout() {
    let app = app().await;
    let (response, elapsed) = stalled_after(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(status(&response), "408", "{response}");
    // actix-web's own default is 5 s.
    assert!(elapsed < Duration::from_secs(4), "408 after {elapsed:?}");
}
