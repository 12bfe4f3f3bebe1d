//! Portcullis: a Docker Registry v2 token service. Registries configured with `auth.token` send their
//! clients here; we authenticate them, decide what they may do, and sign short-lived ES256 tokens.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod import;
pub mod keys;
pub mod metrics;
pub mod munge;
pub mod policy;
pub mod realm;
pub mod scope;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token;
