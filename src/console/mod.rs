//! The web console at `/console/`: people sign in with their password (the token endpoint's
//! checks and lockout) or with the realm's OpenID provider ([`sso`]), and make and revoke their own access tokens; admins also manage group
//! membership, explain the policy, lift lockouts and copy the registry's configuration.
//! Server-rendered HTML from templates compiled into the binary (`templates/`), one small script
//! for copy buttons, no third-party origin. Sessions in the database ([`session`]), a CSRF token
//! on every form, cross-site posts refused, and headers that keep the pages out of frames and
//! other sites' reach.

mod pages;
pub mod session;
mod sso;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpResponse, ResponseError};

use crate::auth::Authenticator;
use crate::config::ConsoleSettings;
use crate::store::{Store, StoreError};

/// Where the console is served.
pub const PREFIX: &str = "/console";
/// Where a visitor with no session is sent.
const SIGN_IN: &str = "/console/sign-in";
/// The pages' Content-Security-Policy: nothing but this origin, never in a frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console's pages need besides the request.
pub struct ConsoleState {
    pub store: Store,
    pub authenticator: Authenticator,
    /// Hashes the passwords of users added from the admin page.
    pub hasher: crate::auth::password::Hasher,
    pub settings: ConsoleSettings,
    /// Cookies are `Secure`: the console is served over HTTPS.
    pub secure: bool,
    pub policy_files: std::collections::HashMap<crate::names::RealmName, std::path::PathBuf>,
    pub reset_after_secs: u32,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where OpenID providers send people back: the public URL and [`sso::CALLBACK_PATH`].
    pub sso_redirect_uri: String,
}

/// Why a console request was not answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// A form without this session's CSRF token, or a post from another site.
    #[error("this form is stale or came from another site; reload the page and try again")]
    Csrf,
    #[error("this page is for the realm's admins")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("temporarily unavailable; try again")]
    Unavailable,
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        tracing::error!(error = %error, "console request failed on a dependency");
        ConsoleError::Unavailable
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Csrf | ConsoleError::Forbidden => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::SignIn => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, SIGN_IN))
                .finish(),
            other => pages::error_page(other.status_code(), &other.to_string()),
        }
    }
}

/// The redirect URI to register at a provider for the console's client, for a server whose
/// public URL is `public_url`.
pub fn sso_redirect_uri(public_url: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), sso::CALLBACK_PATH)
}

/// Registers the console under [`PREFIX`].
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(PREFIX)
            .wrap(actix_web::middleware::from_fn(refuse_cross_site_posts))
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CSP))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .route("", web::get().to(pages::index))
            .route("/", web::get().to(pages::index))
            .route("/sign-in", web::get().to(pages::sign_in_form))
            .route("/sign-in", web::post().to(pages::sign_in))
            .route("/sign-out", web::post().to(pages::sign_out))
            .route("/sso/callback", web::get().to(sso::callback))
            .route("/sso/{issuer}/start", web::get().to(sso::start))
            .route(
                "/sign-out-everywhere",
                web::post().to(pages::sign_out_everywhere),
            )
            .route("/tokens", web::get().to(pages::tokens))
            .route("/tokens", web::post().to(pages::create_token))
            .route("/tokens/{id}/revoke", web::post().to(pages::revoke_token))
            .route("/admin", web::get().to(pages::admin))
            .route("/admin/users", web::post().to(pages::add_user))
            .route("/admin/members", web::post().to(pages::add_member))
            .route(
                "/admin/members/remove",
                web::post().to(pages::remove_member),
            )
            .route("/admin/grants", web::post().to(pages::add_grant))
            .route(
                "/admin/grants/{id}/remove",
                web::post().to(pages::remove_grant),
            )
            .route("/admin/explain", web::post().to(pages::explain))
            .route("/admin/unlock", web::post().to(pages::unlock))
            .route("/static/console.css", web::get().to(pages::stylesheet))
            .route("/static/console.js", web::get().to(pages::script))
            .default_service(web::to(pages::not_found)),
    );
}

/// Refuses a POST that a browser marks as coming from another site (`Sec-Fetch-Site`) or whose
/// `Origin` is not this server's: the sign-in form has no session to hold a CSRF token yet.
async fn refuse_cross_site_posts(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == Method::POST {
        let header_text = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let cross_site = header_text("sec-fetch-site").is_some_and(|site| site == "cross-site");
        let foreign_origin = header_text("origin").is_some_and(|origin| {
            let info = request.connection_info();
            origin != format!("{}://{}", info.scheme(), info.host())
        });
        if cross_site || foreign_origin {
            return Err(ConsoleError::Csrf.into());
        }
    }
    next.call(request).await
}
