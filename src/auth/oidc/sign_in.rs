//! People signing in with an issuer's console client: the OpenID Connect authorization code flow
//! with PKCE (S256), `state` and `nonce`. This file holds the protocol: the authorization request,
//! the code's exchange at the token endpoint, and the ID token's checks (the issuer's own, with
//! the client id as the one audience, its claim rules, then the nonce) down to a user name and
//! policy groups. The browser's side — the pending sign-in's cookie and record, the account, the
//! session — is the console's (`console::sso`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::settings::ConsoleClient;
use super::{verify_id_token, Issuer, OidcError};
use crate::auth::token::{random_secret, RandomError};
use crate::claims;
use crate::names::Username;
use crate::store::StoreError;

/// What one sign-in must find again when the browser comes back: each 256 random bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Sent to the provider, which returns it with the code.
    pub state: String,
    /// Sent to the provider, which puts it in the ID token.
    pub nonce: String,
    /// The PKCE code verifier: its SHA-256 goes with the request, itself with the code.
    pub verifier: String,
}

impl Pending {
    pub fn new() -> Result<Pending, RandomError> {
        Ok(Pending {
            state: random_secret()?,
            nonce: random_secret()?,
            verifier: random_secret()?,
        })
    }

    /// The PKCE S256 challenge of the verifier.
    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// A person the provider vouched for.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user name claim, lower-cased.
    pub username: Username,
    /// Policy groups from the issuer's claim rules, `oidc:<issuer>:<group>`.
    pub groups: Vec<String>,
    /// The workload-style name of the token's subject, `oidc:<issuer>:<subject>`, for the log.
    pub subject: String,
    /// The claim rule that mapped the token.
    pub rule: String,
}

