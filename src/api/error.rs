//! The one place the admin API's failures become responses, all of one shape:
//! `{"error": {"code": "...", "message": "..."}}`, with the status the code implies.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::admin::AdminError;
use crate::auth::token::CreateError;
use crate::store::StoreError;

/// Everything an admin API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are not an admin-API token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but the caller's role does not allow it.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// A route the API does not have.
    #[error("no such route: {0}")]
    NoSuchRoute(String),
    /// The body or a parameter does not parse, or a value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A body over `server.max_body_bytes`.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// It contradicts what is stored (it exists already, a key is pending...).
    #[error("{0}")]
    Conflict(String),
    /// A dependency failed (logged); the client may retry.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::NoSuchRoute(_) => "no_such_route",
            ApiError::Invalid(_) => "invalid",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable => "unavailable",
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoSuchRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthenticated(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"portcullis admin API\""),
                ));
            }
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        response.json(Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        use AdminError as E;
        let text = error.to_string();
        match error {
            E::NoSuchRealm(_) | E::NoSuchUser { .. } | E::NoSuchKey { .. } => {
                ApiError::NotFound(text)
            }
            E::Store(StoreError::NotFound(_)) => ApiError::NotFound(text),
            E::Store(StoreError::Conflict(_))
            | E::Token(CreateError::Store(StoreError::Conflict(_)))
            | E::KeyPending { .. }
            | E::KeyNotPending { .. }
            | E::KeyGone { .. }
            | E::CaExists(_)
            | E::KeyRace(_)
            | E::DirectoryAccount { .. }
            | E::ProviderAccount { .. }
            | E::Robot(_)
            | E::NothingToClear(_) => ApiError::Conflict(text),
            E::Rule(_)
            | E::Scope(_)
            | E::ScopeLimit(_)
            | E::Name(_)
            | E::TokenTtl(_)
            | E::EmptyPassword
            | E::LongPassword
            | E::PasswordLikeToken
            | E::PasswordLikeMunge
            | E::PasswordLikeJwt
            | E::EventName
            | E::Lifetime => ApiError::Invalid(text),
            other => unavailable(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::from(AdminError::Store(error))
    }
}

/// Logs the cause of a 503; the client learns only that it may retry.
pub fn unavailable(error: &dyn std::error::Error) -> ApiError {
    tracing::error!(error = %error, "admin API request failed on a dependency");
    ApiError::Unavailable
}
