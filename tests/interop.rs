//! Interoperability with the real registry (Debian's docker-registry 2.8, and distribution 3.x when a
//! `registry3` binary is on `PATH`) and the real clients (skopeo, podman, the docker CLI,
//! containerd's ctr), configured from `portcullis registry-config`.
//! Nothing is mocked: every token the registry sees was issued by a `portcullis serve` process.

pub mod common;

use common::external::{
    build_oci_image, describe, oci_manifest_digest, on_path, run, run_with_stdin, skopeo,
    Containerd, Podman, Registry, TrustedKeys, REGISTRY_3,
};
use common::jwt;
use common::portcullis::{http_status, Portcullis};
use portcullis::jwt::KeyReference;
use portcullis::keys::SigningKey;
use portcullis::names::RealmName;
use serde_json::Value;

/// A Portcullis with users alice (user), bob (user) and root (admin), and a registry trusting it.
struct Setup {
    portcullis: Portcullis,
    registry: Registry,
    work: tempfile::TempDir,
}

fn setup() -> Setup {
    setup_with(Portcullis::start())
}

fn setup_with(portcullis: Portcullis) -> Setup {
    portcullis.add_user("alice", "alice-pw", false);
    portcullis.add_user("bob", "bob-pw", false);
    portcullis.add_user("root", "root-pw", true);
    let config = portcullis.registry_config();
    let registry = Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    );
    Setup {
        portcullis,
        registry,
        work: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn reference(&self, repository: &str) -> String {
        format!("docker://{}/{repository}", self.registry.host())
    }

    /// Pushes a fresh image as `creds` and returns (skopeo's output, the image's manifest digest).
    fn push(&self, creds: &str, repository: &str) -> (std::process::Output, String) {
        let layout = build_oci_image(&self.work.path().join(repository.replace('/', "_")), "v1");
        let digest = oci_manifest_digest(&layout, "v1");
        let source = format!("oci:{}:v1", layout.display());
        let output = skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &source,
            &format!("{}:v1", self.reference(repository)),
        ]);
        (output, digest)
    }

    /// `skopeo inspect` of `repository:v1`, as `creds` or anonymously.
    fn inspect(&self, creds: Option<&str>, repository: &str) -> std::process::Output {
        let reference = format!("{}:v1", self.reference(repository));
        match creds {
            Some(creds) => skopeo(&[
                "inspect",
                "--tls-verify=false",
                "--creds",
                creds,
                &reference,
            ]),
            None => skopeo(&["inspect", "--tls-verify=false", "--no-creds", &reference]),
        }
    }

    fn context(&self) -> String {
        format!(
            "--- portcullis\n{}\n--- registry\n{}",
            self.portcullis.log(),
            self.registry.log()
        )
    }
}

fn succeeded(output: &std::process::Output, setup: &Setup) {
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(output),
        setup.context()
    );
}

/// A `login` command (docker's or podman's) that said so.
fn logged_in(output: &std::process::Output, setup: &Setup) {
    succeeded(output, setup);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Login Succeeded"),
        "{}",
        describe(output)
    );
}

fn failed_with(output: &std::process::Output, needle: &str) {
    let text = describe(output);
    assert!(!output.status.success(), "expected a failure:\n{text}");
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

#[test]
fn skopeo_pushes_pulls_lists_and_deletes() {
    let s = setup();
    let (output, digest) = s.push("alice:alice-pw", "alice/app");
    succeeded(&output, &s);

    let inspect = s.inspect(Some("alice:alice-pw"), "alice/app");
    succeeded(&inspect, &s);
    let inspected: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    let copy_back = s.work.path().join("pulled");
    let pulled = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "alice:alice-pw",
        &format!("{}:v1", s.reference("alice/app")),
        &format!("oci:{}:v1", copy_back.display()),
    ]);
    succeeded(&pulled, &s);
    assert_eq!(
        oci_manifest_digest(&copy_back, "v1"),
        digest,
        "same digest after the round trip"
    );

    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        &s.reference("alice/app"),
    ]);
    succeeded(&tags, &s);
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));

    let deleted = skopeo(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        &format!("{}:v1", s.reference("alice/app")),
    ]);
    succeeded(&deleted, &s);
    let gone = s.inspect(Some("alice:alice-pw"), "alice/app");
    failed_with(&gone, "manifest unknown");
}

