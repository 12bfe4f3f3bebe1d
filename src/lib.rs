//! Portcullis: a Docker Registry v2 token service. Registries configured with `auth.token` send their
//! clients here; we authenticate them, decide what they may do, and sign short-lived ES256 JWTs.
//!
//! Words, as the code uses them: a *JWT* is the bearer we sign for the registry ([`jwt`]); a *token*
//! alone is a refresh or access token we mint and store for a caller ([`auth::token`]). The *token
//! service*, *token endpoint* and *token request* keep the names the registry protocol gives them,
//! and so does the setting `token_ttl_secs` (a JWT's lifetime), which operators already have in
//! their files.

pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod claims;
pub mod cli;
pub mod config;
pub mod console;
pub mod http;
pub mod import;
pub mod issue;
pub mod jwt;
pub mod keys;
pub mod metrics;
pub mod munge;
pub mod names;
pub mod policy;
pub mod realm;
pub mod scope;
pub mod startup;
pub mod store;
pub mod telemetry;
