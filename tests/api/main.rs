//! Black-box API tests: a real server on port 0, real HTTP, each case on SQLite and on PostgreSQL.

mod helpers;
#[path = "../munge/support/mod.rs"]
#[allow(dead_code)] // the decoder tests use the rest of this support module
mod munged;

mod access_tokens;
mod changes;
mod connections;
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
