//! The HTTP surface: routes, thin handlers (parse, call the core, map the result) and the single
//! error-to-response mapping in [`error`]. No business logic lives here.

pub mod body;
pub mod error;
pub mod request;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Serialize;

use self::error::ApiError;
use crate::auth::munge::MUNGE_HEADER;
use crate::auth::password::Verifier;
use crate::issue::{self, Issued, TokenRequest, TokenService};
use crate::keys::now_ms;
use crate::metrics::Metrics;
use crate::names::RealmName;
use crate::realm::{Realm, Realms};
use crate::store::Store;

/// Route prefixes of a realm's docker-v2 protocol: Keycloak's older layout and its newer one, so a
/// registry migrating from Keycloak changes only the host.
pub const REALM_PREFIXES: [&str; 2] = [
    "/auth/realms/{realm}/protocol/docker-v2",
    "/realms/{realm}/protocol/docker-v2",
];
/// The header proxies add the client's address to.
const FORWARDED_FOR: &str = "x-forwarded-for";
/// Media type of the metrics exposition (OpenMetrics text, which Prometheus reads).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Media type of the PEM bundle.
const PEM_CONTENT_TYPE: &str = "application/x-pem-file";
/// `Cache-Control` of token responses: a token is a credential, no cache may keep it (RFC 6749 5.1).
const NO_STORE: &str = "no-store";
/// Room in a token response for everything but its two copies of the token.
const TOKEN_RESPONSE_FIELDS_LEN: usize = 512;

/// What every handler shares.
pub struct AppState {
    pub realms: Realms,
    pub tokens: TokenService,
    pub store: Store,
    pub verifier: Verifier,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// How long a client may take to send a body (`server.client_timeout_secs`).
    pub client_timeout: Duration,
    pub trusted_proxies: Vec<IpAddr>,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for prefix in REALM_PREFIXES {
        // The token endpoint answers at `/auth` below the prefix (Keycloak's realm URL, first) and at
        // the prefix itself, as two resources: one resource with both patterns would match every
        // token request with a regex set first.
        for pattern in [format!("{prefix}/auth"), prefix.to_owned()] {
            cfg.service(
                web::resource(pattern)
                    .route(web::get().to(token_get))
                    .route(web::post().to(token_post))
                    .default_service(web::to(method_not_allowed)),
            );
        }
        cfg.service(web::resource(format!("{prefix}/certs")).route(web::get().to(jwks)))
            .service(
                web::resource(format!("{prefix}/cert-bundle")).route(web::get().to(cert_bundle)),
            );
    }
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The answer for unknown routes.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

async fn token_get(
    request: HttpRequest,
    realm: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let realm = find_realm(&state, &realm).await?;
    let parsed = request::from_query(
        request.query_string(),
        credential_headers(&request),
        client_addr(&request, &state.trusted_proxies),
    )?;
    issue(&state, &realm, parsed, ResponseShape::Get).await
}

async fn token_post(
    request: HttpRequest,
    realm: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let realm = find_realm(&state, &realm).await?;
    let body = body::read(&request, body, state.max_body_bytes, state.client_timeout).await?;
    let parsed = request::from_form(
        request.headers().get(header::CONTENT_TYPE),
        credential_headers(&request),
        &body,
        client_addr(&request, &state.trusted_proxies),
    )?;
    issue(&state, &realm, parsed, ResponseShape::Post).await
}

/// GET answers Docker's way; POST adds OAuth2's `scope`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ResponseShape {
    Get,
    Post,
}

async fn issue(
    state: &AppState,
    realm: &Realm,
    request: TokenRequest,
    shape: ResponseShape,
) -> Result<HttpResponse, ApiError> {
    let issued = state
        .tokens
        .issue(realm, request)
        .await
        .map_err(|e| ApiError::from_issue(e, &realm.name))?;
    Ok(token_response(&issued, shape == ResponseShape::Post))
}

/// The token response: `token` and `access_token` both (clients read one or the other),
/// `expires_in`, `issued_at`, OAuth2's `scope` on POST, and the new `refresh_token` if one was
/// minted. Written by hand: the 1.5 KB token goes in twice as it stands (a
/// [`Jwt`](crate::jwt::Jwt) needs no escaping), where serde would scan it for escapes each time.
fn token_response(issued: &Issued, with_scope: bool) -> HttpResponse {
    let jwt = issued.token.as_str();
    let mut body = String::with_capacity(2 * jwt.len() + TOKEN_RESPONSE_FIELDS_LEN);
    body.push_str(r#"{"token":""#);
    body.push_str(jwt);
    body.push_str(r#"","access_token":""#);
    body.push_str(jwt);
    body.push_str(r#"","expires_in":"#);
    body.push_str(&issued.expires_in.to_string());
    body.push_str(r#","issued_at":"#);
    push_json_string(&mut body, &rfc3339(issued.issued_at));
    if with_scope {
        body.push_str(r#","scope":"#);
        push_json_string(&mut body, &issue::join(&issued.granted));
    }
    if let Some(refresh_token) = &issued.refresh_token {
        body.push_str(r#","refresh_token":"#);
        push_json_string(&mut body, refresh_token.expose_secret());
    }
    body.push('}');
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE)))
        .content_type(header::ContentType::json())
        .body(body)
}

/// Appends `text` as a JSON string, escaped where it must be.
fn push_json_string(body: &mut String, text: &str) {
    body.push_str(&serde_json::Value::from(text).to_string());
}

async fn jwks(
    realm: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let realm = find_realm(&state, &realm).await?;
    let keys = realm.current_keys(&state.store).await?;
    Ok(HttpResponse::Ok().json(keys.jwks(now_ms())))
}

async fn cert_bundle(
    realm: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let realm = find_realm(&state, &realm).await?;
    let keys = realm.current_keys(&state.store).await?;
    Ok(HttpResponse::Ok()
        .content_type(PEM_CONTENT_TYPE)
        .body(keys.pem_bundle(now_ms())))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(state.metrics.render(&state.verifier))
}

/// The body of `/healthz` and `/readyz`.
#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.store.ping().await {
        Ok(HttpResponse::Ok().json(Health { status: "ready" }))
    } else {
        Err(ApiError::Unavailable)
    }
}

async fn find_realm(state: &AppState, raw: &str) -> Result<Arc<Realm>, ApiError> {
    let name = RealmName::parse(raw).map_err(|_| ApiError::UnknownRealm)?;
    state.realms.get(&name).await?.ok_or(ApiError::UnknownRealm)
}

fn credential_headers(request: &HttpRequest) -> request::CredentialHeaders<'_> {
    request::CredentialHeaders {
        authorization: request.headers().get(header::AUTHORIZATION),
        authentication: request.headers().get(MUNGE_HEADER),
    }
}

/// The client's address: the socket's peer, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` that is not a trusted proxy itself.
pub fn client_addr(request: &HttpRequest, trusted_proxies: &[IpAddr]) -> String {
    let Some(peer) = request.peer_addr().map(|a| a.ip()) else {
        return String::new();
    };
    if !trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded = request
        .headers()
        .get_all(FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|hop| !trusted_proxies.contains(hop))
        .unwrap_or(peer)
        .to_string()
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
