//! Workload identity: external JWTs from a real OpenID provider (`oidc-provider` from npm, run by
//! Node; `tests/common/oidc.rs`) and from a local issuer shaped like a Kubernetes cluster, through
//! a real server. Needs `node` and `tests/common/oidc/node_modules`, which
//! `scripts/install-deps.sh` installs. The docker and skopeo flow is in `tests/interop.rs`.

pub mod common;

/// The cases, one file per concern, in `tests/oidc/`.
mod oidc {
    pub mod setup;

    mod kubernetes;
    mod provider;
    mod refusals;
    mod tools;
}
