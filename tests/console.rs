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

/// The text of the element with this id.
async fn text_of(client: &Client, id: &str) -> String {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Makes an access token named `name` on the tokens page, with `scopes` typed besides the
/// checked choices; its secret, as the page shows it once.
async fn make_token(client: &Client, name: &str, scopes: &str) -> String {
    fill(client, "name", name).await;
    fill(client, "scopes", scopes).await;
    press(client, "form[action='/console/tokens'] button").await;
    page_with(client, "id=\"secret\"").await;
    let secret = text_of(client, "secret").await;
    assert!(secret.starts_with("pcat_"), "{secret}");
    secret
}

/// The real registry, trusting the default realm of `p`.
fn registry_of(p: &Portcullis) -> Registry {
    let config = p.registry_config();
    Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    )
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

/// The status line and headers of a GET of `url`, as curl shows them.
fn response_headers(url: &str) -> String {
    let answer = run("curl", &["-s", "-D", "-", "-o", "/dev/null", url]);
    String::from_utf8(answer.stdout).unwrap()
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
    let p = Portcullis::start_with_config(
        "[console]\nregistry = \"registry.example:5000\"\n[audit]\nkeep_grants = true\n",
    );
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
    let registry = registry_of(&p);
    let work = tempfile::tempdir().unwrap();
    let driver = Chromedriver::start();
    let client = browser(&driver).await;
    let base = p.url();

    // Alice signs in and makes a token.
    sign_in(&client, &base, "alice", "alice-pw").await;
    let secret = make_token(&client, "laptop", "").await;
    let login = text_of(&client, "login").await;
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
    assert_eq!(session.path(), Some("/"));
    let cookie = format!("portcullis_console={}", session.value());

    // The session also calls the admin API: reads with the cookie, changes only with the session's
    // CSRF token in X-CSRF-Token.
    let page = client.source().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let api = format!("{base}/api/v1/realms/default");
    let me = run("curl", &["-s", "-b", &cookie, &format!("{api}/me")]);
    let me: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["user"], "alice");
    let new_token = |extra: &[&str]| {
        let mut args = vec![
            "-b",
            cookie.as_str(),
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"name": "from-api", "expires": "1d"}"#,
        ];
        args.extend_from_slice(extra);
        let url = format!("{api}/tokens");
        args.push(&url);
        curl_status(&args)
    };
    assert_eq!(new_token(&[]), "403", "no CSRF token");
    assert_eq!(new_token(&["-H", "X-CSRF-Token: wrong"]), "403");
    let header = format!("X-CSRF-Token: {csrf}");
    assert_eq!(new_token(&["-H", &header]), "201");
    assert_eq!(
        curl_status(&["-b", &cookie, &format!("{base}/api/v1/realms/other/me")]),
        "401",
        "another realm's API"
    );

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
    let headers = response_headers(&format!("{base}/console/sign-in")).to_lowercase();
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
    let before = text_of(&client, "explanation").await;
    assert!(before.contains("nothing granted"), "{before}");
    fill(&client, "member-user", "alice").await;
    fill(&client, "member-group", "devs").await;
    press(&client, "form[action='/console/admin/members'] button").await;
    page_with(&client, "alice is in group devs").await;
    fill(&client, "explain-user", "alice").await;
    fill(&client, "explain-scope", "repository:shared/app:pull").await;
    press(&client, "form[action='/console/admin/explain'] button").await;
    page_with(&client, "granted repository:shared/app:pull").await;
    let after = text_of(&client, "explanation").await;
    assert!(
        after.contains("granted repository:shared/app:pull"),
        "{after}"
    );
    let groups = text_of(&client, "groups").await;
    assert!(
        groups.contains("devs") && groups.contains("alice"),
        "{groups}"
    );
    press(&client, "button[aria-label='Remove alice from devs']").await;
    page_with(&client, "alice is no longer in group devs.").await;
    let block = text_of(&client, "registry-config").await;
    assert!(block.contains("rootcertbundle:"), "{block}");
    // The recent audit events show what was just done, and the token requests before it.
    let mut events = String::new();
    for _ in 0..100 {
        client.goto(&format!("{base}/console/admin")).await.unwrap();
        events = match client.find(Locator::Id("events")).await {
            Ok(table) => table.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if events.contains("group_member_removed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for expected in [
        "group_member_added",
        "group_member_removed",
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

/// The company IdP of the SSO test: oidc-provider with a console client, whose ID tokens carry
/// `groups`; carol is in `devs`.
fn sso_config(provider_port: u16, secret_file: &std::path::Path) -> String {
    format!(
        r#"
[console]
registry = "registry.example:5000"

[[realms.default.oidc]]
name = "corp"
issuer = "http://127.0.0.1:{provider_port}"

[realms.default.oidc.console]
client_id = "console"
client_secret_file = "{}"
label = "Corp SSO"
scopes = ["openid", "profile", "groups"]

[[realms.default.oidc.rules]]
name = "staff"
groups_claim = "groups"
"#,
        secret_file.display()
    )
}

/// Signs in at the provider's development pages as `login`, consenting, and comes back.
async fn sign_in_with_provider(client: &Client, base: &str, login: &str) {
    client
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    press(client, "a[href='/console/sso/corp/start?realm=default']").await;
    page_with(client, "name=\"login\"").await;
    fill_css(client, "input[name='login']", login).await;
    fill_css(client, "input[name='password']", "any password").await;
    press(client, "button[type='submit']").await;
    // The consent page, then back at the console.
    page_with(client, "Continue").await;
    press(client, "button[type='submit']").await;
}

async fn fill_css(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_with_the_company_idp_and_pushes_with_a_token_made_there() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("client-secret");
    std::fs::write(&secret_file, "console-secret\n").unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let provider_port = common::external::free_port();
    let p = Portcullis::start_with_config(&sso_config(provider_port, &secret_file));
    // The public URL the server derives, which the provider sends people back to: the console is
    // used there, so that the pending sign-in's cookie comes back with them.
    let base = format!("http://localhost:{}", p.port);
    let _provider = common::oidc::Provider::start_for_console(
        provider_port,
        &format!("{base}/console/sso/callback"),
        &json!({ "carol": { "groups": ["devs", "Not A Group Name!"] }, "dave": {} }),
    );
    p.cli_ok(
        &[
            "grant",
            "add",
            "--subject",
            "group:oidc:corp:devs",
            "--name",
            "shared/*",
            "--actions",
            "pull,push",
        ],
        "",
    );
    // A local account named as a provider's person: the provider never signs in to it.
    p.add_user("dave", "dave-pw", false);
    let registry = registry_of(&p);

    // The pending sign-in: a Lax cookie for the provider's redirect back, PKCE S256, state, nonce.
    let headers = response_headers(&format!("{base}/console/sso/corp/start?realm=default"));
    let lower = headers.to_lowercase();
    assert!(lower.starts_with("http/1.1 303"), "{headers}");
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or(l.strip_prefix("Location: "))
        })
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        location.starts_with(&format!("http://127.0.0.1:{provider_port}/")),
        "{location}"
    );
    for part in [
        "response_type=code",
        "client_id=console",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid+profile+groups",
    ] {
        assert!(location.contains(part), "{part} not in {location}");
    }
    let cookie = lower
        .lines()
        .find(|l| l.starts_with("set-cookie: portcullis_sso="))
        .unwrap_or_else(|| panic!("no sign-in cookie: {headers}"));
    for flag in [
        "httponly",
        "samesite=lax",
        "path=/console/sso",
        "max-age=600",
    ] {
        assert!(cookie.contains(flag), "{flag} not in {cookie}");
    }
    // Coming back without the browser's cookie, or with another state, signs no one in; a
    // pending sign-in is used once.
    assert_eq!(
        curl_status(&[&format!("{base}/console/sso/callback?code=x&state=y")]),
        "400"
    );
    let jar = secrets.path().join("cookies");
    let jar = jar.to_str().unwrap();
    assert_eq!(
        curl_status(&[
            "-c",
            jar,
            &format!("{base}/console/sso/corp/start?realm=default")
        ]),
        "303"
    );
    for _ in 0..2 {
        assert_eq!(
            curl_status(&[
                "-b",
                jar,
                &format!("{base}/console/sso/callback?code=x&state=forged")
            ]),
            "400"
        );
    }
    assert_eq!(
        curl_status(&[&format!("{base}/console/sso/unknown/start?realm=default")]),
        "404"
    );

    let driver = Chromedriver::start();
    let client = browser(&driver).await;
    client
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    page_with(&client, "Sign in with Corp SSO").await;
    screenshot(&client, "sso-sign-in").await;

    // Carol has no account and no password here: she signs in at the IdP, lands on her tokens.
    sign_in_with_provider(&client, &base, "carol").await;
    let tokens = page_with(&client, "<h1>My tokens</h1>").await;
    assert!(tokens.contains("carol · realm default"), "{tokens}");
    let listed = p.cli_ok(&["user", "list"], "");
    assert!(listed.contains("carol"), "{listed}");
    assert!(listed.contains("oidc:corp"), "{listed}");

    // She makes a token and pushes with it to where her IdP group may.
    let secret = make_token(&client, "laptop", "repository:shared/**:pull,push").await;
    screenshot(&client, "sso-tokens").await;
    let work = tempfile::tempdir().unwrap();
    let creds = format!("carol:{secret}");
    let pushed = push(&registry, work.path(), &creds, "shared/app");
    assert!(
        pushed.status.success(),
        "{}\n{}",
        describe(&pushed),
        p.log()
    );
    let elsewhere = push(&registry, work.path(), &creds, "other/app");
    assert!(!elsewhere.status.success(), "no grant outside shared/");
    // The IdP's password is not a password here.
    assert_eq!(p.token_status("carol", "any password"), "401");
    let passwd = p.cli(
        &["user", "passwd", "carol", "--password-stdin"],
        "x-password-1\n",
    );
    assert!(!passwd.status.success());
    assert!(
        String::from_utf8_lossy(&passwd.stderr).contains("signs in with the OpenID provider corp"),
        "{}",
        describe(&passwd)
    );

    // Dave's name is a local account: the IdP does not sign him in to it. (Another browser:
    // carol is still signed in at the IdP in this one.)
    press(&client, "form[action='/console/sign-out'] button").await;
    page_with(&client, "<h1>Sign in</h1>").await;
    client.close().await.unwrap();
    let client = browser(&driver).await;
    sign_in_with_provider(&client, &base, "dave").await;
    let refused = page_with(&client, "You cannot sign in here").await;
    assert!(
        refused.contains("the account dave exists and does not sign in with this provider"),
        "{refused}"
    );
    screenshot(&client, "sso-refused").await;
    client.close().await.unwrap();
    assert!(p.logged("event=\"console_signed_in\""));
    assert!(p.logged("event=\"provider_account_created\""));
    assert!(p.logged("reason=\"name taken by another account\""));
}
