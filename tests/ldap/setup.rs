//! What the directory login tests share: a `[[realms.default.ldap]]` entry for a slapd, a policy
//! that grants by directory group, a server started with both, and token requests over curl.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::database::Db;
use crate::common::external::run_with_stdin;
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
        curl(&[
            "-u",
            &format!("{user}:{password}"),
            &self.portcullis.token_url(query),
        ])
    }

    /// A POST token request of the default realm with this form.
    pub fn post(&self, form: &str) -> Answer {
        let url = format!(
            "{}/auth/realms/default/protocol/docker-v2/auth",
            self.portcullis.url()
        );
        curl(&["-d", form, &url])
    }

    /// The scopes granted to `user` for `scope`, or the status when refused.
    pub fn granted(&self, user: &str, password: &str, scope: &str) -> Result<String, u16> {
        let answer = self.token(user, password, &format!("&scope={scope}"));
        if answer.status != 200 {
            return Err(answer.status);
        }
        Ok(scopes(&answer.body))
    }
}

/// The granted scopes of a token response, as `resource:name:actions` joined by spaces.
pub fn scopes(body: &Value) -> String {
    let token = body["token"].as_str().expect("a token");
    let claims = crate::common::jwt::claims(token);
    claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let actions: Vec<&str> = a["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            format!(
                "{}:{}:{}",
                a["type"].as_str().unwrap(),
                a["name"].as_str().unwrap(),
                actions.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

/// Runs curl with `args` (the URL last); the answer's status, headers and JSON body.
fn curl(args: &[&str]) -> Answer {
    let mut all = vec!["-s", "-i", "--max-time", "60"];
    all.extend_from_slice(args);
    let output = run_with_stdin("curl", &all, "", &[]);
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    let (headers, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text}"));
    Answer {
        status,
        headers: headers.to_lowercase(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
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
