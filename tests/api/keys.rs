//! The published key documents: the JWKS and the PEM bundle match the tokens' `kid` and `x5c`.

use crate::api::helpers::{header, TestApp};
use crate::on_both_engines;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::Value;

on_both_engines!(jwks_verifies_tokens, pem_bundle_is_the_certificate);

async fn jwks_verifies_tokens(app: TestApp) {
    for prefix in ["/auth/realms", "/realms"] {
        let url = format!("{}{prefix}/default/protocol/docker-v2/certs", app.address);
        let jwks: JwkSet = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let body: Value = app
            .get_token("service=registry", None)
            .await
            .json()
            .await
            .unwrap();
        let jwt = body["token"].as_str().unwrap();
        let kid = header(jwt)["kid"].as_str().unwrap().to_owned();
        let jwk = jwks.find(&kid).expect("JWKS kid equals token kid");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["registry"]);
        let key = DecodingKey::from_jwk(jwk).unwrap();
        decode::<Value>(jwt, &key, &validation).expect("token verifies with the published key");
    }
}

async fn pem_bundle_is_the_certificate(app: TestApp) {
    let url = format!(
        "{}/auth/realms/default/protocol/docker-v2/cert-bundle",
        app.address
    );
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let pem = response.text().await.unwrap();
    let on_disk = std::fs::read_to_string(app.settings.keys.dir.join("default/cert.pem")).unwrap();
    assert_eq!(pem, on_disk);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let body: Value = app
        .get_token("service=registry", None)
        .await
        .json()
        .await
        .unwrap();
    let x5c = header(body["token"].as_str().unwrap())["x5c"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let base64_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(x5c, base64_body, "x5c carries the bundle's certificate");
}