#[test]
fn others_namespaces_and_anonymous_pulls_are_refused_by_the_registry() {
    let s = setup();
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    let (output, _) = s.push("alice:alice-pw", "bob/app");
    failed_with(&output, "denied");
    let (output, _) = s.push("alice:wrong", "alice/other");
    failed_with(&output, "unauthorized");

    let anonymous = s.inspect(None, "alice/app");
    assert!(!anonymous.status.success(), "{}", describe(&anonymous));
    assert!(
        s.registry.log().contains("insufficient_scope")
            || describe(&anonymous).contains("authentication required"),
        "{}\n{}",
        describe(&anonymous),
        s.context()
    );
}

#[test]
fn docker_login_succeeds_and_a_wrong_password_fails() {
    let s = setup();
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().display().to_string();
    let login = |user: &str, password: &str| {
        run_with_stdin(
            "docker",
            &["login", "-u", user, "--password-stdin", &s.registry.host()],
            &format!("{password}\n"),
            &[("DOCKER_CONFIG", config_dir.as_str())],
        )
    };
    logged_in(&login("alice", "alice-pw"), &s);
    failed_with(&login("alice", "nope"), "unauthorized");
    failed_with(&login("mallory", "alice-pw"), "unauthorized");
}

#[test]
fn podman_logs_in_pulls_and_pushes_only_where_allowed() {
    let s = setup();
    let (pushed, digest) = s.push("alice:alice-pw", "alice/app");
    succeeded(&pushed, &s);
    let podman = Podman::private();
    let host = s.registry.host();
    let login = |user: &str, password: &str| {
        podman.run(
            &[
                "login",
                "--tls-verify=false",
                "-u",
                user,
                "--password-stdin",
                &host,
            ],
            &format!("{password}\n"),
        )
    };
    failed_with(&login("alice", "nope"), "invalid username/password");
    logged_in(&login("alice", "alice-pw"), &s);
    assert!(podman.auth_file()["auths"][&host]["auth"].is_string());

    // The login is what the next commands use: no credentials on their command lines.
    let image = format!("{host}/alice/app:v1");
    succeeded(&podman.run(&["pull", "--tls-verify=false", &image], ""), &s);
    let inspect = podman.run(&["image", "inspect", "--format", "{{.Digest}}", &image], "");
    succeeded(&inspect, &s);
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), digest);

    let copy = format!("{host}/alice/copy:v1");
    succeeded(&podman.run(&["tag", &image, &copy], ""), &s);
    succeeded(&podman.run(&["push", "--tls-verify=false", &copy], ""), &s);
    succeeded(&s.inspect(Some("alice:alice-pw"), "alice/copy"), &s);

    let others = format!("{host}/bob/app:v1");
    succeeded(&podman.run(&["tag", &image, &others], ""), &s);
    let refused = podman.run(&["push", "--tls-verify=false", &others], "");
    failed_with(&refused, "denied");
}

#[test]
fn containerd_pulls_with_the_password_grant() {
    let s = setup();
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    let containerd = Containerd::start();
    let image = format!("{}/alice/app:v1", s.registry.host());
    let pulled = containerd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        "alice:alice-pw",
        &image,
    ]);
    succeeded(&pulled, &s);
    assert!(
        s.portcullis.logged("containerd-client"),
        "containerd used the POST password grant"
    );
    let refused = containerd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        "alice:wrong",
        &image,
    ]);
    assert!(!refused.status.success(), "{}", describe(&refused));
}

