//! The one place errors become HTTP responses. Every error body carries the OAuth2 fields
//! (`error`, `error_description`), distribution's `errors[]` and Docker Hub's `details`, so each kind
//! of client finds the message where it looks.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::oidc::OidcError;
use crate::auth::password::PasswordError;
use crate::auth::{AuthnError, MalformedCredentials};
use crate::issue::IssueError;
use crate::names::RealmName;
use crate::realm::RealmError;
use crate::scope::ScopeError;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "1";
/// What a client is told about wrong credentials, whatever was wrong.
const BAD_CREDENTIALS: &str = "incorrect username or password";
/// What a client is told about a refused external JWT, whichever check failed (the audit log
/// names it): never the claims.
const TOKEN_NOT_ACCEPTED: &str = "the presented token was not accepted";

/// Everything the HTTP layer can answer with other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("unknown realm")]
    UnknownRealm,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    InvalidScope(#[from] ScopeError),
    #[error("grant_type {0:?} is not supported")]
    UnsupportedGrantType(String),
    /// Credentials were presented and are wrong. Carries the realm for `WWW-Authenticate`.
    #[error("{BAD_CREDENTIALS}")]
    InvalidCredentials { realm: String },
    /// An external JWT was refused. Carries the realm for `WWW-Authenticate`.
    #[error("{TOKEN_NOT_ACCEPTED}")]
    TokenNotAccepted { realm: String },
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within this many seconds; the connection is closed.
    #[error("request body not received within {0} s")]
    RequestTimeout(u64),
    /// Too many failed attempts: retry after this many seconds.
    #[error("too many failed attempts; retry after {0} s")]
    TooManyRequests(i64),
    /// A dependency (database, password pool, signer) failed; logged, retried by the client.
    #[error("temporarily unavailable")]
    Unavailable,
    /// A trusted issuer's keys could not be had; logged, retried by the client after this many
    /// seconds (when the next fetch may be tried).
    #[error("temporarily unavailable")]
    UnavailableFor(u64),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
    errors: [DistributionError<'a>; 1],
    details: String,
}

#[derive(Serialize)]
struct DistributionError<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// The OAuth2 `error` code and the distribution `errors[].code`.
    fn codes(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::NotFound | ApiError::UnknownRealm => ("not_found", "NOT_FOUND"),
            ApiError::MethodNotAllowed => ("invalid_request", "UNSUPPORTED"),
            ApiError::InvalidRequest(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::RequestTimeout(_) => ("invalid_request", "INVALID_REQUEST"),
            ApiError::InvalidScope(_) => ("invalid_scope", "INVALID_SCOPE"),
            ApiError::UnsupportedGrantType(_) => ("unsupported_grant_type", "UNSUPPORTED"),
            ApiError::InvalidCredentials { .. } | ApiError::TokenNotAccepted { .. } => {
                ("invalid_grant", "UNAUTHORIZED")
            }
            ApiError::Unavailable | ApiError::UnavailableFor(_) => {
                ("temporarily_unavailable", "UNAVAILABLE")
            }
            ApiError::TooManyRequests(_) => ("slow_down", "TOOMANYREQUESTS"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound | ApiError::UnknownRealm => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidRequest(_)
            | ApiError::InvalidScope(_)
            | ApiError::UnsupportedGrantType(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidCredentials { .. } | ApiError::TokenNotAccepted { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable | ApiError::UnavailableFor(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, code) = self.codes();
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::InvalidCredentials { realm } | ApiError::TokenNotAccepted { realm } => {
                let challenge = format!("Basic realm=\"{realm}\"");
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            ApiError::UnavailableFor(secs) => {
                response.insert_header((header::RETRY_AFTER, secs.max(&1).to_string()));
            }
            // The rest of the body may still come: the connection cannot carry another request.
            ApiError::PayloadTooLarge(_) | ApiError::RequestTimeout(_) => {
                response.force_close();
            }
            ApiError::TooManyRequests(secs) => {
                response.insert_header((header::RETRY_AFTER, secs.max(&1).to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error,
            error_description: message.clone(),
            errors: [DistributionError {
                code,
                message: message.clone(),
            }],
            details: message,
        })
    }
}

impl ApiError {
    /// Maps a refusal of the token service; `realm` names the Basic challenge of a 401.
    pub fn from_issue(error: IssueError, realm: &RealmName) -> ApiError {
        match error {
            IssueError::UnknownService(service) => {
                ApiError::InvalidRequest(format!("service {service:?} is not served by this realm"))
            }
            IssueError::Authn(AuthnError::Rejected(_) | AuthnError::DirectoryRejected { .. }) => {
                ApiError::InvalidCredentials {
                    realm: realm.to_string(),
                }
            }
            IssueError::Authn(AuthnError::Oidc(OidcError::Refused { .. })) => {
                ApiError::TokenNotAccepted {
                    realm: realm.to_string(),
                }
            }
            IssueError::Authn(AuthnError::Oidc(OidcError::Unavailable(e))) => {
                tracing::error!(error = %e, "request failed on a dependency");
                ApiError::UnavailableFor(e.retry_after_secs)
            }
            IssueError::Authn(
                AuthnError::Locked { retry_after_secs }
                | AuthnError::Throttled { retry_after_secs },
            ) => ApiError::TooManyRequests(retry_after_secs),
            IssueError::Authn(AuthnError::Password(PasswordError::Overloaded)) => {
                ApiError::Unavailable
            }
            IssueError::Authn(e) => unavailable(&e),
            IssueError::Sign(e) => unavailable(&e),
            IssueError::Store(e) => unavailable(&e),
            IssueError::Mint(e) => unavailable(&e),
            IssueError::Policy(e) => unavailable(&e),
            IssueError::Keys(e) => unavailable(&e),
            IssueError::NoKey(e) => unavailable(&e),
        }
    }
}

impl From<MalformedCredentials> for ApiError {
    fn from(error: MalformedCredentials) -> Self {
        ApiError::InvalidRequest(error.to_string())
    }
}

impl From<RealmError> for ApiError {
    fn from(error: RealmError) -> Self {
        unavailable(&error)
    }
}

/// Logs the cause of a 503; the client learns only that it may retry.
fn unavailable(error: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %error, "request failed on a dependency");
    ApiError::Unavailable
}
