//! Black-box API tests: a real server on port 0, real HTTP, each case on SQLite and on PostgreSQL.

pub mod common;

/// The cases, one file per endpoint or concern, in `tests/api/`.
mod api {
    mod helpers;

    mod access_tokens;
    mod admin_api;
    mod changes;
    mod connections;
    mod console_sessions;
    mod errors;
    mod imported_hashes;
    mod keys;
    mod lockout;
    mod munge;
    mod outage;
    mod policy;
    mod realms;
    mod refresh;
    mod safety;
    mod token_get;
    mod token_post;
    mod upgrade;
}
