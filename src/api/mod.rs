//! The admin HTTP API under `/api/v1`: the operator's use cases (`admin`) as JSON for automation,
//! beside the command line. Every route but the OpenAPI document is realm-scoped
//! (`/api/v1/realms/{realm}/…`) and authenticated by an access token with the `admin` scope
//! ([`caller`]); admins may do everything in their realm, users manage their own tokens. One error
//! shape ([`error`]), lists paginated ([`page`]), and the OpenAPI 3.1 document ([`openapi`]) made
//! from the same table the routes are registered from, so the two cannot disagree.

pub mod caller;
pub mod error;
mod handlers;
pub mod openapi;
pub mod page;

use std::collections::HashMap;
use std::path::PathBuf;

use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, HttpResponse};

use self::error::ApiError;
use crate::admin::realms::KeyPlace;
use crate::auth::password::Hasher;
use crate::names::RealmName;
use crate::store::Store;

/// The API's path prefix.
pub const PREFIX: &str = "/api/v1";

/// What the API's handlers need besides the request.
pub struct ApiState {
    pub store: Store,
    pub hasher: Hasher,
    pub place: KeyPlace,
    /// Each realm's policy file, for `policy/explain`.
    pub policy_files: HashMap<RealmName, PathBuf>,
    /// `lockout.reset_after_secs`: how long failures count, for the lockout list.
    pub reset_after_secs: u32,
    /// `console.idle_timeout_secs`, for callers signed in to the console.
    pub console_idle_timeout_secs: u64,
}

/// One route: its method, path below [`PREFIX`], who may call it, its success status, and what it
/// does.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    pub path: &'static str,
    /// Who may call it: `admin`, `user` (their own things, or anything for an admin) or `anyone`.
    pub access: &'static str,
    /// The status of a success: 200 (a JSON body), 201 (created, a JSON body) or 204 (no body).
    pub status: u16,
    /// The handler's name, the OpenAPI `operationId`; `list_*` answer a page at a time.
    pub operation: &'static str,
    pub summary: &'static str,
}

macro_rules! routes {
    ($($method:ident $path:literal $access:literal $status:literal $handler:ident $summary:literal;)*) => {
        /// Every route of the API, in the order the OpenAPI document lists them.
        pub const ROUTES: &[Route] = &[$(Route {
            method: stringify!($method),
            path: $path,
            access: $access,
            status: $status,
            operation: stringify!($handler),
            summary: $summary,
        }),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to(handlers::$handler));)*
        }
    };
}

routes! {
    get "/openapi.json" "anyone" 200 openapi_document "This document: the API in OpenAPI 3.1.";
    get "/realms/{realm}" "admin" 200 realm "The realm: services, issuer, token lifetime and header.";
    get "/realms/{realm}/me" "user" 200 me "The caller: user name and role.";
    get "/realms/{realm}/users" "admin" 200 list_users "The realm's users and robots, by name.";
    post "/realms/{realm}/users" "admin" 201 add_user "Add a user (with a password) or a robot (without).";
    get "/realms/{realm}/users/{user}" "admin" 200 user "One user.";
    patch "/realms/{realm}/users/{user}" "admin" 200 change_user "Change a user's role, or disable or enable them.";
    delete "/realms/{realm}/users/{user}" "admin" 204 delete_user "Delete a user, their tokens and memberships.";
    get "/realms/{realm}/groups" "admin" 200 list_groups "The realm's groups with their members, by name.";
    post "/realms/{realm}/groups" "admin" 201 add_group "Add a group.";
    delete "/realms/{realm}/groups/{group}" "admin" 204 delete_group "Delete a group.";
    put "/realms/{realm}/groups/{group}/members/{user}" "admin" 204 add_member "Put a user into a group.";
    delete "/realms/{realm}/groups/{group}/members/{user}" "admin" 204 remove_member "Take a user out of a group.";
    get "/realms/{realm}/grants" "admin" 200 list_grants "The realm's stored grants, in the order they apply.";
    post "/realms/{realm}/grants" "admin" 201 add_grant "Add a grant after the realm's file rules.";
    delete "/realms/{realm}/grants/{id}" "admin" 204 remove_grant "Remove a grant.";
    get "/realms/{realm}/tokens" "user" 200 list_tokens "Tokens (never their secrets): an admin's of anyone (?user=), a user's own.";
    post "/realms/{realm}/tokens" "user" 201 create_token "Create an access token; its secret is in this answer only.";
    delete "/realms/{realm}/tokens/{id}" "user" 204 revoke_token "Revoke a token (a user: only their own).";
    get "/realms/{realm}/keys" "admin" 200 list_keys "The realm's signing keys and their states (public parts only).";
    post "/realms/{realm}/policy/explain" "admin" 200 explain "Which of the scopes a user (or anonymous) would be granted, and why.";
    get "/realms/{realm}/munge/{platform}" "admin" 200 list_munge "A platform's MUNGE uid mappings, by uid.";
    put "/realms/{realm}/munge/{platform}/{uid}" "admin" 204 map_munge "Map a platform's uid to a user.";
    delete "/realms/{realm}/munge/{platform}/{uid}" "admin" 204 unmap_munge "Remove a uid's mapping.";
    get "/realms/{realm}/lockouts" "admin" 200 list_lockouts "Accounts and addresses whose failed passwords still count.";
    delete "/realms/{realm}/lockouts/users/{user}" "admin" 204 clear_user_lockout "Forget a user's failures, lifting the lock.";
    get "/realms/{realm}/audit-events" "admin" 200 recent_audit_events "The realm's recent audit events, newest first (?before=ID, ?event=NAME).";
}

/// Registers the API under [`PREFIX`], with JSON bodies of at most `max_body_bytes` whose errors
/// answer in the API's shape, and an API-shaped 404 for any other path below it.
pub fn routes(cfg: &mut web::ServiceConfig, max_body_bytes: usize) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(move |error, _| match error {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::TooLarge(max_body_bytes).into()
            }
            other => ApiError::Invalid(other.to_string()).into(),
        });
    let path = web::PathConfig::default()
        .error_handler(|error, _| ApiError::Invalid(error.to_string()).into());
    let query = web::QueryConfig::default()
        .error_handler(|error, _| ApiError::Invalid(error.to_string()).into());
    cfg.service(
        web::scope(PREFIX)
            .app_data(json)
            .app_data(path)
            .app_data(query)
            .wrap(actix_web::middleware::from_fn(caller::require_caller))
            .configure(register)
            .default_service(web::to(no_such_route)),
    );
}

async fn no_such_route(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoSuchRoute(format!(
        "{} {}",
        request.method(),
        request.path()
    )))
}
