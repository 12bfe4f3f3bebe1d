//! What the directory login tests share: a `[[realms.default.ldap]]` entry for a slapd, a policy
//! that grants by directory group, a server started with both, and token requests over curl.

use std::path::PathBuf;

use crate::common::curl::Answer;
use crate::common::database::Db;
use crate::common::jwt::granted_scopes;
use crate::common::portcullis::Portcullis;
use crate::common::slapd::Slapd;

/// A policy granting by directory group: `team/**` to corp's registry-admins, `dev/**` (pull) to
/// developers, `ci/**` to the posix group ci, and every account its own namespace.
pub const POLICY: &str = r#"
evaluation = "union"

[[rule]]
subject = "group:ldap:corp:registry-admins"
name = "team/**"
actions = ["*"]

[[rule]]
subject = "group:ldap:corp:developers"
name = "dev/**"
actions = ["pull"]

[[rule]]
subject = "group:ldap:corp:ci"
name = "ci/**"
actions = ["pull", "push"]

[[rule]]
subject = "authenticated"
name = "${account}/**"
actions = ["*"]
"#;

/// A directory entry named `name` for `slapd` over plain LDAP, searching as its service account
/// under `ou=people` and reading `memberOf`; `extra` lines are added to the entry.
pub fn directory(name: &str, slapd: &Slapd, extra: &str) -> String {
    format!(
        r#"
[[realms.default.ldap]]
name = "{name}"
url = "{url}"
bind_dn = "{service}"
bind_password_file = "{password_file}"
user_base = "{people}"
group_attribute = "memberOf"
{extra}
"#,
        url = slapd.ldap_url(),
        service = slapd.service_dn(),
        password_file = slapd.service_password_file().display(),
        people = slapd.people_dn(),
    )
}

/// A server on `db` whose default realm has the policy [`POLICY`] and these directory entries.
pub struct Server {
    pub portcullis: Portcullis,
    _policy: tempfile::TempDir,
}

impl Server {
    pub fn start(db: Db, directories: &str) -> Server {
        Server::start_with(db, directories, "")
    }

    /// With `settings` (other sections) before the realm's.
    pub fn start_with(db: Db, directories: &str, settings: &str) -> Server {
        let policy = tempfile::tempdir().unwrap();
        let policy_file: PathBuf = policy.path().join("policy.toml");
        std::fs::write(&policy_file, POLICY).unwrap();
        let config = format!(
            "{settings}\n[realms.default]\npolicy_file = \"{}\"\n{directories}",
            policy_file.display()
        );
        Server {
            portcullis: Portcullis::start_on(db, &config),
            _policy: policy,
        }
    }

    /// A GET token request of the default realm with `user:password` and `query` after the
    /// service.
    pub fn token(&self, user: &str, password: &str, query: &str) -> Answer {
        self.portcullis.basic_token(user, password, query)
    }

    /// A POST token request of the default realm with this form.
    pub fn post(&self, form: &str) -> Answer {
        self.portcullis.post_token(form)
    }

    /// The scopes granted to `user` for `scope`, or the status when refused.
    pub fn granted(&self, user: &str, password: &str, scope: &str) -> Result<String, u16> {
        let answer = self.token(user, password, &format!("&scope={scope}"));
        if answer.status != 200 {
            return Err(answer.status);
        }
        Ok(granted_scopes(&answer.body))
    }
}

/// The engines to run on: SQLite, and PostgreSQL when the test server's URL is set.
pub fn engines() -> Vec<Db> {
    let mut engines = vec![Db::Sqlite];
    if std::env::var(crate::common::database::POSTGRES_URL_ENV).is_ok() {
        engines.push(Db::Postgres);
    }
    engines
}