/// Why a sign-in did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The issuer has no console client.
    #[error("the issuer has no console client")]
    NoClient,
    /// The provider could not be reached or answered what it should not: 503, logged.
    #[error("the OpenID provider: {0}")]
    Provider(String),
    /// The provider refused the code (expired, used, or not ours): the person starts again.
    #[error("the OpenID provider refused the sign-in: {0}")]
    CodeRefused(String),
    /// The ID token failed a check.
    #[error(transparent)]
    IdToken(#[from] OidcError),
    /// The ID token was not made for this sign-in.
    #[error("the ID token's nonce is not this sign-in's")]
    WrongNonce,
    /// The user name claim is missing or is no valid user name.
    #[error("the claim {claim} {problem}")]
    Username { claim: String, problem: String },
    /// The name is an account that does not sign in with this provider.
    #[error("the account {0} exists and does not sign in with this provider")]
    NameTaken(Username),
    /// The account is disabled.
    #[error("the account {0} is disabled")]
    Disabled(Username),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SignInError {
    /// The refusal's reason in the audit log: names the check, never a claim's value.
    pub fn audit_reason(&self) -> String {
        match self {
            SignInError::NoClient => "no console client".to_owned(),
            SignInError::Provider(_) => "provider unavailable".to_owned(),
            SignInError::CodeRefused(_) => "code refused by the provider".to_owned(),
            SignInError::IdToken(error) => error.to_string(),
            SignInError::WrongNonce => "wrong nonce".to_owned(),
            SignInError::Username { .. } => "no usable user name".to_owned(),
            SignInError::NameTaken(_) => "name taken by another account".to_owned(),
            SignInError::Disabled(_) => "user disabled".to_owned(),
            SignInError::Store(_) => "store unavailable".to_owned(),
        }
    }
}

/// The endpoints the discovery document names.
#[derive(Deserialize)]
struct Endpoints {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

fn client(issuer: &Issuer) -> Result<&ConsoleClient, SignInError> {
    issuer
        .settings
        .console
        .as_ref()
        .ok_or(SignInError::NoClient)
}

async fn endpoints(issuer: &Issuer, client: &ConsoleClient) -> Result<Endpoints, SignInError> {
    let document = issuer
        .keys
        .get(client.discovery.as_str())
        .await
        .map_err(SignInError::Provider)?;
    let endpoints: Endpoints = serde_json::from_slice(&document).map_err(|e| {
        SignInError::Provider(format!(
            "{}: not an OpenID configuration: {e}",
            client.discovery
        ))
    })?;
    if endpoints.issuer != issuer.settings.issuer {
        return Err(SignInError::Provider(format!(
            "{} names the issuer {:?}, not {:?}",
            client.discovery, endpoints.issuer, issuer.settings.issuer
        )));
    }
    Ok(endpoints)
}

/// Where to send the browser: the provider's authorization endpoint with this sign-in's request.
pub async fn authorization_url(
    issuer: &Issuer,
    redirect_uri: &str,
    pending: &Pending,
) -> Result<Url, SignInError> {
    let client = client(issuer)?;
    let endpoints = endpoints(issuer, client).await?;
    let mut url = Url::parse(&endpoints.authorization_endpoint).map_err(|e| {
        SignInError::Provider(format!(
            "authorization_endpoint {:?}: {e}",
            endpoints.authorization_endpoint
        ))
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &client.scopes)
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &pending.challenge())
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

/// The token endpoint's answer, as far as it matters here.
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
}

/// An OAuth2 error answer.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
}

/// Exchanges `code` for the ID token at `now` (seconds since the epoch) and checks it against
/// `pending`: the person it names.
pub async fn finish(
    issuer: &Issuer,
    redirect_uri: &str,
    code: &str,
    pending: &Pending,
    now: u64,
) -> Result<SignedIn, SignInError> {
    let client = client(issuer)?;
    let endpoints = endpoints(issuer, client).await?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", pending.verifier.as_str()),
    ];
    // A confidential client authenticates with HTTP Basic (client_secret_basic, which every
    // provider supports); a public one names itself in the form.
    let basic = match &issuer.client_secret {
        Some(secret) => Some((
            form_encode(&client.client_id),
            form_encode(secret.expose_secret()),
        )),
        None => {
            form.push(("client_id", client.client_id.as_str()));
            None
        }
    };
    let (status, body) = issuer
        .keys
        .post_form(
            &endpoints.token_endpoint,
            &form,
            basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        )
        .await
        .map_err(SignInError::Provider)?;
    if status.is_client_error() {
        let error = serde_json::from_slice::<ErrorAnswer>(&body)
            .map(|answer| answer.error)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        return Err(SignInError::CodeRefused(error));
    }
    if !status.is_success() {
        return Err(SignInError::Provider(format!(
            "{}: HTTP {status}",
            endpoints.token_endpoint
        )));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|e| SignInError::Provider(format!("{}: {e}", endpoints.token_endpoint)))?;
    let id_token = answer.id_token.ok_or_else(|| {
        SignInError::Provider(format!(
            "{} answered without an id_token (is openid among the scopes?)",
            endpoints.token_endpoint
        ))
    })?;
    let person = verify_id_token(issuer, &client.client_id, &id_token, now).await?;
    let nonce = person.claims.get("nonce").and_then(Value::as_str);
    if nonce != Some(pending.nonce.as_str()) {
        return Err(SignInError::WrongNonce);
    }
    let claim = client.username_claim.to_string();
    let text = claims::text(&person.claims, &client.username_claim).ok_or_else(|| {
        SignInError::Username {
            claim: claim.clone(),
            problem: "is missing or has no text".to_owned(),
        }
    })?;
    let username =
        Username::parse(&text.to_lowercase()).map_err(|error| SignInError::Username {
            claim,
            problem: error.to_string(),
        })?;
    Ok(SignedIn {
        username,
        groups: person.groups,
        subject: person.name,
        rule: person.rule,
    })
}

/// `application/x-www-form-urlencoded` of one value, as RFC 6749 (2.3.1) asks of the client id
/// and secret before HTTP Basic.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256() {
        // RFC 7636, appendix B.
        let pending = Pending {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
        };
        assert_eq!(
            pending.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pending::new().unwrap();
        assert_ne!(fresh.state, fresh.nonce);
        assert_eq!(fresh.state.len(), 43);
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        assert_eq!(form_encode("a b:c/d"), "a+b%3Ac%2Fd");
    }
}
