//! The operator's tools: `portcullis oidc test` shows the checks, the claims, the claim rule and
//! the principal; `policy explain --oidc-token-stdin` decides a would-be request of that principal.
//! Neither prints the token.

use crate::common::external::describe;
use crate::common::oidc::LocalIssuer;
use crate::oidc::setup::{kubernetes_issuer, Server, AUDIENCE, KUBERNETES_ISSUER};

#[test]
fn oidc_test_walks_the_checks_and_names_the_principal() {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, ""));
    let token = local.sign(&local.kubernetes_claims("ci", "builder", &[AUDIENCE]));
    let out = server.portcullis.cli_ok(
        &["oidc", "test", "--realm", "default", "--token-stdin"],
        &format!("{token}\n"),
    );
    for expected in [
        "issuer: k8s (https://kubernetes.default.svc.cluster.local)",
        "keys: fetched",
        "signature: good",
        "rule \"build-namespaces\": matches",
        "claims (verified)",
        "\"namespace\": \"ci\"",
        "principal: oidc:k8s:system:serviceaccount:ci:builder",
        "groups: oidc:k8s:builders",
        "=> accepted",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
    assert!(!out.contains(&token));

    let other = local.sign(&local.kubernetes_claims("prod", "deployer", &[AUDIENCE]));
    let refused = server
        .portcullis
        .cli(&["oidc", "test", "--token-stdin"], &other);
    assert!(!refused.status.success());
    let text = describe(&refused);
    assert!(
        text.contains("rule \"build-namespaces\": fails /kubernetes.io/namespace one of"),
        "{text}"
    );
    assert!(
        text.contains("claims (NOT verified)") || text.contains("claims (verified)"),
        "{text}"
    );
    assert!(
        text.contains("refused: oidc: no rule matched (a token request would get 401)"),
        "{text}"
    );
}

#[test]
fn policy_explain_decides_for_the_workload_a_token_proves() {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, ""));
    let token = local.sign(&local.kubernetes_claims("build", "builder", &[AUDIENCE]));
    let out = server.portcullis.cli_ok(
        &[
            "policy",
            "explain",
            "--oidc-token-stdin",
            "--scope",
            "repository:k8s/build/app:push",
            "--scope",
            "repository:k8s/ci/app:push",
        ],
        &token,
    );
    assert!(
        out.contains("principal: oidc:k8s:system:serviceaccount:build:builder"),
        "{out}"
    );
    assert!(
        out.contains("repository:k8s/build/app:push: granted repository:k8s/build/app:push"),
        "{out}"
    );
    assert!(
        out.contains("k8s/${claim./kubernetes.io/namespace}/**"),
        "{out}"
    );
    assert!(
        out.contains("repository:k8s/ci/app:push: nothing granted"),
        "another namespace: {out}"
    );
}