/// Fetches a token from Portcullis for `scope` with curl, then calls the registry with it.
fn registry_status_with_token(
    s: &Setup,
    user: &str,
    password: &str,
    scope: &str,
    path: &str,
) -> String {
    let token_url = s.portcullis.token_url(&format!("&scope={scope}"));
    let token = run(
        "curl",
        &["-sf", "-u", &format!("{user}:{password}"), &token_url],
    );
    succeeded(&token, s);
    let token: Value = serde_json::from_slice(&token.stdout).unwrap();
    bearer_status(s, token["token"].as_str().unwrap(), path)
}

fn bearer_status(s: &Setup, token: &str, path: &str) -> String {
    let url = format!("{}{path}", s.registry.url());
    http_status(&url, &["-H", &format!("Authorization: Bearer {token}")])
}

#[test]
fn catalog_is_for_admins_only() {
    let s = setup();
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    assert_eq!(
        registry_status_with_token(&s, "root", "root-pw", "registry:catalog:*", "/v2/_catalog"),
        "200"
    );
    assert_eq!(
        registry_status_with_token(
            &s,
            "alice",
            "alice-pw",
            "registry:catalog:*",
            "/v2/_catalog"
        ),
        "401"
    );
}

/// Registry 2.x finds the key either through the `x5c` chain or through the libtrust `kid`; prove
/// that each alone verifies, and that a token from a key the registry does not trust fails.
#[test]
fn registry_verifies_through_kid_alone_and_x5c_alone() {
    let s = setup();
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    let config = s.portcullis.registry_config();
    let realm = RealmName::parse("default").unwrap();
    let keys = SigningKey::load_or_create(
        &s.portcullis.dir.path().join("keys").join(realm.as_str()),
        &realm,
    )
    .unwrap();
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = SigningKey::load_or_create(stranger_dir.path(), &realm).unwrap();
    let token = |keys: &SigningKey, reference| {
        jwt::sign(
            keys,
            reference,
            &config.issuer,
            &config.service,
            "repository:alice/app:pull",
        )
    };
    let path = "/v2/alice/app/tags/list";
    assert_eq!(
        bearer_status(&s, &token(&keys, KeyReference::KidOnly), path),
        "200",
        "kid path"
    );
    assert_eq!(
        bearer_status(&s, &token(&keys, KeyReference::X5cOnly), path),
        "200",
        "x5c path"
    );
    assert_eq!(
        bearer_status(&s, &token(&stranger, KeyReference::KidOnly), path),
        "401"
    );
    assert_eq!(
        bearer_status(&s, &token(&stranger, KeyReference::X5cOnly), path),
        "401"
    );
}

/// Pushes an image as alice and copies it back (a full pull) through the registry of `s`.
fn alice_pushes_and_pulls(s: &Setup, repository: &str) {
    let (output, digest) = s.push("alice:alice-pw", repository);
    succeeded(&output, s);
    let copy_back = s
        .work
        .path()
        .join(format!("pulled-{}", repository.replace('/', "_")));
    let pulled = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "alice:alice-pw",
        &format!("{}:v1", s.reference(repository)),
        &format!("oci:{}:v1", copy_back.display()),
    ]);
    succeeded(&pulled, s);
    assert_eq!(oci_manifest_digest(&copy_back, "v1"), digest);
}

