//! Directory logins against a real OpenLDAP `slapd` (Debian's package), one private instance per
//! test (`tests/common/slapd.rs`). Needs root-free ports only, plus `slapd`, `slapadd` and
//! ldap-utils from `scripts/install-deps.sh`.

pub mod common;

/// The cases, one file per concern, in `tests/ldap/`.
mod ldap {
    mod harness;
}
