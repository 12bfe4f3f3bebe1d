//! The web console in a real browser: Debian's chromium, headless, driven through chromedriver.
//! A person signs in, makes an access token, pushes with it through skopeo to the real registry,
//! revokes it and is refused; an admin puts her in a group and the policy explanation shows the
//! grant. The session cookie's flags, CSRF refusals and the pages' security headers are checked
//! on the wire. Screenshots of the main pages go to `target/tmp/console-screenshots/`.

pub mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::external::{build_oci_image, describe, run, skopeo, Chromedriver, Registry};
use common::portcullis::Portcullis;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Where the screenshots are written.
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless chromium session.
async fn browser(driver: &Chromedriver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .expect("chromedriver starts a chromium session")
}

async fn fill(client: &Client, id: &str, text: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn press(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until the page holds `needle` (a click on a form's button returns before the next page
/// is there), and returns the page.
async fn page_with(client: &Client, needle: &str) -> String {
    for _ in 0..400 {
        let page = client.source().await.unwrap();
        if page.contains(needle) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {needle:?} in:\n{}", client.source().await.unwrap());
}

async fn sign_in(client: &Client, base: &str, user: &str, password: &str) {
    client.goto(&format!("{base}/console/")).await.unwrap();
    assert!(client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/sign-in"));
    fill(client, "username", user).await;
    fill(client, "password", password).await;
    press(client, "form[action='/console/sign-in'] button").await;
    page_with(client, "<h1>My tokens</h1>").await;
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Pushes a fresh image to `repository` on `registry` with these credentials.
fn push(
    registry: &Registry,
    work: &std::path::Path,
    creds: &str,
    repository: &str,
) -> std::process::Output {
    let layout = build_oci_image(&work.join(repository.replace('/', "_")), "v1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/{repository}:v1", registry.host()),
    ])
}

/// The status of `curl` with these arguments.
fn curl_status(args: &[&str]) -> String {
    let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    String::from_utf8(run("curl", &all).stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_makes_a_token_pushes_with_it_and_revokes_it_and_an_admin_grants_through_a_group()
{
    let p = Portcullis::start_with_config("[console]\nregistry = \"registry.example:5000\"\n");
    p.add_user("alice", "alice-pw", false);
    p.add_user("root", "root-pw", true);
    p.cli_ok(
        &[
            "grant",
            "add",
            "--subject",
            "group:devs",
            "--name",
            "shared/*",
            "--actions",
            "pull",
        ],
        "",
    );
    let config = p.registry_config();
    let registry = Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    );
    let work = tempfile::tempdir().unwrap();
    let driver = Chromedriver::start();
    let client = browser(&driver).await;
    let base = p.url();

    // Alice signs in and makes a token.
    sign_in(&client, &base, "alice", "alice-pw").await;
    fill(&client, "name", "laptop").await;
    press(&client, "form[action='/console/tokens'] button").await;
    page_with(&client, "id=\"secret\"").await;
    let secret = client
        .find(Locator::Id("secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(secret.starts_with("pcat_"), "{secret}");
    let login = client
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        login,
        "docker login -u alice --password-stdin registry.example:5000"
    );
    screenshot(&client, "tokens").await;

    // The cookie: HttpOnly, SameSite=Strict, the console's path only.
    let cookies = client.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "portcullis_console")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert_eq!(session.path(), Some("/console"));
    let cookie = format!("portcullis_console={}", session.value());

    // The token pushes to alice's namespace through the real registry.
    let creds = format!("alice:{secret}");
    let pushed = push(&registry, work.path(), &creds, "alice/app");
    assert!(
        pushed.status.success(),
        "{}\n{}",
        describe(&pushed),
        p.log()
    );

    // Forms need the session's CSRF token, and posts from another site are refused.
    let tokens_url = format!("{base}/console/tokens");
    for extra in [
        vec!["--data", "name=forged"],
        vec!["--data", "name=forged&csrf=wrong"],
        vec![
            "-H",
            "Origin: https://evil.example",
            "--data",
            "name=forged",
        ],
        vec!["-H", "Sec-Fetch-Site: cross-site", "--data", "name=forged"],
    ] {
        let mut args = vec!["-b", cookie.as_str()];
        args.extend(extra.iter().copied());
        args.push(&tokens_url);
        assert_eq!(curl_status(&args), "403", "{extra:?}");
    }
    let headers = run(
        "curl",
        &[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("{base}/console/sign-in"),
        ],
    );
    let headers = String::from_utf8(headers.stdout).unwrap().to_lowercase();
    for expected in [
        "content-security-policy: default-src 'none'",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
    ] {
        assert!(headers.contains(expected), "{expected}: {headers}");
    }

    // Alice revokes it in the page; the registry refuses it from then on.
    press(&client, "button[aria-label='Revoke laptop']").await;
    page_with(&client, "<td>revoked</td>").await;
    let refused = push(&registry, work.path(), &creds, "alice/again");
    assert!(!refused.status.success(), "a revoked token pushes nothing");

    // Alice signs out; her cookie opens nothing any more.
    press(&client, "form[action='/console/sign-out'] button").await;
    page_with(&client, "<h1>Sign in</h1>").await;
    assert_eq!(
        curl_status(&["-b", &cookie, &tokens_url]),
        "303",
        "the session ended"
    );

    // An admin puts alice in group devs; the explanation then shows the group's grant.
    sign_in(&client, &base, "root", "root-pw").await;
    client.goto(&format!("{base}/console/admin")).await.unwrap();
    fill(&client, "explain-user", "alice").await;
    fill(&client, "explain-scope", "repository:shared/app:pull").await;
    press(&client, "form[action='/console/admin/explain'] button").await;
    page_with(&client, "id=\"explanation\"").await;
    let before = client
        .find(Locator::Id("explanation"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(before.contains("nothing granted"), "{before}");
    fill(&client, "member-user", "alice").await;
    fill(&client, "member-group", "devs").await;
    press(&client, "form[action='/console/admin/members'] button").await;
    page_with(&client, "alice is in group devs").await;
    fill(&client, "explain-user", "alice").await;
    fill(&client, "explain-scope", "repository:shared/app:pull").await;
    press(&client, "form[action='/console/admin/explain'] button").await;
    page_with(&client, "granted repository:shared/app:pull").await;
    let after = client
        .find(Locator::Id("explanation"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        after.contains("granted repository:shared/app:pull"),
        "{after}"
    );
    let block = client
        .find(Locator::Id("registry-config"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(block.contains("rootcertbundle:"), "{block}");
    // The recent audit events show what was just done, and the token requests before it.
    let mut events = String::new();
    for _ in 0..100 {
        client.goto(&format!("{base}/console/admin")).await.unwrap();
        events = match client.find(Locator::Id("events")).await {
            Ok(table) => table.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if events.contains("group_member_added") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for expected in [
        "group_member_added",
        "by=root",
        "console_signed_in",
        "access_token_created",
        "token_revoked",
        "granted",
        "refused",
    ] {
        assert!(events.contains(expected), "{expected} not in {events}");
    }
    screenshot(&client, "admin").await;

    // A user never reaches the admin page.
    client.delete_all_cookies().await.unwrap();
    sign_in(&client, &base, "alice", "alice-pw").await;
    client.goto(&format!("{base}/console/admin")).await.unwrap();
    page_with(&client, "this page is for the realm").await;
    client
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    screenshot(&client, "sign-in").await;
    client.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
}