/// The JWT header of a token the server at `token_url` issues to alice.
fn alice_token_header(token_url: &str) -> Value {
    let url = format!("{token_url}?service=registry&scope=repository:alice/app:pull");
    let out = run("curl", &["-sf", "-u", "alice:alice-pw", &url]);
    assert!(out.status.success(), "{}", describe(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    jwt::header(body["token"].as_str().unwrap())
}

/// A Portcullis whose realm `kids` signs tokens with the `kid` header alone (what a jwks-only
/// registry 3.x needs), with alice in it.
fn kid_only_realm() -> Portcullis {
    let portcullis = Portcullis::start();
    portcullis.cli_ok(
        &[
            "realm",
            "add",
            "kids",
            "--service",
            "registry",
            "--token-header",
            "kid",
        ],
        "",
    );
    portcullis.cli_ok(
        &[
            "user",
            "add",
            "alice",
            "--realm",
            "kids",
            "--password-stdin",
        ],
        "alice-pw\n",
    );
    portcullis
}

/// Registry 2.8 matches a `kid`-only token's libtrust `kid` against `rootcertbundle`, so a realm set
/// to `--token-header kid` works with the configuration `registry-config` prints for it.
#[test]
fn a_kid_only_realm_pushes_and_pulls_through_registry_2_8() {
    let portcullis = kid_only_realm();
    let config = portcullis.registry_config_of("kids");
    let header = alice_token_header(&config.realm);
    assert!(header["kid"].is_string(), "{header}");
    assert!(header.get("x5c").is_none(), "kid only: {header}");
    let registry = Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    );
    let s = Setup {
        portcullis,
        registry,
        work: tempfile::tempdir().unwrap(),
    };
    alice_pushes_and_pulls(&s, "alice/app");
}

/// Registry 3.x (distribution v3), when a `registry3` binary is on `PATH`: `x5c` tokens verify
/// through `rootcertbundle` (alone or beside `jwks`), `kid`-only tokens through `jwks`. The two
/// mismatches docs/registries.md warns about are refused: 3.x never falls back from a present `x5c` to
/// `jwks`, and it keys `rootcertbundle` by RFC 7638 thumbprint, not by the libtrust `kid`.
#[test]
fn registry_3_verifies_x5c_through_rootcertbundle_and_kid_through_jwks() {
    let Some(program) = on_path(REGISTRY_3) else {
        eprintln!("skipped: no {REGISTRY_3} (a distribution 3.x registry binary) on PATH");
        return;
    };
    let program = program.to_str().unwrap();
    let mut portcullis = kid_only_realm();
    portcullis.add_user("alice", "alice-pw", false);
    // A realm's registry configuration and its JWKS file.
    let realm = |realm: &str, portcullis: &Portcullis| {
        let jwks = portcullis.dir.path().join(format!("{realm}.jwks"));
        let text = portcullis.cli_ok(
            &["keys", "export", "--realm", realm, "--format", "jwks"],
            "",
        );
        std::fs::write(&jwks, text).unwrap();
        (portcullis.registry_config_of(realm), jwks)
    };
    let x5c = realm("default", &portcullis);
    let kid = realm("kids", &portcullis);
    // (case, realm, rootcertbundle?, jwks?, None when push and pull work or the registry's reason)
    let cases = [
        ("x5c, rootcertbundle", &x5c, true, false, None),
        ("x5c, both", &x5c, true, true, None),
        ("kid, jwks", &kid, false, true, None),
        ("kid, both", &kid, true, true, None),
        (
            "x5c, jwks",
            &x5c,
            false,
            true,
            Some("certificate signed by unknown authority"),
        ),
        (
            "kid, rootcertbundle",
            &kid,
            true,
            false,
            Some("token signed by untrusted key with ID"),
        ),
    ];
    for (i, (case, (config, jwks), bundle, with_jwks, refusal)) in cases.into_iter().enumerate() {
        let keys = TrustedKeys {
            rootcertbundle: bundle.then_some(config.rootcertbundle.as_path()),
            jwks: with_jwks.then_some(jwks.as_path()),
        };
        let registry = Registry::start_program(
            program,
            &config.realm,
            &config.service,
            &config.issuer,
            keys,
        );
        let s = Setup {
            portcullis,
            registry,
            work: tempfile::tempdir().unwrap(),
        };
        let repository = format!("alice/app{i}");
        match refusal {
            None => alice_pushes_and_pulls(&s, &repository),
            Some(reason) => {
                let (output, _) = s.push("alice:alice-pw", &repository);
                assert!(!output.status.success(), "{case}: refused\n{}", s.context());
                assert!(
                    s.registry.log().contains(reason),
                    "{case}: {reason}\n{}",
                    s.context()
                );
            }
        }
        portcullis = s.portcullis;
    }
}

/// crane (go-containerregistry) refuses a token realm on a loopback or private IP literal unless it
/// is the registry's own host; the derived realm names loopback `localhost`, which it accepts. Runs
/// when `crane` is on `PATH` (no package has it: build it from go-containerregistry's vendored
/// source), else skipped.
#[test]
fn crane_accepts_the_derived_localhost_realm_and_refuses_an_ip_realm() {
    let Some(crane) = on_path("crane") else {
        eprintln!("skipped: no crane on PATH");
        return;
    };
    let s = setup();
    let (pushed, digest) = s.push("alice:alice-pw", "alice/app");
    succeeded(&pushed, &s);
    let config = s.portcullis.registry_config();
    assert!(
        config.realm.starts_with("http://localhost:"),
        "{}",
        config.realm
    );
    let docker_config = tempfile::tempdir().unwrap();
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:alice-pw");
    let auths = serde_json::json!({ "auths": { s.registry.host(): { "auth": auth } } });
    std::fs::write(docker_config.path().join("config.json"), auths.to_string()).unwrap();
    let config_dir = docker_config.path().to_str().unwrap();
    let crane = |args: &[&str]| {
        let env = [("DOCKER_CONFIG", config_dir), ("HOME", config_dir)];
        run_with_stdin(crane.to_str().unwrap(), args, "", &env)
    };
    let image = |repository: &str| format!("{}/{repository}:v1", s.registry.host());

    let read = crane(&["digest", "--insecure", &image("alice/app")]);
    succeeded(&read, &s);
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), digest);
    let copied = crane(&[
        "copy",
        "--insecure",
        &image("alice/app"),
        &image("alice/copy"),
    ]);
    succeeded(&copied, &s);

    let ip_realm = Registry::start(
        &config.realm.replacen("localhost", "127.0.0.1", 1),
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    );
    let refused = crane(&[
        "digest",
        "--insecure",
        &format!("{}/alice/app:v1", ip_realm.host()),
    ]);
    failed_with(&refused, "is a private or link-local address");
}

