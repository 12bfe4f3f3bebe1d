//! Black-box API tests: a real server on port 0, real HTTP, each case on SQLite and on PostgreSQL.

mod helpers;

mod access_tokens;
mod errors;
mod keys;
mod policy;
mod realms;
mod refresh;
mod token_get;
mod token_post;
