//! Runs the real `portcullis` binary: `serve` as a child process on a free loopback port, and the
//! operator commands against the same database and key directory, configured through the environment.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::database::{create_postgres_database, Db};
use super::external::{describe, free_port, run_with_stdin};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
/// How long the server may take to answer its health check after it is started (tests run beside
/// one another on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The database of a server on SQLite, relative to its directory.
const SQLITE_FILE: &str = "data/portcullis.db";
/// How long a test waits for a line to reach the log: the server writes its log in batches, at least
/// every 100 ms.
const LOG_WAIT: Duration = Duration::from_secs(3);

/// A running `portcullis serve` with its own database and keys in a temp dir.
pub struct Portcullis {
    pub dir: TempDir,
    pub port: u16,
    /// The environment of the server, which operator commands share.
    env: Vec<(String, String)>,
    child: Child,
}

/// The registry's `auth.token` settings, as `portcullis registry-config` prints them.
pub struct RegistryConfig {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub rootcertbundle: PathBuf,
}

impl Portcullis {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Portcullis {
        Portcullis::start_with_config("")
    }

    /// Starts the server with a configuration file of this text (besides the environment).
    pub fn start_with_config(config: &str) -> Portcullis {
        Portcullis::start_in_shell(config, "")
    }

    /// Starts the server with this configuration after the shell commands `setup` (`ulimit -n 64`).
    pub fn start_in_shell(config: &str, setup: &str) -> Portcullis {
        Portcullis::launch(Db::Sqlite, config, setup)
    }

    /// Starts the server on a database of this engine (on PostgreSQL, a new database in the test
    /// server), with a configuration file of this text.
    pub fn start_on(db: Db, config: &str) -> Portcullis {
        Portcullis::launch(db, config, "")
    }

    fn launch(db: Db, config: &str, setup: &str) -> Portcullis {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-server-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let config_file = dir.path().join("portcullis.toml");
        std::fs::write(&config_file, config).unwrap();
        let mut env = env(dir.path(), port);
        if let Db::Postgres = db {
            let url = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(create_postgres_database("portcullis_server"));
            for (key, value) in &mut env {
                if key == DATABASE_URL_ENV {
                    value.clone_from(&url);
                }
            }
        }
        env.push((
            "PORTCULLIS_CONFIG".into(),
            config_file.display().to_string(),
        ));
        Portcullis::spawn(dir, port, env, setup)
    }

    /// A second server beside this one, as instances of one deployment run: the same database,
    /// key directory and configuration; its own port and directory for its logs.
    pub fn start_beside(&self) -> Portcullis {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-server-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut env = self.env.clone();
        for (key, value) in &mut env {
            if key == LISTEN_ENV {
                *value = format!("127.0.0.1:{port}");
            }
        }
        Portcullis::spawn(dir, port, env, "")
    }

