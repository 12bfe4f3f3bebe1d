//! The JWT the registry verifies offline: header (`kid` in libtrust form, with or without `x5c`, as the
//! realm's [`TokenHeader`] says), claims as distribution's `ClaimSet`, and ES256 signing with a key
//! parsed once. Nothing here decides access.

use std::collections::BTreeSet;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use crate::keys::SigningKey;
use crate::scope::Scope;

/// Shortest token life: clients that see no `expires_in` assume 60 s, and the registry allows 60 s of
/// clock leeway, so anything shorter is pointless.
pub const MIN_TOKEN_TTL_SECS: u64 = 60;
/// Default token life (Docker Hub's).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
/// Random bytes in a `jti`.
const JTI_BYTES: usize = 16;

/// One entry of the `access` claim (distribution's `ResourceActions`), borrowed from a granted scope.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResourceActions<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub name: &'a str,
    pub actions: &'a BTreeSet<String>,
}

impl<'a> From<&'a Scope> for ResourceActions<'a> {
    fn from(scope: &'a Scope) -> Self {
        ResourceActions {
            kind: scope.kind(),
            name: scope.name(),
            actions: scope.actions(),
        }
    }
}

/// The claim set (distribution's `ClaimSet`): `aud` is a plain string, times are integer seconds.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<ResourceActions<'a>>,
}

/// A realm's choice of key-identifying header fields, as stored and as operators type it.
///
/// distribution looks for the key in this order: `x5c` first (verified against `rootcertbundle`;
/// registry 3.x never falls back to anything else once `x5c` is present), then `kid` (2.8: the
/// libtrust id of a `rootcertbundle` certificate's key; 3.x: the `kid` of a `jwks` key, or the
/// RFC 7638 thumbprint of a `rootcertbundle` key, which is not our libtrust id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenHeader {
    /// `x5c` and the libtrust `kid`: registry 2.8 and 3.x with `rootcertbundle`.
    #[default]
    X5c,
    /// The libtrust `kid` alone, equal to the exported JWKS's `kid`: registry 2.8 with
    /// `rootcertbundle`, 3.x with `jwks`.
    Kid,
}

impl TokenHeader {
    /// The stored and typed form: `x5c` or `kid`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenHeader::X5c => "x5c",
            TokenHeader::Kid => "kid",
        }
    }

    /// The header fields this choice puts into tokens.
    pub fn reference(self) -> KeyReference {
        match self {
            TokenHeader::X5c => KeyReference::KidAndX5c,
            TokenHeader::Kid => KeyReference::KidOnly,
        }
    }
}

/// A token header choice other than `x5c` or `kid`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a token header choice; expected x5c or kid")]
pub struct UnknownTokenHeader(String);

impl std::str::FromStr for TokenHeader {
    type Err = UnknownTokenHeader;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "x5c" => Ok(TokenHeader::X5c),
            "kid" => Ok(TokenHeader::Kid),
            other => Err(UnknownTokenHeader(other.to_owned())),
        }
    }
}

impl std::fmt::Display for TokenHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Which key-identifying fields go into the header. Realms choose through [`TokenHeader`]; the
/// `x5c`-only variant exists so tests can prove each verification path of the registry on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReference {
    KidAndX5c,
    KidOnly,
    X5cOnly,
}

/// Signs claims with a realm key. The encoded header is computed once per key.
pub struct Signer {
    encoded_header: String,
    rng: SystemRandom,
}

/// A signed token. It is base64url parts joined by dots (RFC 7515, section 7.1), so it is also a
/// JSON string as it stands, with nothing to escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwt(String);

impl Jwt {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Signing failed inside the crypto library (it does not, for a valid key; kept as an error anyway).
#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignError;

impl Signer {
    /// A signer for `keys` with the header fields a realm chose.
    pub fn new(keys: &SigningKey, header: TokenHeader) -> Signer {
        Signer::with_reference(keys, header.reference())
    }

