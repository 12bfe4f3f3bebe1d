//! The YAML model of a docker_auth configuration file: the sections this importer reads (static
//! users and ACL, in docker_auth's own shapes), the sections it reports, and the parser's errors.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::import::{ImportError, Skipped};

/// Sections whose settings Portcullis has its own form of.
const OWN_SETTINGS: [&str; 2] = ["server", "token"];
/// docker_auth's authentication backends other than the static `users`.
const AUTHN_BACKENDS: [&str; 9] = [
    "google_auth",
    "github_auth",
    "oidc_auth",
    "gitlab_auth",
    "ldap_auth",
    "mongo_auth",
    "xorm_auth",
    "ext_auth",
    "plugin_authn",
];
/// docker_auth's authorization backends other than the static `acl`.
const AUTHZ_BACKENDS: [&str; 5] = [
    "acl_mongo",
    "acl_xorm",
    "ext_authz",
    "plugin_authz",
    "casbin_authz",
];
/// The section of static users.
const USERS: &str = "users";
/// The section of the static ACL.
const ACL: &str = "acl";

/// The parts of a docker_auth file this importer reads; the rest is listed by section name.
#[derive(Deserialize)]
pub(super) struct Config {
    pub(super) users: Option<BTreeMap<String, Option<UserEntry>>>,
    pub(super) acl: Option<Vec<AclEntry>>,
}

/// One static user (`authn.Requirements`).
#[derive(Deserialize)]
pub(super) struct UserEntry {
    pub(super) password: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, Vec<String>>,
}

/// One ACL entry (`authz.ACLEntry`).
#[derive(Deserialize)]
pub(super) struct AclEntry {
    #[serde(rename = "match")]
    pub(super) conditions: Option<MatchConditions>,
    pub(super) actions: Option<Vec<String>>,
    pub(super) comment: Option<String>,
}

/// `authz.MatchConditions`.
#[derive(Deserialize)]
pub(super) struct MatchConditions {
    pub(super) account: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) name: Option<String>,
    pub(super) ip: Option<String>,
    pub(super) service: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

/// The parser's error, its message always naming the place when the parser knows it.
pub(super) fn yaml_error(error: yaml_serde::Error) -> ImportError {
    let location = error.location();
    let mut message = error.to_string();
    if let Some(at) = location.as_ref().filter(|_| !message.contains(" at line ")) {
        message = format!("{message} at line {} column {}", at.line(), at.column());
    }
    ImportError::Yaml {
        message,
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
    }
}

/// The report line for a top-level section this importer does not read, if any.
pub(super) fn section_skipped(key: &yaml_serde::Value) -> Option<Skipped> {
    let name = match key.as_str() {
        Some(USERS | ACL) => return None,
        Some(name) => name.to_owned(),
        None => format!("{key:?}"),
    };
    let why = if OWN_SETTINGS.contains(&name.as_str()) {
        "not imported: Portcullis has its own settings for this"
    } else if AUTHN_BACKENDS.contains(&name.as_str()) {
        "authentication backend Portcullis does not have: its users are not imported and cannot \
         log in"
    } else if AUTHZ_BACKENDS.contains(&name.as_str()) {
        "authorization backend Portcullis does not have: docker_auth asked it about the scopes no \
         ACL entry matched, which Portcullis now refuses"
    } else {
        "not a docker_auth setting (docker_auth ignores it too)"
    };
    Some(Skipped {
        what: format!("section {name}"),
        why: why.to_owned(),
    })
}
