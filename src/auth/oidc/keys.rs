//! An issuer's signing keys: fetched (discovery, a JWKS URL) or read (a JWKS file) when first
//! needed, cached, fetched again when older than `jwks_refresh_secs` or when a token names an
//! unknown `kid`, at most once per `jwks_min_refetch_secs`. A failed fetch keeps the last good
//! keys; with none ever known the request gets 503. Only asymmetric keys are kept: `oct` (HMAC)
//! keys and encryption keys are skipped. It verifies nothing itself.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use super::settings::{IssuerSettings, KeySource};
use crate::auth::trust;
use crate::names::IssuerName;

/// Largest discovery document or JWKS read: real ones are a few kilobytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// No keys could be had: the request gets 503, the cause is logged.
#[derive(Debug, thiserror::Error)]
#[error("issuer {issuer}: no signing keys known ({cause}); next fetch in {retry_after_secs} s")]
pub struct KeysUnavailable {
    pub issuer: IssuerName,
    pub cause: String,
    /// Seconds until the next fetch may be tried (`jwks_min_refetch_secs`), for Retry-After.
    pub retry_after_secs: u64,
}

/// One verification key, with what it may verify.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    key: DecodingKey,
    /// The JWK's own `alg`, when it states one.
    alg: Option<KeyAlgorithm>,
    kind: KeyKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec(Algorithm),
    Ed25519,
}

impl Key {
    /// The key from a JWK; `None` for HMAC, encryption and unsupported keys.
    fn from_jwk(jwk: &Jwk) -> Option<Key> {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            return None;
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyKind::Ec(Algorithm::ES256),
                EllipticCurve::P384 => KeyKind::Ec(Algorithm::ES384),
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                KeyKind::Ed25519
            }
            _ => return None,
        };
        Some(Key {
            kid: jwk.common.key_id.clone(),
            key: DecodingKey::from_jwk(jwk).ok()?,
            alg: jwk.common.key_algorithm,
            kind,
        })
    }

    /// Whether this key may verify a signature made with `alg`: its type fits, and its own `alg`
    /// (if stated) is the same.
    pub fn fits(&self, alg: Algorithm) -> bool {
        let type_fits = match self.kind {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::Ec(curve_alg) => alg == curve_alg,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        };
        let stated_fits = self
            .alg
            .is_none_or(|stated| stated == KeyAlgorithm::from(alg));
        type_fits && stated_fits
    }

    pub fn decoding(&self) -> &DecodingKey {
        &self.key
    }
}

/// The keys of one JWKS.
#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// Keys of a JWKS document; keys that do not parse or cannot verify are skipped.
    fn parse(document: &[u8]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document =
            serde_json::from_slice(document).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys: Vec<Key> = document
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| Key::from_jwk(&jwk))
            .collect();
        if keys.is_empty() {
            return Err(
                "the JWKS holds no usable signing key (RSA, EC P-256/P-384, Ed25519)".into(),
            );
        }
        Ok(KeySet { keys })
    }

    /// The keys `kid` names (every key when the token names none) that fit `alg`.
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<Key> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.fits(alg))
            .cloned()
            .collect()
    }

    fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
    }
}

/// What the cache holds.
#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_error: Option<String>,
}

/// One issuer's keys.
pub struct KeyCache {
    settings: Arc<IssuerSettings>,
    client: reqwest::Client,
    state: RwLock<State>,
    /// Held while fetching: one fetch at a time per issuer.
    fetching: tokio::sync::Mutex<()>,
}

/// How one lookup went, for `portcullis oidc test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Cached,
    Fetched,
    /// The fetch failed; cached keys were used.
    FetchFailed(String),
}

