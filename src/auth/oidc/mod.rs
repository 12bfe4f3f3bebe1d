//! Workload identity: a JWT that a CI job or a Kubernetes pod already holds, from an issuer the
//! realm trusts (`[[realms.R.oidc]]`), becomes a workload principal `oidc:<issuer>:<subject>`. It
//! arrives as the password of HTTP Basic or in an OAuth2 token-exchange or jwt-bearer grant
//! (`auth::Credentials::Oidc`). The checks, in the order made and audited (docs/workload-identity.md
//! says them to operators):
//! 1. the token's unverified `iss` selects the issuer, compared exactly ("wrong issuer");
//! 2. its header's `alg` is one the issuer allows ("algorithm not allowed");
//! 3. a key of the issuer's JWKS named by `kid` fits that `alg` ("no key for the token");
//! 4. the signature ("bad signature"), then `aud` holds one of the issuer's audiences ("wrong audience");
//! 5. `exp`, `nbf`, `iat` with `clock_skew_secs` ("expired", "not yet valid"), `iat` within
//!    `max_age_secs` ("too old");
//! 6. the claim rules ([`rules`]) map it to a principal ("no rule matched");
//! 7. at least the minimum token lifetime remains ("expires too soon"): a registry token never
//!    outlives the JWT it was issued for.
//!
//! Workloads are never accounts: no row in users, no password lockout, no refresh tokens. The
//! presented JWT is never logged, and refusals name the check, never the claims.
//!
//! The same checks, with the console client's id as the audience, verify the ID tokens of people
//! signing in to the console ([`sign_in`], [`people`]).
//!
//! Files: `settings` (the typed configuration), `keys` (the JWKS cache, its fetches and the
//! issuer's HTTP client), `rules` (claims to principal, pure), `sign_in` (the console's
//! authorization code flow), `people` (the accounts it creates).

pub mod keys;
pub mod people;
pub mod rules;
pub mod settings;
pub mod sign_in;

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use self::keys::{KeyCache, KeysUnavailable, Lookup};
use self::settings::IssuerSettings;
use super::trust::read_secret_file;
use crate::config::{ConfigError, Settings};
use crate::jwt::MIN_TOKEN_TTL_SECS;
use crate::names::{IssuerName, RealmName};

/// Longest presented JWT read: GitHub's and Kubernetes' are 1–2 KiB.
pub const MAX_JWT_LEN: usize = 16 * 1024;

/// Whether `secret` has the shape of a JWS in compact form: three base64url parts, the first a
/// JSON object naming an `alg`. Decides, before any password check, that a Basic password or a
/// grant's assertion is an external JWT.
pub fn looks_like_jwt(secret: &str) -> bool {
    if secret.len() > MAX_JWT_LEN {
        return false;
    }
    let parts: Vec<&str> = secret.split('.').collect();
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(|p| base64url(p)) {
        return false;
    }
    URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|header| serde_json::from_slice::<Value>(&header).ok())
        .is_some_and(|header| header.get("alg").is_some_and(Value::is_string))
}

/// One trusted issuer: its settings, its keys, and the console client's secret.
pub struct Issuer {
    pub settings: Arc<IssuerSettings>,
    pub keys: KeyCache,
    /// Read from `console.client_secret_file` when the issuers load.
    pub client_secret: Option<SecretString>,
}

/// An issuer's settings cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Settings(#[from] ConfigError),
    #[error("realms.{realm}.oidc {issuer}: {problem}")]
    Issuer {
        realm: RealmName,
        issuer: IssuerName,
        problem: String,
    },
}

/// Every realm's trusted issuers.
#[derive(Default)]
pub struct Issuers {
    realms: HashMap<RealmName, Vec<Arc<Issuer>>>,
}

