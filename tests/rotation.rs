//! Signing keys rotating under real registries, which are never reconfigured: registry 2.8 (and
//! 3.x when a `registry3` binary is on `PATH`) trusting only a realm's CA accepts every key the CA
//! certifies, rotated by hand or by the server; two instances on one PostgreSQL switch keys at the
//! same moment under load; a `kid`-only realm's next key is published before it signs, so a
//! registry restarted in between accepts it (and one that was not, refuses it).

pub mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::database::Db;
use common::external::{on_path, Registry, TrustedKeys, REGISTRY_3};
use common::jwt;
use common::portcullis::{http_status, Portcullis};
use portcullis::jwt::KeyReference;
use portcullis::keys::cert::Authority;
use portcullis::keys::SigningKey;
use portcullis::names::RealmName;
use serde_json::Value;

/// How long a test waits for a key to start signing (activation is ~3 s after the command).
const SWITCH_WAIT: Duration = Duration::from_secs(20);
/// The scope every token here asks for.
const SCOPE: &str = "repository:alice/app:pull";

/// A token for alice from the server on `port`, through a plain HTTP/1.0 request (fast enough to
/// sample many times a second); `None` when the answer is not a token.
fn token_from(port: u16, realm: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let basic = STANDARD.encode("alice:alice-pw");
    write!(
        stream,
        "GET /auth/realms/{realm}/protocol/docker-v2/auth?service=registry&scope={SCOPE} HTTP/1.0\r\n\
         Authorization: Basic {basic}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let body: Value = serde_json::from_str(body).ok()?;
    body["token"].as_str().map(str::to_owned)
}

fn token(p: &Portcullis, realm: &str) -> String {
    token_from(p.port, realm).unwrap_or_else(|| panic!("no token\n{}", p.log()))
}

fn kid_of(token: &str) -> String {
    jwt::header(token)["kid"].as_str().unwrap().to_owned()
}

/// Waits until the server signs with `kid` and returns such a token.
fn token_signed_by(p: &Portcullis, realm: &str, kid: &str) -> String {
    let started = Instant::now();
    loop {
        let token = token(p, realm);
        if kid_of(&token) == kid {
            return token;
        }
        assert!(
            started.elapsed() < SWITCH_WAIT,
            "{kid} never signed; still {}\n{}",
            kid_of(&token),
            p.cli_ok(&["keys", "list"], "")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The key ids of `realm` in `state`, as `keys list` shows them.
fn kids_in(p: &Portcullis, realm: &str, state: &str) -> Vec<String> {
    p.cli_ok(&["keys", "list"], "")
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells[0] == realm && cells[3] == state)
        .map(|cells| cells[2].to_owned())
        .collect()
}

fn pending_kid(p: &Portcullis, realm: &str) -> String {
    let pending = kids_in(p, realm, "pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    pending[0].clone()
}

/// The status a registry answers a request for `/v2/` carrying `token`.
fn status(registry: &Registry, token: &str) -> String {
    http_status(
        &format!("{}/v2/", registry.url()),
        &["-H", &format!("Authorization: Bearer {token}")],
    )
}

/// A token for alice that `key` signs, with the realm's issuer and service, its header as
/// `reference` says.
fn forged(p: &Portcullis, key: &SigningKey, reference: KeyReference) -> String {
    let config = p.registry_config();
    jwt::sign(key, reference, &config.issuer, &config.service, SCOPE)
}

/// Keys the registry must not trust: a self-signed one, and one certified by another CA.
fn strangers(dir: &Path) -> [SigningKey; 2] {
    let realm = RealmName::parse("default").unwrap();
    let self_signed = SigningKey::load_or_create(&dir.join("self-signed"), &realm).unwrap();
    let year = 365 * 86_400_000;
    let not_after = portcullis::keys::now_ms() + year;
    let other_ca = Authority::create(&dir.join("other-ca.pem"), &realm, not_after + year).unwrap();
    let certified =
        SigningKey::create(dir, |pair, path| other_ca.certify(pair, 2, not_after, path)).unwrap();
    [self_signed, certified]
}

/// A CA realm: `keys ca init`, then its first CA-issued key made to sign at once.
fn ca_realm(p: &Portcullis) -> String {
    let init = p.cli_ok(&["keys", "ca", "init"], "");
    assert!(init.contains("certificate authority"), "{init}");
    let kid = pending_kid(p, "default");
    assert!(init.contains(&kid), "{init}");
    p.cli_ok(&["keys", "activate", &kid], "");
    kid
}

fn ca_certificate(p: &Portcullis) -> std::path::PathBuf {
    p.dir.path().join("keys/default/ca/cert.pem")
}

/// Registries trusting only the realm's CA, one per registry generation on this machine.
fn ca_only_registries(p: &Portcullis) -> Vec<Registry> {
    let config = p.registry_config();
    let ca = ca_certificate(p);
    let mut registries = vec![Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &ca,
    )];
    if let Some(program) = on_path(REGISTRY_3) {
        let keys = TrustedKeys {
            rootcertbundle: Some(&ca),
            jwks: None,
        };
        registries.push(Registry::start_program(
            program.to_str().unwrap(),
            &config.realm,
            &config.service,
            &config.issuer,
            keys,
        ));
    }
    registries
}

/// The registry 2.8 configured with only the realm's CA certificate runs unchanged while the realm
/// moves to three successive CA-issued keys; tokens of all three verify while valid. Keys the CA did
/// not certify are refused, and so is the realm's own earlier self-signed key, which the CA-only
/// bundle does not hold. Revoking the signing key makes a new one sign at once, and removes the old
/// one from what is published; the registry, which reads no revocation list, still accepts the
/// revoked key's certificate until it expires (as docs/keys.md says).
#[test]
fn a_registry_trusting_only_the_realm_ca_accepts_every_rotated_key_with_no_restart() {
    let p = Portcullis::start_with_config("[keys]\npublish_before_use_secs = 3600\n");
    p.add_user("alice", "alice-pw", false);
    let self_signed = token(&p, "default");
    let first = ca_realm(&p);
    let registries = ca_only_registries(&p);

    let mut tokens = vec![token_signed_by(&p, "default", &first)];
    for _ in 0..2 {
        let rotated = p.cli_ok(&["keys", "rotate"], "");
        assert!(rotated.contains("nothing to do"), "{rotated}");
        let next = pending_kid(&p, "default");
        tokens.push(token_signed_by(&p, "default", &next));
    }
    let kids: Vec<String> = tokens.iter().map(|t| kid_of(t)).collect();
    assert_eq!(
        kids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "{kids:?}"
    );
    for token in &tokens {
        let header = jwt::header(token);
        assert_eq!(header["x5c"].as_array().unwrap().len(), 1, "x5c = [leaf]");
    }
    let dir = tempfile::tempdir().unwrap();
    let strangers = strangers(dir.path());
    for registry in &registries {
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(
                status(registry, token),
                "200",
                "key {i}\n{}",
                registry.log()
            );
        }
        assert_eq!(
            status(registry, &self_signed),
            "401",
            "not in the CA-only bundle"
        );
        for stranger in &strangers {
            for reference in [KeyReference::KidAndX5c, KeyReference::X5cOnly] {
                let forged = forged(&p, stranger, reference);
                assert_eq!(status(registry, &forged), "401", "{reference:?}");
            }
        }
    }

    // Revoke the key that signs: another signs from now on.
    let revoked = kids.last().unwrap();
    let said = p.cli_ok(&["keys", "revoke", revoked], "");
    assert!(
        said.contains("revoked") && said.contains("signs instead"),
        "{said}"
    );
    assert!(said.contains("until the certificate expires"), "{said}");
    let after = token(&p, "default");
    assert_ne!(&kid_of(&after), revoked, "the revoked key signs nothing");
    let published = p.cli_ok(&["keys", "export", "--format", "jwks"], "");
    assert!(!published.contains(revoked.as_str()), "{published}");
    let jwks = http_status(
        &format!("{}/auth/realms/default/protocol/docker-v2/certs", p.url()),
        &[],
    );
    assert_eq!(jwks, "200");
    assert_eq!(
        kids_in(&p, "default", "revoked"),
        std::slice::from_ref(revoked)
    );
    let dir_of_revoked = p
        .dir
        .path()
        .join("keys/default")
        .join(revoked.replace(':', ""));
    assert!(
        !dir_of_revoked.join("key.pem").exists(),
        "its private key is deleted"
    );
    for registry in &registries {
        assert_eq!(status(registry, &after), "200");
        assert_eq!(
            status(registry, tokens.last().unwrap()),
            "200",
            "a CA-issued certificate stays trusted until it expires"
        );
    }
}

/// With `keys.rotate_every`, the server rotates a CA realm by itself; the registry trusting only
/// the CA accepts each new key.
#[test]
fn the_server_rotates_a_ca_realm_by_itself() {
    let p = Portcullis::start_with_config("[keys]\nrotate_every = \"10s\"\n");
    p.add_user("alice", "alice-pw", false);
    let first = ca_realm(&p);
    let registries = ca_only_registries(&p);
    let mut seen = vec![token_signed_by(&p, "default", &first)];
    let started = Instant::now();
    while seen.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no automatic rotation\n{}\n{}",
            p.cli_ok(&["keys", "list"], ""),
            p.log()
        );
        let token = token(&p, "default");
        if seen.iter().all(|t| kid_of(t) != kid_of(&token)) {
            seen.push(token);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for registry in &registries {
        for token in &seen {
            assert_eq!(status(registry, token), "200", "{}", registry.log());
        }
    }
    assert!(p.logged("signing_key_rotated"), "{}", p.log());
}

/// One token request, timed.
struct Sample {
    started: Instant,
    ended: Instant,
    kid: String,
    token: String,
}

/// Asks the server on `port` for tokens until `until`.
fn sample(port: u16, until: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let token = token_from(port, "default").expect("a token");
        samples.push(Sample {
            started,
            ended: Instant::now(),
            kid: kid_of(&token),
            token,
        });
    }
    samples
}

/// Two instances on one PostgreSQL, under load, while the realm rotates twice: every token either
/// signed was signed by the key active at some moment of its request, so no token one instance
/// signs is older than a token the other signed before it was asked. Tokens signed just before each
/// rotation keep verifying at the registry afterwards.
#[test]
fn two_instances_on_postgres_switch_keys_at_the_same_moment() {
    let a = Portcullis::start_on(
        Db::Postgres,
        "[server]\npublic_url = \"http://portcullis.test\"\n\
         [keys]\npublish_before_use_secs = 3600\n",
    );
    a.add_user("alice", "alice-pw", false);
    let first = ca_realm(&a);
    let b = a.start_beside();
    token_signed_by(&a, "default", &first);
    token_signed_by(&b, "default", &first);
    let registries = ca_only_registries(&a);

    let until = Instant::now() + Duration::from_secs(14);
    let (port_a, port_b) = (a.port, b.port);
    let load_a = std::thread::spawn(move || sample(port_a, until));
    let load_b = std::thread::spawn(move || sample(port_b, until));
    let mut order = vec![first];
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(2));
        a.cli_ok(&["keys", "rotate"], "");
        order.push(pending_kid(&a, "default"));
        std::thread::sleep(Duration::from_secs(4));
    }
    let samples_a = load_a.join().unwrap();
    let samples_b = load_b.join().unwrap();
    let rank = |kid: &str| {
        order
            .iter()
            .position(|k| k == kid)
            .unwrap_or_else(|| panic!("{kid} is none of {order:?}"))
    };
    let all: Vec<&Sample> = samples_a.iter().chain(&samples_b).collect();
    for instance in [&samples_a, &samples_b] {
        for kid in &order {
            assert!(
                instance.iter().any(|s| &s.kid == kid),
                "every key signed on every instance: {kid}"
            );
        }
    }
    // A token signed after another was fully answered never carries an older key.
    let mut by_end: Vec<&Sample> = all.clone();
    by_end.sort_by_key(|s| s.ended);
    let mut by_start: Vec<&Sample> = all.clone();
    by_start.sort_by_key(|s| s.started);
    let mut newest_finished = 0;
    let mut finished = by_end.iter().peekable();
    for sample in by_start {
        while let Some(done) = finished.next_if(|done| done.ended < sample.started) {
            newest_finished = newest_finished.max(rank(&done.kid));
        }
        assert!(
            rank(&sample.kid) >= newest_finished,
            "a request begun after a token of key {} was answered got key {}",
            order[newest_finished],
            sample.kid
        );
    }
    // The last token of each superseded key still verifies after the switch.
    for (generation, kid) in order.iter().enumerate().take(order.len() - 1) {
        let last = all
            .iter()
            .filter(|s| &s.kid == kid)
            .max_by_key(|s| s.ended)
            .unwrap();
        for registry in &registries {
            assert_eq!(status(registry, &last.token), "200", "key {generation}");
        }
    }
    // Both instances publish the same keys.
    let certs = |p: &Portcullis| {
        let out = common::external::run(
            "curl",
            &[
                "-sf",
                &format!("{}/auth/realms/default/protocol/docker-v2/certs", p.url()),
            ],
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(certs(&a), certs(&b));
}

/// A realm whose tokens carry only `kid` (what a registry reading a JWKS file needs): `keys rotate`
/// publishes the next key in `bundle.pem` and `jwks.json` at once and signs with it only after
/// `keys.publish_before_use_secs`. A registry 2.8 restarted in that time accepts the new key
/// (through `kid`, against the bundle); one that was not restarted refuses it; both accept the old
/// key's tokens. With `registry3` on `PATH`, a 3.x registry reading only `jwks.json` accepts both.
#[test]
fn a_kid_only_realm_publishes_its_next_key_before_signing_with_it() {
    let p = Portcullis::start_with_config("[keys]\npublish_before_use_secs = 6\n");
    p.cli_ok(
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
    p.cli_ok(
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
    let config = p.registry_config_of("kids");
    assert!(config.rootcertbundle.ends_with("keys/kids/bundle.pem"));
    let start =
        |bundle: &Path| Registry::start(&config.realm, &config.service, &config.issuer, bundle);
    let not_restarted = start(&config.rootcertbundle);
    let old = token(&p, "kids");
    assert!(jwt::header(&old).get("x5c").is_none(), "kid only");
    assert_eq!(status(&not_restarted, &old), "200");

    let rotated = p.cli_ok(&["keys", "rotate", "--realm", "kids"], "");
    assert!(rotated.contains("restart"), "{rotated}");
    let next = pending_kid(&p, "kids");
    assert_eq!(
        kid_of(&token(&p, "kids")),
        kid_of(&old),
        "a pending key does not sign"
    );
    let bundle = std::fs::read_to_string(&config.rootcertbundle).unwrap();
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    let jwks_file = p.dir.path().join("keys/kids/jwks.json");
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(&jwks_file).unwrap()).unwrap();
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(published, [kid_of(&old).as_str(), next.as_str()]);

    let restarted = start(&config.rootcertbundle);
    let third_generation = on_path(REGISTRY_3).map(|program| {
        let keys = TrustedKeys {
            rootcertbundle: None,
            jwks: Some(&jwks_file),
        };
        Registry::start_program(
            program.to_str().unwrap(),
            &config.realm,
            &config.service,
            &config.issuer,
            keys,
        )
    });
    let new = token_signed_by(&p, "kids", &next);
    assert_eq!(status(&restarted, &new), "200", "{}", restarted.log());
    assert_eq!(
        status(&restarted, &old),
        "200",
        "the old key is still published"
    );
    assert_eq!(
        status(&not_restarted, &new),
        "401",
        "never given the new key"
    );
    assert_eq!(status(&not_restarted, &old), "200");
    if let Some(registry) = &third_generation {
        assert_eq!(status(registry, &new), "200", "{}", registry.log());
        assert_eq!(status(registry, &old), "200", "{}", registry.log());
    }
}