/// After `docker login` the docker CLI stores our refresh token as `identitytoken` and drops the
/// password; its later token requests are POST refresh grants, which stop working once revoked.
#[test]
fn docker_login_stores_an_identity_token_that_works_until_revoked() {
    let s = setup();
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().display().to_string();
    let env = [("DOCKER_CONFIG", config_dir.as_str())];
    let login = run_with_stdin(
        "docker",
        &[
            "login",
            "-u",
            "alice",
            "--password-stdin",
            &s.registry.host(),
        ],
        "alice-pw\n",
        &env,
    );
    succeeded(&login, &s);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(config.path().join("config.json")).unwrap())
            .unwrap();
    let entry = &stored["auths"][s.registry.host()];
    assert!(
        entry["identitytoken"]
            .as_str()
            .unwrap()
            .starts_with("pcrt_"),
        "{stored}"
    );
    let auth = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        entry["auth"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(auth, b"alice:", "the password is not stored");

    let image = format!("{}/alice/app:v1", s.registry.host());
    let inspect = || {
        run_with_stdin(
            "docker",
            &["manifest", "inspect", "--insecure", &image],
            "",
            &env,
        )
    };
    succeeded(&inspect(), &s);
    assert!(
        s.portcullis.logged("registry-client"),
        "the CLI used the refresh grant"
    );

    s.portcullis
        .cli_ok(&["token", "revoke", "--user", "alice", "--all"], "");
    let refused = inspect();
    assert!(!refused.status.success(), "{}", describe(&refused));
}

/// containers/image sends the refresh grant chunked when the auth file holds `identitytoken`.
#[test]
fn skopeo_with_an_identity_token_pushes_and_pulls() {
    let s = setup();
    let token_url = s.portcullis.token_url("&offline_token=true&account=alice");
    let login = run("curl", &["-sf", "-u", "alice:alice-pw", &token_url]);
    succeeded(&login, &s);
    let login: Value = serde_json::from_slice(&login.stdout).unwrap();
    let auth_file = s.work.path().join("auth.json");
    let entry = serde_json::json!({
        "auths": {
            s.registry.host(): {
                "auth": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:"),
                "identitytoken": login["refresh_token"],
            }
        }
    });
    std::fs::write(&auth_file, entry.to_string()).unwrap();
    let auth_file = auth_file.display().to_string();

    let layout = build_oci_image(&s.work.path().join("idtoken"), "v1");
    let source = format!("oci:{}:v1", layout.display());
    let target = format!("{}:v1", s.reference("alice/idtoken"));
    let push = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        &auth_file,
        &source,
        &target,
    ]);
    succeeded(&push, &s);
    let pull = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--authfile",
        &auth_file,
        &target,
    ]);
    succeeded(&pull, &s);
    assert!(
        s.portcullis.logged("containers/image"),
        "skopeo used the refresh grant"
    );
}

