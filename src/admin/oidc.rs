//! The workload-identity use case: `portcullis oidc test` verifies a JWT against a realm's trusted
//! issuers as the server would (keys fetched as a request would fetch them) and reports each
//! step, the claims, the claim rule that matched and the principal; `policy explain
//! --oidc-token-stdin` decides a would-be request of that principal. It writes nothing and logs
//! no token.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::AdminError;
use crate::auth::oidc::{self, Issuers, OidcError, Trace, Workload};
use crate::config::Settings;
use crate::names::RealmName;

/// What a verification did.
pub struct Report {
    /// The checks, in order.
    pub steps: Vec<String>,
    /// The workload, or why the token was refused (a request would get 401) or could not be
    /// checked (503).
    pub outcome: Result<Workload, OidcError>,
    /// The claims as the token states them: verified when `outcome` is a workload, unverified
    /// otherwise (`None` when they do not decode).
    pub claims: Option<Value>,
}

/// Verifies `token` against `realm`'s trusted issuers now.
pub async fn test(
    settings: &Settings,
    realm: &RealmName,
    token: &SecretString,
) -> Result<Report, AdminError> {
    let issuers = Issuers::load(settings).map_err(|e| AdminError::Issuer(e.to_string()))?;
    let trusted = issuers.of(realm);
    if trusted.is_empty() {
        return Err(AdminError::NoIssuers(realm.clone()));
    }
    let mut trace = Trace::on();
    let now = crate::store::unix_now().max(0).unsigned_abs();
    let token = token.expose_secret().trim();
    let outcome = oidc::verify(trusted, token, now, &mut trace).await;
    let claims = match &outcome {
        Ok(workload) => Some(workload.claims.clone()),
        Err(_) => jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).ok(),
    };
    Ok(Report {
        steps: trace.lines().to_vec(),
        outcome,
        claims,
    })
}
