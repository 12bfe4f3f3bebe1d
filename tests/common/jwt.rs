//! Reads the parts of a JWT the tests look at, unverified: verification is the registry's job and
//! is tested through it (tests/interop.rs, tests/rotation.rs) and in the library's own tests. Also
//! signs tokens by hand, with header fields the server would not choose or keys it does not hold,
//! for the registry to accept or refuse.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::jwt::{Claims, KeyReference, ResourceActions, Signer};
use portcullis::keys::SigningKey;
use portcullis::scope::Scope;
use serde_json::Value;

/// The JSON of the `index`th dot-separated part of `jwt`.
fn part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The header of a JWT.
pub fn header(jwt: &str) -> Value {
    part(jwt, 0)
}

/// The claims of a JWT.
pub fn claims(jwt: &str) -> Value {
    part(jwt, 1)
}

/// The granted scopes of a token response, as `resource:name:actions` joined by spaces.
pub fn granted_scopes(body: &Value) -> String {
    let token = body["token"].as_str().expect("a token");
    let claims = claims(token);
    claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let actions: Vec<&str> = a["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            format!(
                "{}:{}:{}",
                a["type"].as_str().unwrap(),
                a["name"].as_str().unwrap(),
                actions.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A token for alice granting `scope` for two minutes, for a registry of `issuer` and `service`,
/// signed by `key` with the header fields `reference` names.
pub fn sign(
    key: &SigningKey,
    reference: KeyReference,
    issuer: &str,
    service: &str,
    scope: &str,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let scope = Scope::parse(scope).unwrap();
    let signer = Signer::with_reference(key, reference);
    let claims = Claims {
        iss: issuer,
        sub: "alice",
        aud: service,
        exp: now + 120,
        nbf: now,
        iat: now,
        jti: signer.jti().unwrap(),
        access: vec![ResourceActions::from(&scope)],
    };
    signer.sign(key, &claims).unwrap().as_str().to_owned()
}