    /// A signer with the chosen key-identifying header fields.
    pub fn with_reference(keys: &SigningKey, reference: KeyReference) -> Signer {
        let mut header = Header::new(Algorithm::ES256);
        if reference != KeyReference::X5cOnly {
            header.kid = Some(keys.kid().to_owned());
        }
        if reference != KeyReference::KidOnly {
            header.x5c = Some(vec![keys.x5c()]);
        }
        let json = serde_json::to_vec(&header).expect("header serializes");
        Signer {
            encoded_header: URL_SAFE_NO_PAD.encode(json),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh random token id.
    pub fn jti(&self) -> Result<String, SignError> {
        let mut bytes = [0u8; JTI_BYTES];
        self.rng.fill(&mut bytes).map_err(|_| SignError)?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `header.claims.signature`, the signature in raw `r||s` form.
    pub fn sign(&self, keys: &SigningKey, claims: &Claims<'_>) -> Result<Jwt, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|_| SignError)?;
        let mut jwt =
            String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 100);
        jwt.push_str(&self.encoded_header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let signature = keys
            .signer()
            .sign(&self.rng, jwt.as_bytes())
            .map_err(|_| SignError)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
        Ok(Jwt(jwt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RealmName;
    use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};

    #[test]
    fn token_verifies_with_the_published_jwk_and_has_the_registry_shape() {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            SigningKey::load_or_create(dir.path(), &RealmName::parse("default").unwrap()).unwrap();
        let signer = Signer::new(&keys, TokenHeader::default());
        let scope = Scope::parse("repository:alice/app:pull,push").unwrap();
        let claims = Claims {
            iss: "http://issuer",
            sub: "alice",
            aud: "registry",
            exp: 2_000_000_300,
            nbf: 2_000_000_000,
            iat: 2_000_000_000,
            jti: signer.jti().unwrap(),
            access: vec![ResourceActions::from(&scope)],
        };
        let signed = signer.sign(&keys, &claims).unwrap();
        let jwt = signed.as_str();

        let header = decode_header(jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(keys.kid()));
        assert_eq!(header.x5c, Some(vec![keys.x5c()]));

        let key = DecodingKey::from_jwk(keys.jwk()).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["registry"]);
        validation.validate_exp = false;
        let data = decode::<serde_json::Value>(jwt, &key, &validation).unwrap();
        let c = data.claims;
        assert!(c["aud"].is_string(), "aud must be a plain string");
        assert!(c["exp"].is_u64() && c["nbf"].is_u64() && c["iat"].is_u64());
        assert_eq!(
            c["access"],
            serde_json::json!([{"type":"repository","name":"alice/app","actions":["pull","push"]}])
        );
        let signature = URL_SAFE_NO_PAD
            .decode(jwt.rsplit('.').next().unwrap())
            .unwrap();
        assert_eq!(signature.len(), 64, "raw r||s, not DER");
    }

    #[test]
    fn header_variants_and_unique_jti() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKey::load_or_create(dir.path(), &RealmName::parse("r").unwrap()).unwrap();
        let header_of = |reference| {
            let signer = Signer::with_reference(&keys, reference);
            let json = URL_SAFE_NO_PAD.decode(&signer.encoded_header).unwrap();
            serde_json::from_slice::<serde_json::Value>(&json).unwrap()
        };
        assert!(header_of(KeyReference::KidOnly).get("x5c").is_none());
        assert!(header_of(KeyReference::X5cOnly).get("kid").is_none());
        let kid_only = header_of(TokenHeader::Kid.reference());
        assert_eq!(kid_only["kid"], keys.kid());
        assert!(kid_only.get("x5c").is_none());
        let both = header_of(TokenHeader::X5c.reference());
        assert!(both.get("x5c").is_some() && both.get("kid").is_some());
        let signer = Signer::new(&keys, TokenHeader::Kid);
        assert_ne!(signer.jti().unwrap(), signer.jti().unwrap());
    }

    #[test]
    fn token_header_parses_only_its_two_names_and_pads() {
        for header in [TokenHeader::X5c, TokenHeader::Kid] {
            assert_eq!(header.as_str().parse::<TokenHeader>().unwrap(), header);
        }
        for bad in ["", "X5C", "jwk", "x5c ", "kid\n"] {
            let err = bad.parse::<TokenHeader>().unwrap_err();
            assert!(err.to_string().contains("expected x5c or kid"), "{err}");
        }
        assert_eq!(format!("[{:<5}]", TokenHeader::Kid), "[kid  ]");
    }
}
