//! Issuers of external JWTs for the workload-identity tests: a real OpenID provider
//! (`oidc-provider` from npm, run by Node from `tests/common/oidc/provider.mjs`, installed into
//! `tests/common/oidc/node_modules` by `scripts/install-deps.sh`) with discovery, RSA keys that
//! rotate on restart and tokens with chosen claims; and a [`LocalIssuer`] whose ES256 tokens the
//! tests sign themselves, with its public key in a JWKS file (a Kubernetes cluster without public
//! discovery).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::external::{describe, free_port, run_with_stdin};

/// How long the provider may take to print "ready" (Node starts in about a second; tests run beside
/// one another on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The provider's directory: `provider.mjs`, `package.json` and `node_modules`.
fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/oidc")
}

/// A running oidc-provider at `http://127.0.0.1:PORT`, stopped on drop.
pub struct Provider {
    pub port: u16,
    /// The RSA keys, one file per key id, kept across restarts.
    keys: TempDir,
    /// The console client's settings (`CONSOLE_REDIRECT_URI`, `CONSOLE_ACCOUNTS`), when it has one.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Provider {
    /// Starts the provider on a free port, publishing keys `kids` (the first signs).
    pub fn start(kids: &[&str]) -> Provider {
        Provider::start_with(free_port(), kids, Vec::new())
    }

    /// Starts the provider on `port` as a company IdP too: a client `console` (secret
    /// `console-secret`) that sends people back to `redirect_uri`, development login and consent
    /// pages where any password signs in, and accounts with the extra claims `accounts` gives
    /// (login → claims).
    pub fn start_for_console(port: u16, redirect_uri: &str, accounts: &Value) -> Provider {
        Provider::start_with(
            port,
            &["k1"],
            vec![
                ("CONSOLE_REDIRECT_URI".into(), redirect_uri.into()),
                ("CONSOLE_ACCOUNTS".into(), accounts.to_string()),
            ],
        )
    }

    fn start_with(port: u16, kids: &[&str], env: Vec<(String, String)>) -> Provider {
        let mut provider = Provider {
            port,
            env,
            keys: tempfile::Builder::new()
                .prefix("portcullis-oidc-keys-")
                .tempdir()
                .unwrap(),
            child: None,
        };
        provider.launch(kids);
        provider
    }

    /// Stops the provider and starts it again on the same port with keys `kids`: a key rotation.
    pub fn restart(&mut self, kids: &[&str]) {
        self.stop();
        self.launch(kids);
    }

    /// Stops the provider; its issuer is then unreachable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn launch(&mut self, kids: &[&str]) {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run scripts/install-deps.sh"
        );
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(self.port.to_string())
            .arg(self.keys.path())
            .arg(kids.join(","))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (install Node.js 20 or later)");
        let stdout = child.stdout.take().unwrap();
        let (ready, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready.send(());
                }
            }
        });
        let started = Instant::now();
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            let _ = child.kill();
            panic!(
                "oidc-provider did not get ready within {:?}",
                started.elapsed()
            );
        }
        self.child = Some(child);
    }

    /// The issuer, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A JWT access token (RS256, `typ: at+jwt`, `sub` the client id `ci`) for `audience`, living
    /// `ttl_secs`, with `claims` added.
    pub fn token(&self, audience: &str, ttl_secs: u64, claims: &Value) -> String {
        let url = format!("{}/token", self.issuer());
        let output = run_with_stdin(
            "curl",
            &[
                "-sS",
                "--fail-with-body",
                "-d",
                "grant_type=client_credentials",
                "-d",
                "client_id=ci",
                "-d",
                "client_secret=ci-secret",
                "-d",
                "scope=push",
                "-H",
                &format!("x-test-audience: {audience}"),
                "-H",
                &format!("x-test-ttl: {ttl_secs}"),
                "-H",
                &format!("x-test-claims: {claims}"),
                &url,
            ],
            "",
            &[],
        );
        assert!(
            output.status.success(),
            "token request: {}",
            describe(&output)
        );
        let body: Value = serde_json::from_slice(&output.stdout).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An issuer whose tokens the test signs with an ES256 key it generated, the public key in a JWKS
/// file.
pub struct LocalIssuer {
    pub issuer: String,
    pub kid: String,
    key: EncodingKey,
    dir: TempDir,
}

impl LocalIssuer {
    /// A new key for `issuer`, its JWKS written to [`LocalIssuer::jwks_file`].
    pub fn new(issuer: &str) -> LocalIssuer {
        let (key, jwk) = es256_key("sa-key-1");
        let dir = tempfile::Builder::new()
            .prefix("portcullis-jwks-")
            .tempdir()
            .unwrap();
        std::fs::write(
            dir.path().join("jwks.json"),
            json!({ "keys": [jwk] }).to_string(),
        )
        .unwrap();
        LocalIssuer {
            issuer: issuer.to_owned(),
            kid: "sa-key-1".into(),
            key,
            dir,
        }
    }

    /// The JWKS file.
    pub fn jwks_file(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// `claims` signed ES256 with this issuer's key and kid.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// The claims of a Kubernetes service-account token of `namespace`/`account` for `audiences`,
    /// issued now and living an hour.
    pub fn kubernetes_claims(&self, namespace: &str, account: &str, audiences: &[&str]) -> Value {
        let now = now();
        json!({
            "iss": self.issuer,
            "aud": audiences,
            "sub": format!("system:serviceaccount:{namespace}:{account}"),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": account, "uid": "5f6c1e0a-1111-4d4d-9999-000000000001"},
                "pod": {"name": format!("{account}-7d9f"), "uid": "5f6c1e0a-2222-4d4d-9999-000000000002"},
            },
        })
    }
}

/// A fresh ES256 signing key and its public JWK (with `kid` and `alg`).
pub fn es256_key(kid: &str) -> (EncodingKey, Value) {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let key = EncodingKey::from_ec_der(der.as_bytes());
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    (key, jwk)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