/// Team namespaces and public repositories, set up with the operator commands.
#[test]
fn groups_share_namespaces_and_public_repositories_allow_anonymous_pulls() {
    let s = setup();
    let p = &s.portcullis;
    p.cli_ok(&["group", "add", "team"], "");
    p.cli_ok(&["group", "member", "add", "team", "bob"], "");
    let grant = |subject: &str, name: &str, actions: &str| {
        p.cli_ok(
            &[
                "grant",
                "add",
                "--subject",
                subject,
                "--name",
                name,
                "--actions",
                actions,
            ],
            "",
        );
    };
    grant("group:team", "team/**", "pull,push");
    grant("authenticated", "team/**", "pull");
    grant("any", "library/**", "pull");

    succeeded(&s.push("bob:bob-pw", "team/app").0, &s);
    failed_with(&s.push("alice:alice-pw", "team/other").0, "denied");
    succeeded(&s.inspect(Some("alice:alice-pw"), "team/app"), &s);

    succeeded(&s.push("root:root-pw", "library/base").0, &s);
    succeeded(&s.inspect(None, "library/base"), &s);
    let refused = s.inspect(None, "team/app");
    assert!(!refused.status.success(), "{}", describe(&refused));
}

/// Access tokens from `portcullis token create`: containerd pulls with one, a robot pushes inside its
/// token's scope and is denied outside it, and a revoked token stops working.
#[test]
fn access_tokens_for_containerd_and_a_robot() {
    let s = setup();
    let p = &s.portcullis;
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    let alice_token = p.create_access_token("alice", "laptop");
    let containerd = Containerd::start();
    let image = format!("{}/alice/app:v1", s.registry.host());
    let pulled = containerd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        &format!("alice:{alice_token}"),
        &image,
    ]);
    succeeded(&pulled, &s);

    p.cli_ok(&["user", "add", "ci-bot", "--robot"], "");
    let robot_token = p
        .cli_ok(
            &[
                "token",
                "create",
                "--user",
                "ci-bot",
                "--name",
                "deploy",
                "--scope",
                "repository:ci-bot/allowed/**:pull,push",
                "--expires",
                "1d",
            ],
            "",
        )
        .trim()
        .to_owned();
    let creds = format!("ci-bot:{robot_token}");
    succeeded(&s.push(&creds, "ci-bot/allowed/app").0, &s);
    failed_with(&s.push(&creds, "ci-bot/other").0, "denied");
    failed_with(
        &s.push("ci-bot:any-password", "ci-bot/allowed/two").0,
        "unauthorized",
    );

    let listed = p.cli_ok(&["token", "list", "--user", "ci-bot"], "");
    assert!(
        !listed.contains(&robot_token[5..]),
        "listing shows no secret:\n{listed}"
    );
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    p.cli_ok(&["token", "revoke", &id], "");
    failed_with(&s.push(&creds, "ci-bot/allowed/three").0, "unauthorized");
}

