//! The token a `docker push` gets, shared by the criterion benches and the signature probe: both
//! sign its signing input, so the raw signature hashes as many bytes as the server's does.

use portcullis::jwt::{Claims, ResourceActions, Signer, TokenHeader, DEFAULT_TOKEN_TTL_SECS};
use portcullis::keys::SigningKey;
use portcullis::scope::{self, Scope};

/// The issuer of the default realm of a server on its default address.
pub const ISSUER: &str = "http://127.0.0.1:5001/auth/realms/default/protocol/docker-v2/auth";
/// `docker push alice/app` with a layer mounted from `library/alpine`: two `scope` parameters.
pub const PUSH_SCOPES: [&str; 2] = [
    "repository:alice/app:pull,push",
    "repository:library/alpine:pull",
];

/// The claims of a `docker push`: both `scopes` granted, as the server would sign them, issued at
/// `now` (Unix seconds).
pub fn push_claims(jti: String, scopes: &[Scope], now: u64) -> Claims<'_> {
    let access = scopes.iter().map(ResourceActions::from).collect();
    Claims {
        iss: ISSUER,
        sub: "alice",
        aud: "registry",
        exp: now + DEFAULT_TOKEN_TTL_SECS,
        nbf: now,
        iat: now,
        jti,
        access,
    }
}

/// What a push token's signature covers (`header.payload`), signed by `keys` at `now`.
pub fn signing_input(keys: &SigningKey, now: u64) -> String {
    let signer = Signer::new(keys, TokenHeader::default());
    let scopes = scope::parse_all(PUSH_SCOPES).expect("push scopes parse");
    let token = signer
        .sign(keys, &push_claims(signer.jti().expect("jti"), &scopes, now))
        .expect("token signs");
    let token = token.as_str();
    token[..token.rfind('.').expect("three parts")].to_owned()
}
