//! Directory logins against a real OpenLDAP `slapd` (Debian's package), one private instance per
//! test (`tests/common/slapd.rs`, whose doc describes the tree). Needs `slapd`, `slapadd`,
//! ldap-utils and `openssl`, which `scripts/install-deps.sh` installs; no root.

pub mod common;

/// The cases, one file per concern, in `tests/ldap/`.
mod ldap {
    mod harness;
}