impl Issuers {
    /// Builds each issuer's HTTP client (reading its `ca_file`); fetches no keys yet. Warns about
    /// keys fetched over plain HTTP from anywhere but this host.
    pub fn load(settings: &Settings) -> Result<Issuers, LoadError> {
        let mut realms = HashMap::new();
        for (realm, issuers) in settings.issuers()? {
            let mut loaded = Vec::new();
            for issuer in issuers {
                if let settings::KeySource::Discovery(url) | settings::KeySource::Uri(url) =
                    &issuer.keys
                {
                    let local = matches!(
                        url.host_str(),
                        Some("127.0.0.1" | "::1" | "[::1]" | "localhost")
                    );
                    if url.scheme() == "http" && !local {
                        tracing::warn!(realm = %realm, issuer = %issuer.name, url = %url, "keys are fetched over plain HTTP: anyone on the network path can substitute them");
                    }
                }
                let name = issuer.name.clone();
                let fail = |problem| LoadError::Issuer {
                    realm: realm.clone(),
                    issuer: name.clone(),
                    problem,
                };
                let client_secret = issuer
                    .console
                    .as_ref()
                    .and_then(|console| console.client_secret_file.as_deref())
                    .map(|path| read_secret_file("console.client_secret_file", path))
                    .transpose()
                    .map_err(fail)?;
                let settings = Arc::new(issuer);
                let keys = KeyCache::new(settings.clone()).map_err(fail)?;
                loaded.push(Arc::new(Issuer {
                    settings,
                    keys,
                    client_secret,
                }));
            }
            realms.insert(realm, loaded);
        }
        Ok(Issuers { realms })
    }

    /// The issuers of `realm`, in order.
    pub fn of(&self, realm: &RealmName) -> &[Arc<Issuer>] {
        self.realms.get(realm).map_or(&[], Vec::as_slice)
    }
}

/// A principal proven by an external JWT.
#[derive(Debug, Clone)]
pub struct Workload {
    pub issuer: IssuerName,
    /// `oidc:<issuer name>:<subject>`.
    pub name: String,
    /// `oidc:<issuer name>:<group>` each.
    pub groups: Vec<String>,
    /// The verified claims, for the policy's `${claim.…}` placeholders.
    pub claims: Value,
    /// The claim rule that mapped the token.
    pub rule: String,
    /// The JWT's `exp`, seconds since the epoch.
    pub expires_at: u64,
}

/// Which check refused a token; each is audited by its [`Refusal::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoIssuers,
    Malformed,
    WrongIssuer,
    AlgorithmNotAllowed,
    NoKey,
    BadSignature,
    WrongAudience,
    MissingClaim,
    Expired,
    NotYetValid,
    TooOld,
    NoRuleMatched,
    SubjectUnusable,
    ExpiresTooSoon,
}

impl Refusal {
    /// The reason in the audit log and the denials metric.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoIssuers => "oidc: the realm trusts no issuer",
            Refusal::Malformed => "oidc: malformed token",
            Refusal::WrongIssuer => "oidc: wrong issuer",
            Refusal::AlgorithmNotAllowed => "oidc: algorithm not allowed",
            Refusal::NoKey => "oidc: no key for the token's kid and alg",
            Refusal::BadSignature => "oidc: bad signature",
            Refusal::WrongAudience => "oidc: wrong audience",
            Refusal::MissingClaim => "oidc: exp or iat missing or malformed",
            Refusal::Expired => "oidc: expired",
            Refusal::NotYetValid => "oidc: not yet valid",
            Refusal::TooOld => "oidc: too old (iat before max_age_secs)",
            Refusal::NoRuleMatched => "oidc: no rule matched",
            Refusal::SubjectUnusable => "oidc: the subject template makes no usable name",
            Refusal::ExpiresTooSoon => "oidc: expires within the minimum token lifetime",
        }
    }
}

/// A token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// A check failed; `issuer` is the issuer it was checked against, once known.
    #[error("{}", .refusal.reason())]
    Refused {
        issuer: Option<IssuerName>,
        refusal: Refusal,
    },
    /// The issuer's keys could not be had: 503.
    #[error(transparent)]
    Unavailable(#[from] KeysUnavailable),
}

/// The verification steps, recorded for `portcullis oidc test` (off on the request path).
pub struct Trace(Option<Vec<String>>);

impl Trace {
    pub fn off() -> Trace {
        Trace(None)
    }

    pub fn on() -> Trace {
        Trace(Some(Vec::new()))
    }

    fn is_on(&self) -> bool {
        self.0.is_some()
    }

    fn step(&mut self, line: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.0 {
            lines.push(line());
        }
    }

