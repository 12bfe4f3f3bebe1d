//! Shared helpers for every integration test target: each target's root declares `pub mod common;`.
//!
//! The `pub` matters: items reachable from a test crate's root count as used, so a target that needs
//! only some of these helpers gets no dead-code warning for the rest, and no `#[allow(dead_code)]`
//! is needed.
pub mod curl;
pub mod database;
pub mod external;
pub mod https;
pub mod jwt;
pub mod munged;
pub mod oidc;
pub mod portcullis;
pub mod slapd;
pub mod tls;
