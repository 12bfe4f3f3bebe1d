//! A token request authenticated by an external JWT, as the CPU work the server does for
//! it with the issuer's keys cached: verifying a GitHub-shaped RS256 JWT (signature, claims, the
//! claim rules), deciding the policy with `${claim.repository}/**`, and signing the registry's
//! ES256 token; beside one ES256 signature, the unit `scripts/bench.sh` divides by. Criterion
//! measures each; then the two are timed alternately in the same run and their ratio printed with
//! the CPU model. Run with `cargo bench --bench oidc`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::PrivateKeyInfo;
use portcullis::auth::oidc::{self, Issuers, Trace};
use portcullis::auth::Principal;
use portcullis::config::{OidcCondition, OidcRuleSettings, OidcSettings, RealmSettings, Settings};
use portcullis::jwt::{Signer, TokenHeader};
use portcullis::keys::SigningKey;
use portcullis::names::RealmName;
use portcullis::policy::authorize::authorize;
use portcullis::policy::Policy;
use portcullis::scope;
use push_token::{push_claims, signing_input};
use serde_json::json;

mod push_token;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "registry.example.com";
const POLICY: &str = r#"
[[rule]]
subject = "oidc:github:*"
name = "${claim.repository}/**"
actions = ["pull", "push"]
"#;
const SCOPES: [&str; 1] = ["repository:acme/app/web:pull,push"];
/// Rounds of the alternating ratio measurement, and operations per round.
const ROUNDS: usize = 7;
const PER_ROUND: u32 = 3000;

/// Everything one request uses, built once: the issuer with its keys cached, a JWT, the policy, the
/// realm's signing keys.
struct Fixture {
    issuers: Issuers,
    realm: RealmName,
    jwt: String,
    policy: Policy,
    keys: SigningKey,
    signer: Signer,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
        let pkcs8 = rsa.as_der().expect("PKCS#8");
        let pkcs1 = PrivateKeyInfo::try_from(pkcs8.as_ref())
            .expect("PKCS#8 parses")
            .private_key
            .to_vec();
        let public = PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
        let jwks = json!({"keys": [{
            "kty": "RSA", "kid": "gh-1", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        }]});
        let jwks_file = dir.path().join("jwks.json");
        std::fs::write(&jwks_file, jwks.to_string()).expect("JWKS written");

        let realm = RealmName::parse("bench").expect("realm name");
        let mut settings = Settings::default();
        settings.realms.insert(
            realm.to_string(),
            RealmSettings {
                oidc: vec![issuer_settings(&jwks_file)],
                ..RealmSettings::default()
            },
        );
        let issuers = Issuers::load(&settings).expect("issuer loads");

        let now = unix_now();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("gh-1".into());
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
            "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app",
            "repository_owner": "acme", "ref": "refs/heads/main",
            "job_workflow_ref": "acme/app/.github/workflows/build.yml@refs/heads/main",
            "run_id": "1234567890", "actor": "octocat", "event_name": "push",
        });
        let jwt = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(&pkcs1))
            .expect("JWT signs");
        let keys = SigningKey::load_or_create(dir.path(), &realm).expect("realm keys");
        let signer = Signer::new(&keys, TokenHeader::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let fixture = Fixture {
            issuers,
            realm,
            jwt,
            policy: Policy::from_toml_str(POLICY).expect("policy"),
            keys,
            signer,
            runtime,
            _dir: dir,
        };
        // The first verification reads the JWKS file; every later one finds the keys cached.
        let granted = fixture.request();
        assert_eq!(granted, 1, "the job may push its own repository");
        fixture
    }

    /// One request's work: verify, decide, sign. The number of scopes granted.
    fn request(&self) -> usize {
        let workload = self
            .runtime
            .block_on(oidc::verify(
                self.issuers.of(&self.realm),
                black_box(&self.jwt),
                unix_now(),
                &mut Trace::off(),
            ))
            .expect("the JWT verifies");
        let principal = Principal::workload(workload);
        let requested = scope::parse_all(SCOPES).expect("scopes parse");
        let granted = authorize(&self.policy, &principal, &requested).granted;
        let claims = push_claims(self.signer.jti().expect("jti"), &granted, unix_now());
        black_box(self.signer.sign(&self.keys, &claims).expect("token signs"));
        granted.len()
    }
}

/// A GitHub Actions issuer whose keys are in `jwks_file`, trusting the `acme` organisation.
fn issuer_settings(jwks_file: &Path) -> OidcSettings {
    OidcSettings {
        name: "github".into(),
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        jwks_uri: None,
        jwks_file: Some(jwks_file.to_owned()),
        ca_file: None,
        algorithms: vec!["RS256".into()],
        clock_skew_secs: 60,
        max_age_secs: 3600,
        jwks_refresh_secs: 86_400,
        jwks_min_refetch_secs: 60,
        fetch_timeout_ms: 5000,
        subject: "${iss-name}:${sub}".into(),
        rules: vec![OidcRuleSettings {
            name: "acme".into(),
            conditions: [
                (
                    "repository_owner".to_owned(),
                    OidcCondition::Equals("acme".into()),
                ),
                (
                    "ref".to_owned(),
                    OidcCondition::Glob {
                        glob: "refs/heads/*".into(),
                    },
                ),
            ]
            .into(),
            groups: vec![],
            groups_claim: None,
        }],
        console: None,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn requests(c: &mut Criterion) {
    let fixture = Fixture::new();
    let rng = SystemRandom::new();
    let input = signing_input(&fixture.keys, unix_now());
    let mut group = c.benchmark_group("oidc");
    group.bench_function("es256_raw_signature", |b| {
        b.iter(|| {
            fixture
                .keys
                .signer()
                .sign(&rng, black_box(input.as_bytes()))
                .expect("signature")
        })
    });
    group.bench_function("verify_rs256_jwt_and_sign", |b| {
        b.iter(|| fixture.request())
    });
    group.finish();
}

criterion_group!(benches, requests);

/// The two timed alternately, `ROUNDS` rounds: the median per-operation time of each and their
/// ratio, printed with the CPU model.
fn ratio() {
    let fixture = Fixture::new();
    let rng = SystemRandom::new();
    let input = signing_input(&fixture.keys, unix_now());
    let time = |work: &dyn Fn()| {
        let started = Instant::now();
        for _ in 0..PER_ROUND {
            work();
        }
        started.elapsed() / PER_ROUND
    };
    let mut signatures: Vec<Duration> = Vec::new();
    let mut requests: Vec<Duration> = Vec::new();
    for _ in 0..ROUNDS {
        signatures.push(time(&|| {
            black_box(
                fixture
                    .keys
                    .signer()
                    .sign(&rng, input.as_bytes())
                    .expect("signature"),
            );
        }));
        requests.push(time(&|| {
            black_box(fixture.request());
        }));
    }
    signatures.sort();
    requests.sort();
    let (signature, request) = (signatures[ROUNDS / 2], requests[ROUNDS / 2]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "oidc ratio: one ES256 signature {signature:?}, a request with an external RS256 JWT \
         (verify + claim rules + policy + ES256 sign) {request:?}: {:.2}x (median of {ROUNDS} \
         alternating rounds of {PER_ROUND}; CPU: {cpu})",
        request.as_secs_f64() / signature.as_secs_f64()
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio();
}