    /// The steps recorded.
    pub fn lines(&self) -> &[String] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// The claims the verifier itself reads, unverified until the signature is checked.
#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

fn refused(issuer: Option<&IssuerName>, refusal: Refusal) -> OidcError {
    OidcError::Refused {
        issuer: issuer.cloned(),
        refusal,
    }
}

/// Verifies `token` against `issuers` at `now` (seconds since the epoch) and maps it to a workload.
pub async fn verify(
    issuers: &[Arc<Issuer>],
    token: &str,
    now: u64,
    trace: &mut Trace,
) -> Result<Workload, OidcError> {
    if issuers.is_empty() {
        return Err(refused(None, Refusal::NoIssuers));
    }
    let (header, peek) = peek(token)?;
    trace.step(|| {
        format!(
            "header: alg {:?}, kid {}; unverified iss {}",
            header.alg,
            header.kid.as_deref().unwrap_or("(none)"),
            peek.iss.as_deref().unwrap_or("(none)")
        )
    });
    let Some(issuer) = issuers
        .iter()
        .find(|i| peek.iss.as_deref() == Some(i.settings.issuer.as_str()))
    else {
        trace.step(|| "issuer: no trusted issuer has this iss (compared exactly)".into());
        return Err(refused(None, Refusal::WrongIssuer));
    };
    let settings = &issuer.settings;
    trace.step(|| format!("issuer: {} ({})", settings.name, settings.issuer));
    if settings.audiences.is_empty() {
        trace.step(|| "audiences: none (the issuer only signs people in to the console)".into());
        return Err(refused(Some(&settings.name), Refusal::WrongAudience));
    }
    check(issuer, &settings.audiences, &header, token, now, trace).await
}

/// Verifies an ID token `issuer` gave the console's client `client_id`, at `now`: the checks of
/// [`verify`] with the client id as the one audience; the nonce is the caller's to compare.
pub async fn verify_id_token(
    issuer: &Issuer,
    client_id: &str,
    token: &str,
    now: u64,
) -> Result<Workload, OidcError> {
    let (header, peek) = peek(token)?;
    let settings = &issuer.settings;
    if peek.iss.as_deref() != Some(settings.issuer.as_str()) {
        return Err(refused(Some(&settings.name), Refusal::WrongIssuer));
    }
    let audiences = [client_id.to_owned()];
    check(issuer, &audiences, &header, token, now, &mut Trace::off()).await
}

/// The token's header and unverified `iss`.
fn peek(token: &str) -> Result<(jsonwebtoken::Header, Peek), OidcError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        // `none` and names the library does not know are algorithms no issuer allows.
        let names_an_alg = token
            .split('.')
            .next()
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|header| serde_json::from_slice::<Value>(&header).ok())
            .is_some_and(|header| header.get("alg").is_some_and(Value::is_string));
        let refusal = if names_an_alg {
            Refusal::AlgorithmNotAllowed
        } else {
            Refusal::Malformed
        };
        refused(None, refusal)
    })?;
    let peek: Peek = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|_| refused(None, Refusal::Malformed))?;
    Ok((header, peek))
}

