//! Every check that refuses an external JWT, one test each: 401 with a generic body and an audit
//! event naming the check, the token and its claims in neither; and 503 with Retry-After when the
//! issuer's keys cannot be had.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::oidc::{es256_key, now, LocalIssuer};
use crate::oidc::setup::{ci_issuer_at, kubernetes_issuer, Server, AUDIENCE, KUBERNETES_ISSUER};

/// A server trusting a fresh local issuer, and that issuer.
fn kubernetes() -> (Server, LocalIssuer) {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, "max_age_secs = 7200"));
    (server, local)
}

#[test]
fn a_bad_signature_is_refused() {
    let (server, local) = kubernetes();
    // Another key under the same kid.
    let (other, _) = es256_key(&local.kid);
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(local.kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &local.kubernetes_claims("ci", "builder", &[AUDIENCE]),
        &other,
    )
    .unwrap();
    server.assert_refused(&forged, "oidc: bad signature", &[]);
    // A signed token whose claims were altered after signing.
    let genuine = local.sign(&local.kubernetes_claims("prod", "builder", &[AUDIENCE]));
    let parts: Vec<&str> = genuine.split('.').collect();
    let altered_claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&altered_claims.to_string()),
        parts[2]
    );
    server.assert_refused(&altered, "oidc: bad signature", &[]);
}

#[test]
fn a_wrong_issuer_is_refused() {
    let (server, local) = kubernetes();
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    claims["iss"] = json!("https://kubernetes.default.svc.cluster.local/");
    server.assert_refused(&local.sign(&claims), "oidc: wrong issuer", &[]);
}

#[test]
fn a_wrong_audience_is_refused() {
    let (server, local) = kubernetes();
    let claims = local.kubernetes_claims("ci", "builder", &["sts.amazonaws.com", "vault"]);
    server.assert_refused(
        &local.sign(&claims),
        "oidc: wrong audience",
        &["sts.amazonaws.com"],
    );
    let mut without = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    without.as_object_mut().unwrap().remove("aud");
    server.assert_refused(&local.sign(&without), "oidc: wrong audience", &[]);
}

#[test]
fn an_expired_token_is_refused() {
    let (server, local) = kubernetes();
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    claims["iat"] = json!(now() - 1000);
    claims["nbf"] = json!(now() - 1000);
    claims["exp"] = json!(now() - 61);
    server.assert_refused(&local.sign(&claims), "oidc: expired", &[]);
}

#[test]
fn a_token_without_exp_or_iat_is_refused() {
    let (server, local) = kubernetes();
    // Kubernetes' legacy secret-based service-account tokens carry neither: they never expire.
    for claim in ["exp", "iat"] {
        let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
        claims.as_object_mut().unwrap().remove(claim);
        server.assert_refused(
            &local.sign(&claims),
            "oidc: exp or iat missing or malformed",
            &[],
        );
    }
    let mut text = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    text["exp"] = json!("tomorrow");
    server.assert_refused(
        &local.sign(&text),
        "oidc: exp or iat missing or malformed",
        &[],
    );
}

#[test]
fn a_token_not_yet_valid_is_refused() {
    let (server, local) = kubernetes();
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    claims["nbf"] = json!(now() + 600);
    server.assert_refused(&local.sign(&claims), "oidc: not yet valid", &[]);
    let mut future = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    future["iat"] = json!(now() + 600);
    server.assert_refused(&local.sign(&future), "oidc: not yet valid", &[]);
}

#[test]
fn a_token_issued_too_long_ago_is_refused() {
    let (server, local) = kubernetes();
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    // max_age_secs is 7200: issued three hours ago, valid for another hour.
    claims["iat"] = json!(now() - 3 * 3600);
    claims["nbf"] = json!(now() - 3 * 3600);
    server.assert_refused(
        &local.sign(&claims),
        "oidc: too old (iat before max_age_secs)",
        &[],
    );
}

#[test]
fn an_algorithm_not_allowed_is_refused() {
    let (server, local) = kubernetes();
    let claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    // HMAC with a secret anyone could pick, the public key's bytes or otherwise.
    for alg in [Algorithm::HS256, Algorithm::HS512] {
        let mut header = Header::new(alg);
        header.kid = Some(local.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"guessable"))
            .unwrap();
        server.assert_refused(&token, "oidc: algorithm not allowed", &[]);
    }
    // `alg: none`, unsigned.
    let unsigned = format!(
        "{}.{}.{}",
        base64_url(&json!({"alg": "none", "kid": local.kid}).to_string()),
        base64_url(&claims.to_string()),
        base64_url("x")
    );
    server.assert_refused(&unsigned, "oidc: algorithm not allowed", &[]);
    // RS256 is a fine algorithm, but this issuer allows only ES256.
    let rsa_header = Header::new(Algorithm::RS256);
    let rs = format!(
        "{}.{}.{}",
        base64_url(&serde_json::to_string(&rsa_header).unwrap()),
        base64_url(&claims.to_string()),
        base64_url("sig")
    );
    server.assert_refused(&rs, "oidc: algorithm not allowed", &[]);
}

#[test]
fn a_token_no_rule_maps_is_refused() {
    let (server, local) = kubernetes();
    let claims = local.kubernetes_claims("production", "deployer", &[AUDIENCE]);
    server.assert_refused(
        &local.sign(&claims),
        "oidc: no rule matched",
        &["production", "deployer"],
    );
}

#[test]
fn a_token_expiring_within_the_minimum_lifetime_is_refused() {
    let (server, local) = kubernetes();
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    claims["exp"] = json!(now() + 30);
    server.assert_refused(
        &local.sign(&claims),
        "oidc: expires within the minimum token lifetime",
        &[],
    );
}

#[test]
fn unreachable_keys_never_known_answer_503_with_retry_after() {
    // Nothing listens on port 9 of the loopback address: discovery fails at once.
    let server = Server::start(&ci_issuer_at(
        "http://127.0.0.1:9",
        "fetch_timeout_ms = 2000",
    ));
    let local = LocalIssuer::new("http://127.0.0.1:9");
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    claims["repository_owner"] = json!("acme");
    claims["ref"] = json!("refs/heads/main");
    claims["repository"] = json!("acme/app");
    let token = local.sign(&claims);
    for _ in 0..2 {
        let answer = server.basic("oidc", &token, "&scope=repository:acme/app:pull");
        assert_eq!(answer.status, 503, "{:?}", answer.body);
        // Until the next fetch may be tried (jwks_min_refetch_secs, 60).
        answer.retry_after(60);
    }
    assert!(server
        .portcullis
        .logged("reason=\"oidc: issuer keys unavailable\""));
    assert!(!server.portcullis.log().contains(&token));
}

/// Base64url without padding, as JWTs encode their parts.
fn base64_url(text: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(text)
}
