//! Workload identity: external JWTs from a real OpenID provider (`oidc-provider` from npm, run by
//! Node; `tests/common/oidc.rs`) and from a local issuer shaped like a Kubernetes cluster (its keys
//! in a file, or served over HTTPS by Python's `http.server`; `tests/common/https.rs`), through a
//! real server. Needs `node`, `python3`, `openssl` and `tests/common/oidc/node_modules`, which
//! `scripts/install-deps.sh` installs. The docker and skopeo flow is in `tests/interop.rs`.

pub mod common;

/// The cases, one file per concern, in `tests/oidc/`.
mod oidc {
    pub mod setup;

    mod https;
    mod kubernetes;
    mod provider;
    mod refusals;
    mod tools;
}