    /// Runs `portcullis serve` in `dir` with `env` after the shell commands `setup`, and waits
    /// until it answers.
    fn spawn(dir: TempDir, port: u16, env: Vec<(String, String)>, setup: &str) -> Portcullis {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("{setup}\nexec \"$0\" serve"), BIN])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        let child = command.spawn().expect("run portcullis serve");
        let mut server = Portcullis {
            dir,
            port,
            env,
            child,
        };
        let started = Instant::now();
        while !healthy(port) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("portcullis serve exited with {status}:\n{}", server.log());
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "portcullis did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the server ended, if it did.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The server's database file, when it runs on SQLite.
    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join(SQLITE_FILE)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server printed so far (stdout, then stderr).
    pub fn log(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// Whether the log shows `needle`, waiting for the server's next batched write if it does not yet.
    pub fn logged(&self, needle: &str) -> bool {
        let started = Instant::now();
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if started.elapsed() > LOG_WAIT {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs an operator command against this server's database and keys.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_with_stdin(BIN, args, stdin, &env)
    }

    /// Like [`Portcullis::cli`], but panics unless it succeeds.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        succeeded(args, self.cli(args, stdin))
    }

    /// The default realm's token endpoint, with this query after `service=registry`.
    pub fn token_url(&self, query: &str) -> String {
        format!(
            "{}/auth/realms/default/protocol/docker-v2/auth?service=registry{query}",
            self.url()
        )
    }

    /// The HTTP status of a token request of the default realm with `user:password`.
    pub fn token_status(&self, user: &str, password: &str) -> String {
        http_status(&self.token_url(""), &["-u", &format!("{user}:{password}")])
    }

    /// Adds a user with a password (read from standard input, as an operator would).
    pub fn add_user(&self, name: &str, password: &str, admin: bool) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        self.cli_ok(&args, &format!("{password}\n"));
    }

    /// Creates an access token for `user` with `portcullis token create`; its secret.
    pub fn create_access_token(&self, user: &str, name: &str) -> String {
        let secret = self
            .cli_ok(&["token", "create", "--user", user, "--name", name], "")
            .trim()
            .to_owned();
        assert!(secret.starts_with("pcat_"), "{secret}");
        secret
    }

    /// Parses `portcullis registry-config` of the default realm.
    pub fn registry_config(&self) -> RegistryConfig {
        self.registry_config_of("default")
    }

    /// Parses `portcullis registry-config --realm REALM`.
    pub fn registry_config_of(&self, realm: &str) -> RegistryConfig {
        let text = self.cli_ok(&["registry-config", "--realm", realm], "");
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
                .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
                .to_owned()
        };
        RegistryConfig {
            realm: field("realm"),
            service: field("service"),
            issuer: field("issuer"),
            rootcertbundle: field("rootcertbundle").into(),
        }
    }
}

/// True when `GET /healthz` answers 200 (an open port alone may still be starting up).
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut response = String::new();
    stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.split(' ').nth(1) == Some("200")
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment variable of the listen address.
const LISTEN_ENV: &str = "PORTCULLIS__SERVER__LISTEN";
/// The environment variable of the database URL.
const DATABASE_URL_ENV: &str = "PORTCULLIS__DATABASE__URL";

/// The environment that points a `portcullis` process at `dir` and `port`, with argon2 parameters
/// kept small so debug builds stay quick.
pub fn env(dir: &Path, port: u16) -> Vec<(String, String)> {
    vec![
        (LISTEN_ENV.into(), format!("127.0.0.1:{port}")),
        (
            DATABASE_URL_ENV.into(),
            format!("sqlite://{}", dir.join(SQLITE_FILE).display()),
        ),
        (
            "PORTCULLIS__KEYS__DIR".into(),
            dir.join("keys").display().to_string(),
        ),
        (
            "PORTCULLIS__PASSWORDS__ARGON2_MEMORY_KIB".into(),
            "1024".into(),
        ),
        (
            "PORTCULLIS__PASSWORDS__ARGON2_ITERATIONS".into(),
            "1".into(),
        ),
        // Tests run beside one another on a loaded machine, where a PostgreSQL connection can take
        // more than the default second to come; the outage tests measure that bound themselves.
        (
            "PORTCULLIS__DATABASE__ACQUIRE_TIMEOUT_MS".into(),
            "10000".into(),
        ),
    ]
}

/// The standard output of a `portcullis <args>` that must have succeeded.
pub fn succeeded(args: &[&str], output: Output) -> String {
    assert!(
        output.status.success(),
        "portcullis {args:?}: {}",
        describe(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The status `curl` gets for `GET url` with these extra arguments (headers, credentials).
pub fn http_status(url: &str, curl_args: &[&str]) -> String {
    let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
    args.extend_from_slice(curl_args);
    args.push(url);
    let out = run_with_stdin("curl", &args, "", &[]);
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `portcullis <args>` configured for `dir` and `port`.
pub fn cli_in(dir: &Path, port: u16, args: &[&str], stdin: &str) -> Output {
    let env = env(dir, port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_with_stdin(BIN, args, stdin, &env)
}