/// A cluster user's MUNGE credential (empty payload, uid mapped to alice) gets a token that pulls
/// alice's image from the real registry.
#[test]
fn a_munge_credential_pulls_from_the_registry() {
    let munged = common::munged::Munged::start(&[]);
    let config = format!(
        "[realms.default.munge]\nlocations = [\"registry.example.org\"]\n\
         [[realms.default.munge.platforms]]\nname = \"cluster\"\nkey_file = \"{}\"\n",
        munged.key_path().display()
    );
    let s = setup_with(Portcullis::start_with_config(&config));
    succeeded(&s.push("alice:alice-pw", "alice/app").0, &s);
    s.portcullis.cli_ok(
        &[
            "munge",
            "map",
            "--platform",
            "cluster",
            "--uid",
            "0",
            "--user",
            "alice",
        ],
        "",
    );
    let credential = munged.encode(&[], b"").trim().to_owned();
    let token_url = s.portcullis.token_url("&scope=repository:alice/app:pull");
    let header = format!("authentication: {credential}");
    let token = run("curl", &["-sf", "-H", &header, &token_url]);
    succeeded(&token, &s);
    let token: Value = serde_json::from_slice(&token.stdout).unwrap();
    let jwt = token["token"].as_str().unwrap();
    assert_eq!(bearer_status(&s, jwt, "/v2/alice/app/tags/list"), "200");
    let replay = http_status(&token_url, &["-H", &header]);
    assert_eq!(replay, "401", "replayed");
    assert!(s.portcullis.logged("munge"), "audit names the method");
}

/// Workload identity end to end: a CI job's JWT from a real OpenID provider (oidc-provider) is the
/// password of `docker login -u oidc`; skopeo, reading the credentials docker stored, pushes to the
/// job's own repository (`${claim.repository}/**`, a database grant) and is denied another; podman
/// logs in with the same JWT and pulls the image back.
#[test]
fn docker_login_with_a_ci_jwt_then_skopeo_pushes_to_the_jobs_repository_only() {
    let provider = common::oidc::Provider::start(&["k1"]);
    let config = format!(
        r#"
[[realms.default.oidc]]
name = "ci"
issuer = "{}"
audiences = ["registry"]
subject = "${{iss-name}}:${{claim.repository}}:${{claim.ref}}"

[[realms.default.oidc.rules]]
name = "acme-main"
conditions = {{ repository_owner = "acme", ref = "refs/heads/main" }}
"#,
        provider.issuer()
    );
    let s = setup_with(Portcullis::start_with_config(&config));
    s.portcullis.cli_ok(
        &[
            "grant",
            "add",
            "--subject",
            "oidc:ci:*",
            "--name",
            "${claim.repository}/**",
            "--actions",
            "pull,push",
        ],
        "",
    );
    let jwt = provider.token(
        "registry",
        600,
        &serde_json::json!({
            "repository": "acme/app",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
        }),
    );
    let docker_config = tempfile::tempdir().unwrap();
    let config_dir = docker_config.path().display().to_string();
    let login = run_with_stdin(
        "docker",
        &[
            "login",
            "-u",
            "oidc",
            "--password-stdin",
            &s.registry.host(),
        ],
        &format!("{jwt}\n"),
        &[("DOCKER_CONFIG", config_dir.as_str())],
    );
    logged_in(&login, &s);
    let auth_file = docker_config.path().join("config.json");
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&auth_file).unwrap()).unwrap();
    assert!(
        stored["auths"][s.registry.host()]
            .get("identitytoken")
            .is_none(),
        "a JWT never becomes a refresh token: {stored}"
    );
    let push = |repository: &str| {
        let layout = build_oci_image(&s.work.path().join(repository.replace('/', "_")), "v1");
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-authfile",
            &auth_file.display().to_string(),
            &format!("oci:{}:v1", layout.display()),
            &format!("{}:v1", s.reference(repository)),
        ])
    };
    succeeded(&push("acme/app/web"), &s);
    failed_with(&push("acme/other"), "denied");

    // podman (and the podman login action) the same way: the pushed image pulls back.
    let podman = Podman::private();
    let host = s.registry.host();
    let podman_login = podman.run(
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "oidc",
            "--password-stdin",
            &host,
        ],
        &format!("{jwt}\n"),
    );
    logged_in(&podman_login, &s);
    let image = format!("{host}/acme/app/web:v1");
    succeeded(&podman.run(&["pull", "--tls-verify=false", &image], ""), &s);
    assert!(
        !s.portcullis.log().contains(&jwt),
        "the JWT never reaches the log"
    );
}