impl KeyCache {
    /// A cache for `settings`: builds the HTTP client (reads `ca_file` now); fetches nothing yet.
    pub fn new(settings: Arc<IssuerSettings>) -> Result<KeyCache, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &settings.ca_file {
            trust::add_ca_file(&mut roots, path)?;
        }
        let tls = trust::client_config(roots)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(settings.fetch_timeout)
            .timeout(settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(KeyCache {
            settings,
            client,
            state: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The keys that may verify a token signed with `alg` under `kid`: from the cache while it is
    /// fresh and knows `kid`, else after a fetch (rate-limited); a failed fetch falls back to the
    /// cached keys. `Err` only when no keys were ever had.
    pub async fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Vec<Key>, Lookup), KeysUnavailable> {
        if let Some(keys) = self.fresh(kid) {
            return Ok((keys.candidates(kid, alg), Lookup::Cached));
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.fresh(kid) {
            return Ok((keys.candidates(kid, alg), Lookup::Cached));
        }
        let lookup = if self.may_fetch() {
            self.fetch().await
        } else {
            Lookup::Cached
        };
        let state = self.state.read().expect("key cache lock");
        match &state.keys {
            Some(keys) => Ok((keys.candidates(kid, alg), lookup)),
            None => Err(KeysUnavailable {
                issuer: self.settings.name.clone(),
                cause: state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".into()),
                retry_after_secs: self.retry_after_secs(&state),
            }),
        }
    }

    /// The cached keys, when fetched within `jwks_refresh` and knowing `kid`.
    fn fresh(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let state = self.state.read().expect("key cache lock");
        let fresh = state
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.settings.jwks_refresh);
        let keys = state.keys.as_ref()?;
        (fresh && keys.knows(kid)).then(|| keys.clone())
    }

    /// Whether the last attempt is at least `jwks_min_refetch` ago.
    fn may_fetch(&self) -> bool {
        self.state
            .read()
            .expect("key cache lock")
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.settings.jwks_min_refetch)
    }

    /// Seconds until the next fetch may be tried, at least 1.
    fn retry_after_secs(&self, state: &State) -> u64 {
        let waited = state.attempted_at.map_or(Duration::MAX, |at| at.elapsed());
        self.settings
            .jwks_min_refetch
            .saturating_sub(waited)
            .as_secs()
            .max(1)
    }

    /// Fetches (or reads) the keys and stores them, or the error beside the last good keys.
    async fn fetch(&self) -> Lookup {
        let result = self.load().await;
        let mut state = self.state.write().expect("key cache lock");
        state.attempted_at = Some(Instant::now());
        match result {
            Ok(keys) => {
                tracing::info!(issuer = %self.settings.name, keys = keys.keys.len(), "issuer keys loaded");
                state.keys = Some(Arc::new(keys));
                state.fetched_at = Some(Instant::now());
                state.last_error = None;
                Lookup::Fetched
            }
            Err(error) => {
                tracing::warn!(issuer = %self.settings.name, error = %error, kept = state.keys.is_some(), "issuer keys could not be loaded");
                state.last_error = Some(error.clone());
                Lookup::FetchFailed(error)
            }
        }
    }

    async fn load(&self) -> Result<KeySet, String> {
        match &self.settings.keys {
            KeySource::File(path) => {
                let path = path.clone();
                let document = tokio::task::spawn_blocking(move || read_capped(&path))
                    .await
                    .map_err(|e| format!("reading jwks_file: {e}"))??;
                KeySet::parse(&document)
            }
            KeySource::Uri(url) => KeySet::parse(&self.get(url.as_str()).await?),
            KeySource::Discovery(url) => {
                #[derive(Deserialize)]
                struct Discovery {
                    issuer: String,
                    jwks_uri: String,
                }
                let document = self.get(url.as_str()).await?;
                let discovery: Discovery = serde_json::from_slice(&document)
                    .map_err(|e| format!("{url}: not an OpenID configuration: {e}"))?;
                if discovery.issuer != self.settings.issuer {
                    return Err(format!(
                        "{url} names the issuer {:?}, not {:?}",
                        discovery.issuer, self.settings.issuer
                    ));
                }
                KeySet::parse(&self.get(&discovery.jwks_uri).await?)
            }
        }
    }

    /// GET `url`, refusing bodies over [`MAX_DOCUMENT_BYTES`] and answers other than 200.
    pub(super) async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        match send(request, url).await? {
            (reqwest::StatusCode::OK, body) => Ok(body),
            (status, _) => Err(format!("{url}: HTTP {status}")),
        }
    }

    /// POSTs `form` to `url` (an issuer's token endpoint) with the issuer's HTTP client, with HTTP
    /// Basic `user:password` when given; the answer's status and body, at most
    /// [`MAX_DOCUMENT_BYTES`].
    pub(super) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        send(request, url).await
    }

    /// Key ids and algorithms known now, for `portcullis oidc test`.
    pub fn known(&self) -> Vec<String> {
        let state = self.state.read().expect("key cache lock");
        state.keys.as_ref().map_or_else(Vec::new, |keys| {
            keys.keys
                .iter()
                .map(|k| format!("{} ({:?})", k.kid.as_deref().unwrap_or("no kid"), k.kind))
                .collect()
        })
    }
}

/// Sends `request` (to `url`); the answer's status and body, refusing bodies over
/// [`MAX_DOCUMENT_BYTES`].
async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// A JWKS file, at most [`MAX_DOCUMENT_BYTES`].
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("jwks_file {shown}: {e}"))?;
    let mut document = Vec::new();
    file.take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut document)
        .map_err(|e| format!("jwks_file {shown}: {e}"))?;
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "jwks_file {shown}: larger than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    Ok(document)
}

/// An error and its causes, `: `-separated (reqwest's own message hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_encryption_keys_are_never_used() {
        let document = br#"{"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "h"},
            {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "e",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "s", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "unknown"}
        ]}"#;
        let set = KeySet::parse(document).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(set.knows(Some("s")));
        assert!(!set.knows(Some("h")));
        assert_eq!(set.candidates(Some("s"), Algorithm::ES256).len(), 1);
        assert!(set.candidates(Some("s"), Algorithm::RS256).is_empty());
        assert!(set.candidates(Some("s"), Algorithm::ES384).is_empty());
        assert!(set.candidates(Some("h"), Algorithm::HS256).is_empty());
        assert!(KeySet::parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(KeySet::parse(b"<html>").is_err());
    }
}
