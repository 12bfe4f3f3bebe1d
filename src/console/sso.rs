//! Signing in with a realm's OpenID provider: the browser's side of the authorization code flow.
//! `GET /console/sso/{issuer}/start?realm=R` records a pending sign-in under a random cookie
//! (`portcullis_sso`: HttpOnly, SameSite=Lax so that it comes back with the provider's redirect,
//! `Path=/console/sso`, ten minutes) and sends the browser to the provider; the provider sends it
//! back to `GET /console/sso/callback`, which takes the pending sign-in (once), checks `state`,
//! lets the authenticator finish (code, ID token, nonce, account), starts a console session and
//! answers with a page that moves on to the tokens page: the session cookie is SameSite=Strict,
//! which a browser does not send on the rest of a navigation that began at another site.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::pages::{sign_in_page, signed_in_page};
use super::session::{self, digest};
use super::{ConsoleError, ConsoleState};
use crate::auth::oidc::sign_in::{Pending, SignInError};
use crate::auth::token::random_secret;
use crate::http::client_addr;
use crate::names::{IssuerName, RealmName};
use crate::realm::DEFAULT_REALM;
use crate::store::{unix_now, PendingSignIn};

/// The pending sign-in's cookie.
const COOKIE: &str = "portcullis_sso";
/// The path it is sent to.
const COOKIE_PATH: &str = "/console/sso";
/// How long a person may take at the provider.
const PENDING_SECS: i64 = 600;
/// Where the provider sends the browser back, after the public URL.
pub const CALLBACK_PATH: &str = "/console/sso/callback";

type State = web::Data<ConsoleState>;

#[derive(Deserialize)]
pub struct StartQuery {
    realm: Option<String>,
}

pub async fn start(
    state: State,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let realm_text = query.realm.as_deref().unwrap_or(DEFAULT_REALM);
    let (Ok(realm), Ok(issuer)) = (RealmName::parse(realm_text), IssuerName::parse(&path)) else {
        return Err(ConsoleError::NotFound);
    };
    let pending = Pending::new().map_err(|_| ConsoleError::Unavailable)?;
    let url = match state
        .authenticator
        .provider_sign_in_url(&realm, &issuer, &state.sso_redirect_uri, &pending)
        .await
    {
        Ok(url) => url,
        Err(SignInError::NoClient) => return Err(ConsoleError::NotFound),
        Err(error) => {
            tracing::error!(realm = %realm, issuer = %issuer, error = %error, "console sign-in: the provider cannot be used");
            return Ok(sign_in_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                realm.as_str(),
                "",
                Some("The identity provider cannot be reached now: try again later.".to_owned()),
            ));
        }
    };
    let secret = random_secret().map_err(|_| ConsoleError::Unavailable)?;
    let now = unix_now();
    let record = PendingSignIn {
        realm: realm.to_string(),
        issuer: issuer.to_string(),
        state: pending.state,
        nonce: pending.nonce,
        verifier: pending.verifier,
        expires_at: now + PENDING_SECS,
    };
    state
        .store
        .create_sign_in(&digest(&secret), &record, now)
        .await?;
    let cookie = Cookie::build(COOKIE, secret)
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(PENDING_SECS))
        .finish();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .cookie(cookie)
        .finish())
}

/// What the provider sends back: a code and the state, or an error.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    request: HttpRequest,
    state: State,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let removal = removal(&state);
    let refused = |status: StatusCode, realm: &str, message: &str| {
        let mut response = sign_in_page(&state, status, realm, "", Some(message.to_owned()));
        let _ = response.add_cookie(&removal);
        response
    };
    let pending = match request.cookie(COOKIE) {
        Some(cookie) => state.store.take_sign_in(&digest(cookie.value())).await?,
        None => None,
    };
    let Some(pending) = pending.filter(|p| p.expires_at >= unix_now()) else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            DEFAULT_REALM,
            "This sign-in was not started in this browser, was already used, or took more than \
             ten minutes: start again.",
        ));
    };
    let (Ok(realm), Ok(issuer)) = (
        RealmName::parse(&pending.realm),
        IssuerName::parse(&pending.issuer),
    ) else {
        return Err(ConsoleError::Unavailable);
    };
    let audit_refusal = |reason: &str| {
        tracing::warn!(target: "audit", event = "console_sign_in_refused", realm = %realm, issuer = %issuer, reason);
    };
    if let Some(error) = &query.error {
        audit_refusal("the provider answered with an error");
        tracing::info!(realm = %realm, issuer = %issuer, error = %error.escape_debug(), "console sign-in: the provider did not sign the person in");
        return Ok(refused(
            StatusCode::UNAUTHORIZED,
            realm.as_str(),
            "The identity provider did not sign you in.",
        ));
    }
    let same_state = query.state.as_deref().is_some_and(|presented| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            pending.state.as_bytes(),
        )
        .is_ok()
    });
    let (true, Some(code)) = (same_state, query.code.as_deref()) else {
        audit_refusal("state or code missing or wrong");
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            realm.as_str(),
            "This answer does not belong to the sign-in this browser started: start again.",
        ));
    };
    let flow = Pending {
        state: pending.state,
        nonce: pending.nonce,
        verifier: pending.verifier,
    };
    let record = match state
        .authenticator
        .provider_sign_in(&realm, &issuer, &state.sso_redirect_uri, code, &flow)
        .await
    {
        Ok(record) => record,
        Err(error @ (SignInError::Provider(_) | SignInError::Store(_))) => {
            tracing::error!(realm = %realm, issuer = %issuer, error = %error, "console sign-in: the provider or the database failed");
            audit_refusal(&error.audit_reason());
            return Ok(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                realm.as_str(),
                "The identity provider cannot be reached now: try again later.",
            ));
        }
        Err(error) => {
            tracing::info!(realm = %realm, issuer = %issuer, error = %error, "console sign-in refused");
            audit_refusal(&error.audit_reason());
            let message = match error {
                SignInError::NameTaken(_)
                | SignInError::Disabled(_)
                | SignInError::Username { .. } => {
                    format!("You cannot sign in here: {error}. Ask an administrator.")
                }
                _ => "The identity provider's answer was not accepted: start again.".to_owned(),
            };
            return Ok(refused(StatusCode::UNAUTHORIZED, realm.as_str(), &message));
        }
    };
    let cookie = session::start(&state, &record).await?;
    let address = client_addr(&request, &state.trusted_proxies);
    tracing::info!(target: "audit", event = "console_signed_in", realm = %realm, user = %record.username, issuer = %issuer, client = %address);
    let mut response = signed_in_page(&record.username);
    let _ = response.add_cookie(&cookie);
    let _ = response.add_cookie(&removal);
    Ok(response)
}

/// The cookie that removes the pending sign-in's cookie.
fn removal(state: &ConsoleState) -> Cookie<'static> {
    let mut cookie = Cookie::build(COOKIE, "")
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.secure)
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}
