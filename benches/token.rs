//! The per-request building blocks of a token (issue item 1): one ES256 signature alone, a whole
//! signed token, scope parsing, and MUNGE decoding of credentials the real `munge` made.
//! Run with `cargo bench --bench token`; `scripts/bench.sh` reads `es256/raw_signature` from it as
//! the unit its server figures are divided by. Needs the `munge` tools (scripts/install-deps.sh).

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use criterion::{criterion_group, criterion_main, Criterion};
use munged::Munged;
use portcullis::jwt::{Signer, TokenHeader};
use portcullis::keys::SigningKey;
use portcullis::munge::{decode, DecodePolicy};
use portcullis::names::RealmName;
use portcullis::scope::{self, Scope};
use push_token::{push_claims, signing_input, PUSH_SCOPES};

/// A private munged, as the MUNGE tests start one.
#[path = "../tests/common/munged/mod.rs"]
pub mod munged;
mod push_token;

/// A name with a `host:port/` prefix: the grammar must find the actions after the last `:`.
const HOST_PORT_SCOPE: &str = "repository:registry.example.org:5000/team/app:pull,push";
/// The payload an image gateway sends (`authorized_locations`), as in tests/munge.rs.
const GATEWAY_PAYLOAD: &[u8] = br#"{"authorized_locations":{"default":"alice:pa:ss"}}"#;
/// The platform name the decoder is given for munged's key.
const PLATFORM: &str = "bench";

fn signing(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let realm = RealmName::parse("bench").expect("realm name");
    let keys = SigningKey::load_or_create(dir.path(), &realm).expect("realm keys");
    let signer = Signer::new(&keys, TokenHeader::default());
    let rng = SystemRandom::new();
    let scopes = scope::parse_all(PUSH_SCOPES).expect("push scopes parse");
    let now = munged::now();
    let signing_input = signing_input(&keys, now);

    let mut group = c.benchmark_group("es256");
    group.bench_function("raw_signature", |b| {
        b.iter(|| {
            keys.signer()
                .sign(&rng, black_box(signing_input.as_bytes()))
                .expect("signature")
        })
    });
    let claims = push_claims(signer.jti().expect("jti"), &scopes, now);
    group.bench_function("signed_token", |b| {
        b.iter(|| signer.sign(&keys, black_box(&claims)).expect("token signs"))
    });
    group.finish();
}

fn scope_parsing(c: &mut Criterion) {
    assert_eq!(scope::parse_all(PUSH_SCOPES).unwrap().len(), 2);
    let host_port = Scope::parse(HOST_PORT_SCOPE).expect("host:port scope parses");
    assert_eq!(host_port.name(), "registry.example.org:5000/team/app");

    let mut group = c.benchmark_group("scope");
    group.bench_function("push_two_scopes", |b| {
        b.iter(|| scope::parse_all(black_box(PUSH_SCOPES)).expect("parses"))
    });
    group.bench_function("host_port_name", |b| {
        b.iter(|| scope::parse_all([black_box(HOST_PORT_SCOPE)]).expect("parses"))
    });
    group.finish();
}

fn munge_decoding(c: &mut Criterion) {
    let munged = Munged::start(&[]);
    let key = munged.key();
    let keys = [(PLATFORM, &key)];
    let policy = DecodePolicy::default();
    // Decoded at the second they were made, so the credentials stay in their window however
    // long the run takes; replay is the server's check, not the decoder's.
    let now = munged::now();
    let payloads: [(&str, &[u8]); 2] = [("empty_payload", b""), ("json_payload", GATEWAY_PAYLOAD)];

    let mut group = c.benchmark_group("munge_decode");
    for (label, payload) in payloads {
        let credential = munged.encode(&[], payload);
        let decoded = decode(&credential, &keys, now, &policy).expect("munge's credential decodes");
        assert_eq!(decoded.payload(), payload);
        group.bench_function(label, |b| {
            b.iter(|| decode(black_box(&credential), &keys, now, &policy).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, signing, scope_parsing, munge_decoding);
criterion_main!(benches);
