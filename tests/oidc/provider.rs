//! Against a real OpenID provider (oidc-provider): keys found by discovery, claims chosen per
//! token as a CI platform sets them, key rotation (a second key, then the first removed), and the
//! last good keys kept while the issuer is down.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::oidc::Provider;
use crate::oidc::setup::{ci_issuer, Server, AUDIENCE};

/// Claims of a job of `repository` in the `acme` organisation at `git_ref`.
fn job(repository: &str, git_ref: &str) -> Value {
    json!({
        "repository": repository,
        "repository_owner": repository.split('/').next().unwrap(),
        "ref": git_ref,
        "job_workflow_ref": format!("{repository}/.github/workflows/build.yml@{git_ref}"),
    })
}

#[test]
fn a_job_token_found_by_discovery_may_push_its_own_repository_only() {
    let provider = Provider::start(&["k1"]);
    let server = Server::start(&ci_issuer(&provider, ""));
    let token = provider.token(AUDIENCE, 300, &job("acme/app", "refs/heads/main"));
    assert_eq!(
        server.granted(&token, "repository:acme/app/web:pull,push"),
        Ok("repository:acme/app/web:pull,push".into()),
        "{}",
        server.portcullis.log()
    );
    assert_eq!(
        server.granted(&token, "repository:acme/other/web:push"),
        Ok(String::new())
    );
    assert_eq!(
        server.granted(&token, "repository:releases/app:push"),
        Ok(String::new())
    );
    // A tag build of the same repository is in the group `release`.
    let tag = provider.token(AUDIENCE, 300, &job("acme/app", "refs/tags/v1.0"));
    assert_eq!(
        server.granted(&tag, "repository:releases/app:push"),
        Ok("repository:releases/app:push".into())
    );
    // Another organisation's job: no rule matches it.
    let foreign = provider.token(AUDIENCE, 300, &job("evil/app", "refs/heads/main"));
    assert_eq!(
        server.granted(&foreign, "repository:evil/app/x:pull"),
        Err(401)
    );
    // A claim holding glob characters widens nothing.
    let wide = provider.token(AUDIENCE, 300, &job("acme/**", "refs/heads/main"));
    assert_eq!(
        server.granted(&wide, "repository:acme/app/web:pull"),
        Ok(String::new())
    );
    // The provider's tokens for another audience.
    let elsewhere = provider.token(
        "https://vault.example.com",
        300,
        &job("acme/app", "refs/heads/main"),
    );
    assert_eq!(
        server.granted(&elsewhere, "repository:acme/app/web:pull"),
        Err(401)
    );
    assert!(server.portcullis.logged("reason=\"oidc: wrong audience\""));
    assert!(
        server
            .portcullis
            .logged("subject=oidc:ci:acme/app:refs/heads/main")
            || server
                .portcullis
                .logged("subject=\"oidc:ci:acme/app:refs/heads/main\"")
    );
}

#[test]
fn keys_rotate_a_second_key_then_the_first_removed() {
    let mut provider = Provider::start(&["k1"]);
    let server = Server::start(&ci_issuer(
        &provider,
        "jwks_min_refetch_secs = 0\njwks_refresh_secs = 1",
    ));
    let scope = "repository:acme/app/web:pull";
    let by_k1 = provider.token(AUDIENCE, 600, &job("acme/app", "refs/heads/main"));
    assert_eq!(server.granted(&by_k1, scope), Ok(scope.into()));
    // A new key signs; the old one is still published. The unknown kid triggers a fetch.
    provider.restart(&["k2", "k1"]);
    let by_k2 = provider.token(AUDIENCE, 600, &job("acme/app", "refs/heads/main"));
    assert_eq!(crate::common::jwt::header(&by_k2)["kid"], "k2");
    assert_eq!(server.granted(&by_k2, scope), Ok(scope.into()));
    assert_eq!(
        server.granted(&by_k1, scope),
        Ok(scope.into()),
        "both keys published"
    );
    // The old key is removed: once the cached keys are older than jwks_refresh_secs, they are
    // fetched again and tokens signed by it are refused.
    provider.restart(&["k2"]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(server.granted(&by_k1, scope), Err(401));
    assert!(server
        .portcullis
        .logged("reason=\"oidc: no key for the token's kid and alg\""));
    assert_eq!(server.granted(&by_k2, scope), Ok(scope.into()));
}

#[test]
fn the_last_good_keys_are_kept_while_the_issuer_is_down() {
    let mut provider = Provider::start(&["k1"]);
    let server = Server::start(&ci_issuer(
        &provider,
        "jwks_refresh_secs = 1\njwks_min_refetch_secs = 1",
    ));
    let scope = "repository:acme/app/web:pull";
    let token = provider.token(AUDIENCE, 600, &job("acme/app", "refs/heads/main"));
    assert_eq!(server.granted(&token, scope), Ok(scope.into()));
    provider.stop();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        server.granted(&token, scope),
        Ok(scope.into()),
        "the refresh fails, the cached keys still verify"
    );
    assert!(
        server.portcullis.logged("issuer keys could not be loaded"),
        "{}",
        server.portcullis.log()
    );
}
