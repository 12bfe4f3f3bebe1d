//! Directory logins against a real OpenLDAP `slapd` (Debian's package), one private instance per
//! test (`tests/common/slapd.rs`, whose doc describes the tree). Needs `slapd`, `slapadd`,
//! ldap-utils and `openssl`, which `scripts/install-deps.sh` installs; no root. Tests that take
//! an engine run on SQLite, and on PostgreSQL too when `PORTCULLIS_TEST_POSTGRES_URL` is set.

pub mod common;

/// The cases, one file per concern, in `tests/ldap/`.
mod ldap {
    mod failure;
    mod harness;
    mod interop;
    mod login;
    mod setup;
    mod tokens;
}
