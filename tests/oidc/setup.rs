//! What the workload-identity tests share: a policy that grants by workload name, group and claim,
//! `[[realms.default.oidc]]` entries for the real provider and for a Kubernetes-shaped local
//! issuer, a server started with them, and token requests over curl.

use crate::common::curl::Answer;
use crate::common::database::Db;
use crate::common::jwt::granted_scopes;
use crate::common::oidc::{LocalIssuer, Provider};
use crate::common::portcullis::Portcullis;

/// The audience the registry's tokens are minted for.
pub const AUDIENCE: &str = "registry.example.com";
/// The Kubernetes issuer, as a cluster's service-account tokens name it.
pub const KUBERNETES_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A CI job may push and pull its own repository's images (`${claim.repository}/**`), release
/// jobs `releases/**`; pods of the namespaces the rule admits their namespace's `k8s/NS/**`.
pub const POLICY: &str = r#"
evaluation = "union"

[[rule]]
subject = "oidc:ci:*"
name = "${claim.repository}/**"
actions = ["pull", "push"]

[[rule]]
subject = "group:oidc:ci:release"
name = "releases/**"
actions = ["pull", "push"]

[[rule]]
subject = "group:oidc:k8s:builders"
name = "k8s/${claim./kubernetes.io/namespace}/**"
actions = ["pull", "push"]

[[rule]]
subject = "authenticated"
name = "${account}/**"
actions = ["*"]
"#;

/// The provider as issuer `ci`: tokens of the `acme` organisation from a branch, mapped to
/// `oidc:ci:<repository>:<ref>`; tags also get the group `release`. `extra` lines go into the
/// issuer's entry (before its rules).
pub fn ci_issuer(provider: &Provider, extra: &str) -> String {
    ci_issuer_at(&provider.issuer(), extra)
}

/// [`ci_issuer`] for an issuer URL (one where nothing may listen).
pub fn ci_issuer_at(issuer: &str, extra: &str) -> String {
    format!(
        r#"
[[realms.default.oidc]]
name = "ci"
issuer = "{issuer}"
audiences = ["{AUDIENCE}"]
subject = "${{iss-name}}:${{claim.repository}}:${{claim.ref}}"
{extra}

[[realms.default.oidc.rules]]
name = "acme-tags"
groups = ["release"]
conditions = {{ repository_owner = "acme", ref = {{ glob = "refs/tags/*" }} }}

[[realms.default.oidc.rules]]
name = "acme-branches"
conditions = {{ repository_owner = "acme", ref = {{ glob = "refs/heads/*" }} }}
"#
    )
}

/// A local issuer as `k8s`, keys from its JWKS file, ES256 only: service accounts of the
/// namespaces `ci` and `build` are in the group `builders`.
pub fn kubernetes_issuer(local: &LocalIssuer, extra: &str) -> String {
    let jwks = local.jwks_file();
    kubernetes_issuer_at(
        &local.issuer,
        &format!("jwks_file = \"{}\"\n{extra}", jwks.display()),
    )
}

/// [`kubernetes_issuer`] for the issuer URL `issuer`, its keys by OpenID discovery unless `extra`
/// (lines for the issuer's entry) names another source.
pub fn kubernetes_issuer_at(issuer: &str, extra: &str) -> String {
    format!(
        r#"
[[realms.default.oidc]]
name = "k8s"
issuer = "{issuer}"
audiences = ["{AUDIENCE}", "other"]
algorithms = ["ES256"]
subject = "${{iss-name}}:${{sub}}"
{extra}

[[realms.default.oidc.rules]]
name = "build-namespaces"
groups = ["builders"]
[realms.default.oidc.rules.conditions]
"/kubernetes.io/namespace" = {{ one_of = ["ci", "build"] }}
"#
    )
}

/// A server on `db` whose default realm has [`POLICY`] and these issuer entries.
pub struct Server {
    pub portcullis: Portcullis,
    _policy: tempfile::TempDir,
}

impl Server {
    pub fn start(issuers: &str) -> Server {
        Server::start_on(Db::Sqlite, issuers)
    }

    pub fn start_on(db: Db, issuers: &str) -> Server {
        let policy = tempfile::tempdir().unwrap();
        let policy_file = policy.path().join("policy.toml");
        std::fs::write(&policy_file, POLICY).unwrap();
        let config = format!(
            "[realms.default]\npolicy_file = \"{}\"\n{issuers}",
            policy_file.display()
        );
        Server {
            portcullis: Portcullis::start_on(db, &config),
            _policy: policy,
        }
    }

    /// A GET token request with HTTP Basic `user:jwt` and `query` after the service.
    pub fn basic(&self, user: &str, jwt: &str, query: &str) -> Answer {
        self.portcullis.basic_token(user, jwt, query)
    }

    /// A POST token request with this form.
    pub fn post(&self, form: &str) -> Answer {
        self.portcullis.post_token(form)
    }

    /// The scopes granted for `scope` to the bearer of `jwt` (Basic user `oidc`), or the status.
    pub fn granted(&self, jwt: &str, scope: &str) -> Result<String, u16> {
        let answer = self.basic("oidc", jwt, &format!("&scope={scope}"));
        if answer.status != 200 {
            return Err(answer.status);
        }
        Ok(granted_scopes(&answer.body))
    }

    /// Asserts a 401 for `jwt` with the generic body, an audit event naming `reason`, and that
    /// neither the token nor any of `claims` reached the body or the log.
    pub fn assert_refused(&self, jwt: &str, reason: &str, claims: &[&str]) {
        let answer = self.basic("oidc", jwt, "&scope=repository:k8s/ci/app:pull");
        assert_eq!(answer.status, 401, "{reason}: {:?}", answer.body);
        assert_eq!(
            answer.body["error_description"], "the presented token was not accepted",
            "{reason}"
        );
        assert!(
            answer.headers.contains("www-authenticate: basic realm="),
            "{}",
            answer.headers
        );
        let audited = format!("reason=\"{reason}\"");
        assert!(
            self.portcullis.logged(&audited),
            "the audit event names {audited}:\n{}",
            self.portcullis.log()
        );
        let body = answer.body.to_string();
        let log = self.portcullis.log();
        for secret in std::iter::once(jwt).chain(claims.iter().copied()) {
            assert!(!body.contains(secret), "{secret} in the body: {body}");
        }
        assert!(!log.contains(jwt), "the JWT reached the log");
        assert!(
            !log.contains(jwt.split('.').nth(2).unwrap()),
            "the JWT's signature reached the log"
        );
    }
}
