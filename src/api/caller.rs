//! Who calls the admin API: the owner of an access token with the `admin` scope, presented as
//! `Authorization: Bearer <token>`, or of a live console session (its cookie; a change also needs
//! the session's CSRF token in `X-CSRF-Token`), in the realm of the request's path.
//! [`require_caller`] checks it before anything else about the request (its body included), so an
//! unauthenticated caller learns nothing but 401. What a caller may do follows from their role: an
//! admin everything in their realm, a user their own tokens and profile.

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};
use secrecy::SecretString;

use super::error::ApiError;
use super::ApiState;
use crate::auth::token::{sha256_hex, ACCESS_TOKEN_PREFIX};
use crate::console::session;
use crate::names::{RealmName, Username};
use crate::policy::ADMIN_SCOPE;
use crate::store::{unix_now, Role, TokenKind};

/// The OpenAPI document's path, the one route anyone may call.
const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Where realm-scoped paths begin.
const REALMS_PATH: &str = "/api/v1/realms/";

/// What an unauthenticated caller is told, whatever was wrong with the token.
const NOT_AN_ADMIN_TOKEN: &str =
    "present an access token with the admin scope of this realm as Authorization: Bearer, or sign in to the console";
/// The header a console session's changes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller of the admin API, in the realm of the request's path.
#[derive(Debug, Clone)]
pub struct Caller {
    pub realm: RealmName,
    pub user: Username,
    pub role: Role,
}

impl Caller {
    /// Refuses anyone but `user` themselves or an admin.
    pub fn require_self_or_admin(&self, user: &Username) -> Result<(), ApiError> {
        if &self.user == user || self.role == Role::Admin {
            return Ok(());
        }
        Err(ApiError::Forbidden(
            "users may act only on what is their own",
        ))
    }
}

/// A caller with the admin role. As a handler's first argument it refuses everyone else with 403
/// before the body is read.
pub struct Admin(pub Caller);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(match authenticated(request) {
            Ok(caller) if caller.role == Role::Admin => Ok(Admin(caller)),
            Ok(_) => Err(ApiError::Forbidden("this needs the admin role")),
            Err(e) => Err(e),
        })
    }
}

/// The caller [`require_caller`] authenticated.
fn authenticated(request: &HttpRequest) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN))
}

/// The middleware in front of every route but the OpenAPI document: authenticates the caller
/// (refusing with 401 and an audit event) and leaves them in the request for the handler.
pub async fn require_caller(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if request.path() == OPENAPI_PATH {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    match authenticate(request.request()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(refusal) => {
            tracing::warn!(target: "audit", event = "admin_api_refused", method = %request.method(), path = %request.path(), reason = %refusal);
            let response = refusal.error_response();
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticated(request))
    }
}

async fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    let state = request
        .app_data::<web::Data<ApiState>>()
        .expect("the admin API's state is registered");
    let realm = request
        .path()
        .strip_prefix(REALMS_PATH)
        .and_then(|rest| rest.split('/').next())
        .and_then(|raw| RealmName::parse(raw).ok())
        .ok_or(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN))?;
    let authorization = request.headers().get(header::AUTHORIZATION);
    if authorization.is_none() {
        if let Some(cookie) = request.cookie(session::COOKIE) {
            return by_session(request, state, realm, cookie.value()).await;
        }
    }
    let secret = authorization
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| secret.starts_with(ACCESS_TOKEN_PREFIX))
        .ok_or(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN))?;
    let digest = sha256_hex(&SecretString::from(secret.to_owned()));
    let (token, owner) = state
        .store
        .find_token(&realm, TokenKind::Access, &digest)
        .await?
        .ok_or(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN))?;
    let now = unix_now();
    let admin_scope = token
        .scopes
        .as_deref()
        .is_some_and(|scopes| scopes.split(' ').any(|s| s == ADMIN_SCOPE));
    let usable = token.revoked_at.is_none()
        && token.expires_at.is_none_or(|at| at > now)
        && !owner.disabled
        && admin_scope;
    if !usable {
        return Err(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN));
    }
    if let Err(error) = state.store.touch_token(&token.id, now).await {
        tracing::warn!(error = %error, "recording an access token's use failed");
    }
    Ok(Caller {
        realm,
        user: owner.username,
        role: owner.role,
    })
}

/// The caller behind a console session's cookie: its person, in the realm of the path. A change
/// (any method but GET and HEAD) also needs the session's CSRF token in [`CSRF_HEADER`]: the
/// browser sends the cookie with any request, another site's included.
async fn by_session(
    request: &HttpRequest,
    state: &ApiState,
    realm: RealmName,
    secret: &str,
) -> Result<Caller, ApiError> {
    let live = session::live(&state.store, state.console_idle_timeout_secs, secret)
        .await?
        .filter(|live| live.user.realm == realm)
        .ok_or(ApiError::Unauthenticated(NOT_AN_ADMIN_TOKEN))?;
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let presented = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        live.check_csrf(presented).map_err(|_| {
            ApiError::Forbidden("a console session's changes need its CSRF token in X-CSRF-Token")
        })?;
    }
    Ok(Caller {
        realm,
        user: live.user.username,
        role: live.user.role,
    })
}
