//! Keys fetched over HTTPS: a Kubernetes-shaped local issuer whose discovery document and JWKS a
//! real HTTPS server serves (`tests/common/https.rs`: Python's `http.server` and `ssl`, with a
//! certificate signed by a test CA). Trusting that CA through `ca_file`, the issuer's tokens log in;
//! trusting another CA, or only the system's roots, no keys are ever had: 503 with Retry-After and
//! a log naming the certificate.

use serde_json::json;

use crate::common::https::HttpsServer;
use crate::common::jwt;
use crate::common::jwt::granted_scopes;
use crate::common::oidc::LocalIssuer;
use crate::oidc::setup::{kubernetes_issuer_at, Server, AUDIENCE};

/// An HTTPS server publishing `local`'s keys by OpenID discovery: the issuer is the server's own
/// URL, its `jwks_uri` the server's `/jwks.json`.
fn publish(https: &HttpsServer, local: &LocalIssuer) {
    let jwks = std::fs::read_to_string(local.jwks_file()).unwrap();
    https.put("jwks.json", &jwks);
    https.put(
        ".well-known/openid-configuration",
        &json!({
            "issuer": https.url(),
            "jwks_uri": format!("{}/jwks.json", https.url()),
        })
        .to_string(),
    );
}

#[test]
fn discovery_and_keys_over_https_trusting_the_ca_file_log_in() {
    let https = HttpsServer::start();
    let local = LocalIssuer::new(&https.url());
    publish(&https, &local);
    let ca = format!("ca_file = \"{}\"", https.ca_file().display());
    let server = Server::start(&kubernetes_issuer_at(&https.url(), &ca));
    let token = local.sign(&local.kubernetes_claims("ci", "builder", &[AUDIENCE]));
    let answer = server.basic(
        "oidc",
        &token,
        "&scope=repository:k8s/ci/app:pull,push&scope=repository:k8s/prod/app:pull",
    );
    assert_eq!(
        answer.status,
        200,
        "{:?}\n{}",
        answer.body,
        server.portcullis.log()
    );
    assert_eq!(
        granted_scopes(&answer.body),
        "repository:k8s/ci/app:pull,push"
    );
    let issued = jwt::claims(answer.body["token"].as_str().unwrap());
    assert_eq!(issued["sub"], "oidc:k8s:system:serviceaccount:ci:builder");
    let served = https.log();
    for request in [
        "\"GET /.well-known/openid-configuration HTTP/1.1\" 200",
        "\"GET /jwks.json HTTP/1.1\" 200",
    ] {
        assert!(served.contains(request), "{request}:\n{served}");
    }
    assert!(
        server.portcullis.logged("issuer keys loaded"),
        "{}",
        server.portcullis.log()
    );
    assert!(!server.portcullis.log().contains(&token));
}

#[test]
fn a_certificate_from_another_ca_answers_503_and_the_log_names_it() {
    let https = HttpsServer::start();
    let local = LocalIssuer::new(&https.url());
    publish(&https, &local);
    let token = local.sign(&local.kubernetes_claims("ci", "builder", &[AUDIENCE]));
    // An unrelated CA, then no ca_file at all: the system's roots know neither test CA.
    let other = format!("ca_file = \"{}\"", https.other_ca_file().display());
    for extra in [other.as_str(), ""] {
        let server = Server::start(&kubernetes_issuer_at(&https.url(), extra));
        for _ in 0..2 {
            let answer = server.basic("oidc", &token, "&scope=repository:k8s/ci/app:pull");
            assert_eq!(answer.status, 503, "{extra:?}: {:?}", answer.body);
            // Until the next fetch may be tried (jwks_min_refetch_secs, 60).
            answer.retry_after(60);
        }
        for logged in [
            "reason=\"oidc: issuer keys unavailable\"",
            "issuer keys could not be loaded",
            "invalid peer certificate: UnknownIssuer",
        ] {
            assert!(
                server.portcullis.logged(logged),
                "{extra:?}: the log names {logged}:\n{}",
                server.portcullis.log()
            );
        }
        assert!(!server.portcullis.log().contains(&token));
    }
    // Portcullis refused the certificate during the handshake: the server saw the alert, and no
    // request ever reached it.
    let served = https.log();
    assert!(served.contains("ALERT_UNKNOWN_CA"), "{served}");
    assert!(
        !served.contains("\"GET "),
        "no document was served:\n{served}"
    );
}
