//! A local issuer whose keys come from a JWKS file and whose tokens are shaped like Kubernetes
//! service-account tokens (`aud` a list, the claim `kubernetes.io` holding the namespace), signed by
//! the test: logins by Basic and by both OAuth2 grants, claims in policy names, no refresh token,
//! and registry tokens that never outlive the JWT.

use serde_json::json;

use crate::common::database::Db;
use crate::common::jwt;
use crate::common::jwt::granted_scopes;
use crate::common::oidc::{now, LocalIssuer};
use crate::oidc::setup::{kubernetes_issuer, Server, AUDIENCE, KUBERNETES_ISSUER};

#[test]
fn a_service_account_token_logs_in_with_basic_and_gets_its_namespace() {
    // OIDC principals are not stored: this is the one test run on PostgreSQL too.
    let mut engines = vec![Db::Sqlite];
    if std::env::var(crate::common::database::POSTGRES_URL_ENV).is_ok() {
        engines.push(Db::Postgres);
    }
    for db in engines {
        let local = LocalIssuer::new(KUBERNETES_ISSUER);
        let server = Server::start_on(db, &kubernetes_issuer(&local, ""));
        let token = local.sign(&local.kubernetes_claims("ci", "builder", &["other", AUDIENCE]));
        for user in ["oidc", "builder", ""] {
            let answer = server.basic(
                user,
                &token,
                "&scope=repository:k8s/ci/app:pull,push&scope=repository:k8s/prod/app:pull&offline_token=true",
            );
            assert_eq!(
                answer.status, 200,
                "{db:?} user {user:?}: {:?}",
                answer.body
            );
            assert_eq!(
                granted_scopes(&answer.body),
                "repository:k8s/ci/app:pull,push"
            );
            assert!(
                answer.body.get("refresh_token").is_none(),
                "a JWT never becomes a refresh token"
            );
            let issued = jwt::claims(answer.body["token"].as_str().unwrap());
            assert_eq!(
                issued["sub"], "oidc:k8s:system:serviceaccount:ci:builder",
                "the workload's own name space"
            );
        }
        // The log is written in batches: `logged` waits for the line.
        for field in [
            "method=\"oidc\"",
            "issuer=\"k8s\"",
            "claim_rule=\"build-namespaces\"",
            "subject=\"oidc:k8s:system:serviceaccount:ci:builder\"",
            "k8s/${claim./kubernetes.io/namespace}/**",
        ] {
            assert!(
                server.portcullis.logged(field),
                "{db:?}: the audit event names {field}:\n{}",
                server.portcullis.log()
            );
        }
        assert!(
            !server.portcullis.log().contains(&token),
            "the JWT never reaches the log"
        );
    }
}

#[test]
fn token_exchange_and_jwt_bearer_grants_as_containerd_posts_them() {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, ""));
    let token = local.sign(&local.kubernetes_claims("build", "ci-bot", &[AUDIENCE]));
    let exchange = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &subject_token={token}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
         &client_id=containerd-client&access_type=offline&service=registry\
         &scope=repository%3Ak8s%2Fbuild%2Fapp%3Apull%2Cpush"
    );
    let answer = server.post(&exchange);
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        granted_scopes(&answer.body),
        "repository:k8s/build/app:pull,push"
    );
    assert!(answer.body.get("refresh_token").is_none());
    assert!(answer.body["access_token"].is_string());
    let bearer = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={token}\
         &service=registry&scope=repository%3Ak8s%2Fbuild%2Fapp%3Apull"
    );
    let answer = server.post(&bearer);
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        granted_scopes(&answer.body),
        "repository:k8s/build/app:pull"
    );
    let refused = server.post(&exchange.replace(
        &token,
        &local.sign(&local.kubernetes_claims("prod", "x", &[AUDIENCE])),
    ));
    assert_eq!(refused.status, 401, "{:?}", refused.body);
}

#[test]
fn a_registry_token_never_outlives_the_jwt() {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, ""));
    let mut claims = local.kubernetes_claims("ci", "builder", &[AUDIENCE]);
    let exp = now() + 120;
    claims["exp"] = json!(exp);
    let answer = server.basic(
        "oidc",
        &local.sign(&claims),
        "&scope=repository:k8s/ci/app:pull",
    );
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let expires_in = answer.body["expires_in"].as_u64().unwrap();
    assert!((60..=120).contains(&expires_in), "expires_in {expires_in}");
    let issued = jwt::claims(answer.body["token"].as_str().unwrap());
    assert!(issued["exp"].as_u64().unwrap() <= exp, "{issued}");
}

#[test]
fn a_local_account_never_receives_a_jwt_as_a_password() {
    let local = LocalIssuer::new(KUBERNETES_ISSUER);
    let server = Server::start(&kubernetes_issuer(&local, ""));
    server.portcullis.add_user("alice", "alice-pw", false);
    // A JWT under a local user's name is a workload login: it is never checked as alice's
    // password, so it can neither log in as alice nor count toward alice's lockout.
    let foreign = local.sign(&local.kubernetes_claims("prod", "x", &[AUDIENCE]));
    for _ in 0..12 {
        assert_eq!(server.basic("alice", &foreign, "").status, 401);
    }
    assert_eq!(server.portcullis.token_status("alice", "alice-pw"), "200");
    assert!(server.portcullis.logged("reason=\"oidc: no rule matched\""));
    assert!(!server.portcullis.logged("reason=\"wrong password\""));
}
