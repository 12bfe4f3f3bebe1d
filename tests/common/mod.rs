//! Shared helpers for the integration tests; include with `mod common;`.
pub mod external;
pub mod portcullis;