/// The checks after the issuer is known: algorithm, key, signature and `aud` (one of
/// `audiences`), times, claim rules, remaining lifetime.
async fn check(
    issuer: &Issuer,
    audiences: &[String],
    header: &jsonwebtoken::Header,
    token: &str,
    now: u64,
    trace: &mut Trace,
) -> Result<Workload, OidcError> {
    let settings = &issuer.settings;
    let name = Some(&settings.name);
    if !settings.algorithms.contains(&header.alg) {
        trace.step(|| {
            format!(
                "algorithm: {:?} is not in {:?}",
                header.alg, settings.algorithms
            )
        });
        return Err(refused(name, Refusal::AlgorithmNotAllowed));
    }
    let (candidates, lookup) = issuer
        .keys
        .candidates(header.kid.as_deref(), header.alg)
        .await?;
    trace.step(|| match &lookup {
        Lookup::Cached => "keys: from the cache".into(),
        Lookup::Fetched => "keys: fetched".into(),
        Lookup::FetchFailed(e) => format!("keys: fetch failed ({e}); the last good keys are used"),
    });
    if candidates.is_empty() {
        trace.step(|| {
            format!(
                "keys: none named {:?} fits {:?}; known: {:?}",
                header.kid,
                header.alg,
                issuer.keys.known()
            )
        });
        return Err(refused(name, Refusal::NoKey));
    }
    let claims = check_signature(settings, audiences, token, header.alg, &candidates).map_err(
        |refusal| {
            trace.step(|| format!("signature and aud: {}", refusal.reason()));
            refused(name, refusal)
        },
    )?;
    trace.step(|| "signature: good; aud: one of the audiences".into());
    let expires_at = check_times(settings, &claims, now).map_err(|refusal| {
        trace.step(|| format!("times: {}", refusal.reason()));
        refused(name, refusal)
    })?;
    trace.step(|| {
        format!(
            "times: exp in {} s, iat and nbf within bounds",
            expires_at.saturating_sub(now)
        )
    });
    if trace.is_on() {
        for rule in &settings.rules {
            let failing = rule.first_failing(&claims);
            trace.step(|| match &failing {
                None => format!("rule {:?}: matches", rule.name),
                Some(condition) => format!("rule {:?}: fails {condition}", rule.name),
            });
            if failing.is_none() {
                break;
            }
        }
    }
    let mapping = rules::map(&settings.name, &settings.subject, &settings.rules, &claims).map_err(
        |unmapped| {
            refused(
                name,
                match unmapped {
                    rules::Unmapped::NoRuleMatched => Refusal::NoRuleMatched,
                    rules::Unmapped::SubjectUnusable => Refusal::SubjectUnusable,
                },
            )
        },
    )?;
    trace.step(|| format!("subject: {} makes {}", settings.subject, mapping.name));
    if expires_at.saturating_sub(now) < MIN_TOKEN_TTL_SECS {
        trace.step(|| format!("lifetime: fewer than {MIN_TOKEN_TTL_SECS} s remain"));
        return Err(refused(name, Refusal::ExpiresTooSoon));
    }
    Ok(Workload {
        issuer: settings.name.clone(),
        name: mapping.name,
        groups: mapping.groups,
        rule: mapping.rule.name.clone(),
        claims,
        expires_at,
    })
}

/// The claims, when one of `candidates` verifies the signature and `aud` holds an audience.
fn check_signature(
    settings: &IssuerSettings,
    audiences: &[String],
    token: &str,
    alg: Algorithm,
    candidates: &[keys::Key],
) -> Result<Value, Refusal> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["aud"]);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(audiences);
    let mut refusal = Refusal::BadSignature;
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token, key.decoding(), &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => {
                refusal = match e.kind() {
                    ErrorKind::InvalidSignature => Refusal::BadSignature,
                    ErrorKind::InvalidAudience => Refusal::WrongAudience,
                    ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
                        Refusal::WrongAudience
                    }
                    ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => Refusal::NoKey,
                    _ => Refusal::Malformed,
                };
                if refusal != Refusal::BadSignature {
                    return Err(refusal);
                }
            }
        }
    }
    Err(refusal)
}

/// Checks `exp`, `nbf` and `iat` at `now`; the token's `exp`.
fn check_times(settings: &IssuerSettings, claims: &Value, now: u64) -> Result<u64, Refusal> {
    let time = |name: &str| -> Result<Option<u64>, Refusal> {
        match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or(Refusal::MissingClaim),
        }
    };
    let skew = settings.clock_skew_secs;
    let exp = time("exp")?.ok_or(Refusal::MissingClaim)?;
    let iat = time("iat")?.ok_or(Refusal::MissingClaim)?;
    if exp.saturating_add(skew) < now {
        return Err(Refusal::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(skew))
        || iat > now.saturating_add(skew)
    {
        return Err(Refusal::NotYetValid);
    }
    if iat
        .saturating_add(settings.max_age_secs)
        .saturating_add(skew)
        < now
    {
        return Err(Refusal::TooOld);
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_is_recognised_and_nothing_else() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k"}"#);
        assert!(looks_like_jwt(&format!("{header}.e30.c2ln")));
        for not in [
            "password",
            "a.b.c",
            "pcr_abc.def.ghi",
            &format!("{header}.e30"),
            &format!("{header}.e30.c2ln.x"),
            &format!("{header}.e30."),
            &format!("{header}.e 0.c2ln"),
            &format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT"}"#)),
        ] {
            assert!(!looks_like_jwt(not), "{not}");
        }
    }
}
