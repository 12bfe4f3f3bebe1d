//! Drives real external programs for interoperability tests: Debian's `docker-registry` (and a
//! distribution 3.x `registry3` when one is on `PATH`), `containerd` and `ctr`, `skopeo`, `podman`,
//! plus a hand-built OCI image. Each server gets its own temp dir and loopback port
//! and is killed on drop. Install the programs with `scripts/install-deps.sh`; nothing here installs.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tempfile::TempDir;

/// How long a started server may take to accept connections before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// `index.json` annotation that names an image in an OCI layout (`oci:DIR:TAG`).
const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A loopback port that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Where `program` is on `PATH`, for the optional programs that no package provides.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A private temp dir whose name starts with `portcullis-<what>-`.
fn temp_dir(what: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("portcullis-{what}-"))
        .tempdir()
        .expect("create temp dir")
}

/// Spawns `command` with stdin closed and stdout and stderr both appended to `log`.
fn spawn_logged(command: &mut Command, log: &Path) -> Child {
    let out = File::create(log).expect("create log file");
    let err = out.try_clone().expect("clone log file handle");
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); run scripts/install-deps.sh"))
}

fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_else(|e| format!("<cannot read {}: {e}>", log.display()))
}

/// Polls `ready` until it holds; panics with the log if `child` exits first or time runs out.
/// Callers own `child` through a value whose `Drop` kills it, so a panic here cleans up too.
fn wait_until_ready(name: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready() {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll child") {
            panic!(
                "{name} exited ({status}) before it was ready; its log:\n{}",
                read_log(log)
            );
        }
        if Instant::now() >= deadline {
            panic!(
                "{name} not ready after {READY_TIMEOUT:?}; its log:\n{}",
                read_log(log)
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn stop(child: &mut Child) {
    // Already exited is fine; anything else has nowhere to go from a Drop.
    let _ = child.kill();
    let _ = child.wait();
}

/// The program that runs distribution 2.8 (Debian's package).
pub const REGISTRY_2: &str = "docker-registry";
/// The name under which a distribution 3.x `registry` binary is looked up on `PATH` (none is
/// packaged; build one from distribution's source and install it under this name).
pub const REGISTRY_3: &str = "registry3";

/// A registry (distribution 2.8 by default, or 3.x) on `127.0.0.1:port`, with filesystem storage
/// in a temp dir and deletes enabled. Killed, and its storage removed, on drop.
pub struct Registry {
    /// The loopback port it listens on.
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

/// Where a registry finds the keys that sign tokens (`auth.token.rootcertbundle` and `jwks`).
#[derive(Clone, Copy)]
pub struct TrustedKeys<'a> {
    /// PEM certificates: `x5c` chains must end in one; registry 2.8 also matches a `kid` against
    /// their keys' libtrust ids.
    pub rootcertbundle: Option<&'a Path>,
    /// A JWKS file (registry 3.x only): a `kid` must name one of its keys.
    pub jwks: Option<&'a Path>,
}

impl Registry {
    /// Starts a registry 2.8 that accepts only bearer tokens from the token service at
    /// `realm_url`: `service` and `issuer` must match the token's `aud` and `iss`, and
    /// `rootcertbundle` is a PEM file with the certificates whose keys sign the tokens.
    pub fn start(realm_url: &str, service: &str, issuer: &str, rootcertbundle: &Path) -> Registry {
        let keys = TrustedKeys {
            rootcertbundle: Some(rootcertbundle),
            jwks: None,
        };
        Self::start_program(REGISTRY_2, realm_url, service, issuer, keys)
    }

    /// Like [`Registry::start`], with the registry `program` (`serve CONFIG` style) and the keys
    /// it trusts given explicitly.
    pub fn start_program(
        program: &str,
        realm_url: &str,
        service: &str,
        issuer: &str,
        keys: TrustedKeys<'_>,
    ) -> Registry {
        let mut token = json!({ "realm": realm_url, "service": service, "issuer": issuer });
        if let Some(bundle) = keys.rootcertbundle {
            token["rootcertbundle"] = json!(bundle);
        }
        if let Some(jwks) = keys.jwks {
            token["jwks"] = json!(jwks);
        }
        Self::spawn(program, Some(json!({ "token": token })))
    }

    /// Starts a registry that lets every request through, for checking clients on their own.
    pub fn start_without_auth() -> Registry {
        Self::spawn(REGISTRY_2, None)
    }

    fn spawn(program: &str, auth: Option<Value>) -> Registry {
        let dir = temp_dir("registry");
        let port = free_port();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).expect("create registry storage dir");
        // YAML is a superset of JSON, so serde_json writes the config with correct quoting.
        let mut config = json!({
            "version": "0.1",
            "log": { "level": "info", "formatter": "text" },
            "storage": {
                "filesystem": { "rootdirectory": storage },
                "delete": { "enabled": true },
                "maintenance": { "uploadpurging": { "enabled": false } },
            },
            "http": {
                "addr": format!("127.0.0.1:{port}"),
                "secret": format!("portcullis-test-{}", nonce()),
            },
        });
        if let Some(auth) = auth {
            config["auth"] = auth;
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config.to_string()).expect("write registry config");
        let log = dir.path().join("registry.log");
        let child = spawn_logged(Command::new(program).arg("serve").arg(&config_path), &log);
        let mut registry = Registry {
            port,
            child,
            log,
            _dir: dir,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_until_ready(program, &mut registry.child, &registry.log, || {
            TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok()
        });
        registry
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, for talking to the registry API directly.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Everything the registry has logged so far (it logs each rejected token's reason).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A private `containerd` 1.6 (CRI plugin disabled) whose root, state and sockets all live in a temp
/// dir, so it never meets a system containerd. Killed, and its dir removed, on drop.
pub struct Containerd {
    /// Its gRPC socket, for `ctr --address`.
    pub socket: PathBuf,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Containerd {
    /// Starts containerd and waits until its socket accepts connections.
    pub fn start() -> Containerd {
        let dir = temp_dir("containerd");
        let root = dir.path().join("root");
        let state = dir.path().join("state");
        let socket = dir.path().join("containerd.sock");
        let toml_path = |p: &Path| Value::from(p.to_str().expect("UTF-8 temp path")).to_string();
        // A JSON string is a valid TOML basic string.
        let config = format!(
            r#"version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  address = {debug}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}
"#,
            root = toml_path(&root),
            state = toml_path(&state),
            socket = toml_path(&socket),
            ttrpc = toml_path(&dir.path().join("containerd.sock.ttrpc")),
            debug = toml_path(&dir.path().join("debug.sock")),
            opt = toml_path(&dir.path().join("opt")),
        );
        let config_path = dir.path().join("config.toml");
        fs::write(&config_path, config).expect("write containerd config");
        let log = dir.path().join("containerd.log");
        let child = spawn_logged(
            Command::new("containerd")
                .arg("--config")
                .arg(&config_path)
                .arg("--root")
                .arg(&root)
                .arg("--state")
                .arg(&state)
                .arg("--address")
                .arg(&socket),
            &log,
        );
        let mut containerd = Containerd {
            socket,
            child,
            log,
            _dir: dir,
        };
        let socket = containerd.socket.clone();
        wait_until_ready("containerd", &mut containerd.child, &containerd.log, || {
            UnixStream::connect(&socket).is_ok()
        });
        containerd
    }

    /// Runs `ctr --address SOCKET <args>` and returns its output; the caller asserts on it.
    /// Pulling from a plain-http registry needs `images pull --plain-http`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().expect("UTF-8 socket path");
        let mut all = vec!["--address", socket];
        all.extend_from_slice(args);
        run("ctr", &all)
    }

    /// Everything containerd has logged so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A value unique to this call in this machine's recent history (pid, time, counter).
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `cmd args` and panics unless it succeeds.
fn run_ok(cmd: &str, args: &[&str]) -> Output {
    let output = run(cmd, args);
    assert!(
        output.status.success(),
        "{cmd} {args:?} failed: {}",
        describe(&output)
    );
    output
}

fn sha256_hex(path: &Path) -> String {
    let output = run_ok("sha256sum", &[path.to_str().expect("UTF-8 path")]);
    let stdout = String::from_utf8(output.stdout).expect("sha256sum prints ASCII");
    stdout
        .split_whitespace()
        .next()
        .expect("sha256sum prints a digest")
        .to_owned()
}

/// Moves `file` into the layout's blob store; returns its descriptor fields (digest, size).
fn add_blob(layout: &Path, file: &Path) -> (String, u64) {
    let hex = sha256_hex(file);
    let size = fs::metadata(file).expect("stat blob").len();
    fs::copy(file, layout.join("blobs/sha256").join(&hex)).expect("store blob");
    (format!("sha256:{hex}"), size)
}

fn add_json_blob(layout: &Path, scratch: &Path, value: &Value) -> (String, u64) {
    let file = scratch.join("blob.json");
    fs::write(&file, serde_json::to_vec(value).expect("serialize JSON")).expect("write JSON blob");
    add_blob(layout, &file)
}

/// The OCI name of this machine's architecture, for the image config.
fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Builds by hand a tiny valid OCI image (one gzip tar layer holding `/hello.txt`, a config for this
/// machine's linux/arch, a manifest) in the OCI layout at `dir`, naming it `tag` in `index.json`.
/// Creates `dir` when absent and adds to a layout already there (replacing an image of the same tag).
/// Each call's file content includes a nonce, so every built image has different digests.
/// Returns the layout directory: push it with `skopeo copy oci:DIR:TAG docker://HOST/REPO:TAG`.
pub fn build_oci_image(dir: &Path, tag: &str) -> PathBuf {
    fs::create_dir_all(dir.join("blobs/sha256")).expect("create OCI blob dir");
    let scratch = temp_dir("oci-build");
    let rootfs = scratch.path().join("rootfs");
    fs::create_dir(&rootfs).expect("create rootfs dir");
    fs::write(
        rootfs.join("hello.txt"),
        format!("portcullis test image {tag} {}\n", nonce()),
    )
    .expect("write layer file");

    let tar = scratch.path().join("layer.tar");
    let utf8 = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    run_ok(
        "tar",
        &[
            "--create",
            "--file",
            &utf8(&tar),
            "--directory",
            &utf8(&rootfs),
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "hello.txt",
        ],
    );
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    // -n leaves name and time out of the gzip header.
    run_ok("gzip", &["-n", &utf8(&tar)]);
    let (layer_digest, layer_size) = add_blob(dir, &scratch.path().join("layer.tar.gz"));

    let config = json!({
        "architecture": oci_architecture(),
        "os": "linux",
        "config": { "Cmd": ["/bin/true"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "portcullis tests/common/external.rs" }],
    });
    let (config_digest, config_size) = add_json_blob(dir, scratch.path(), &config);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = add_json_blob(dir, scratch.path(), &manifest);

    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("parse existing index.json"),
        Err(_) => json!({ "schemaVersion": 2, "manifests": [] }),
    };
    let manifests = index["manifests"]
        .as_array_mut()
        .expect("index.json has manifests");
    manifests.retain(|m| m["annotations"][REF_NAME_ANNOTATION] != tag);
    manifests.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest_size,
        "annotations": { REF_NAME_ANNOTATION: tag },
    }));
    fs::write(
        &index_path,
        serde_json::to_vec(&index).expect("serialize index"),
    )
    .expect("write index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    dir.to_path_buf()
}

/// The manifest digest (`sha256:...`) that the OCI layout at `layout` names `tag`; it is the digest
/// the registry reports for the image after a push.
pub fn oci_manifest_digest(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("parse index.json");
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME_ANNOTATION] == tag)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no image tagged {tag} in {}", layout.display()))
        .to_owned()
}

/// Runs `cmd args` to completion and returns its output, whatever its exit status.
/// Panics only when the program cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    run_with_stdin(cmd, args, "", &[])
}

/// Runs `cmd args` with extra environment variables `envs`, feeding it `stdin`, and returns its
/// output, whatever its exit status. Panics only when the program cannot be started.
pub fn run_with_stdin(cmd: &str, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(cmd);
    command.args(args).envs(envs.iter().copied());
    output_with_stdin(&mut command, stdin)
}

fn output_with_stdin(command: &mut Command, stdin: &str) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); run scripts/install-deps.sh"));
    let mut pipe = child.stdin.take().expect("piped stdin");
    let input = stdin.to_owned();
    // A separate writer, so a child that prints before reading cannot deadlock us.
    let writer = thread::spawn(move || {
        // The child may exit without reading its input; that is its business.
        let _ = pipe.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for child");
    writer.join().expect("stdin writer thread");
    output
}

/// Runs `skopeo <args>` as root without reading or writing the machine's container configuration:
/// adds `--insecure-policy` (no `/etc/containers/policy.json` needed), a private `--tmpdir` and
/// `--registries.d`, an empty registries.conf, and a fresh, empty default auth file and `$HOME`.
/// Pass `--authfile`/`--creds` (or `--src-`/`--dest-` forms) for credentials that must persist
/// between calls, and `--tls-verify=false` (or `--src-`/`--dest-tls-verify=false`) for plain http.
/// One thing stays global: as root, containers/image keeps its blob-info cache in
/// `/var/lib/containers/cache`, which changes the scopes a later push asks for.
/// Returns the output, whatever the exit status; the caller asserts.
pub fn skopeo(args: &[&str]) -> Output {
    let private = containers_dir("skopeo", &["registries.d"]);
    let path = |name: &str| private.path().join(name);
    let mut command = Command::new("skopeo");
    command
        .arg("--insecure-policy")
        .arg("--tmpdir")
        .arg(path("tmp"))
        .arg("--registries.d")
        .arg(path("registries.d"))
        .args(args);
    containers_env(&mut command, private.path());
    output_with_stdin(&mut command, "")
}

/// A private directory for a containers/image tool (`what`): `tmp`, `home`, `run` and `more`
/// directories, and an empty `registries.conf` (no mirrors, no search registries).
fn containers_dir(what: &str, more: &[&str]) -> TempDir {
    let private = temp_dir(what);
    for dir in ["tmp", "home", "run"].iter().chain(more) {
        fs::create_dir(private.path().join(dir)).expect("create a private dir");
    }
    fs::write(private.path().join("registries.conf"), "").expect("write empty registries.conf");
    private
}

/// Points a containers/image tool at its [`containers_dir`] alone: its registries.conf, its login
/// file, home and runtime directories, nothing of the user's.
fn containers_env(command: &mut Command, private: &Path) {
    let path = |name: &str| private.join(name);
    command
        .env("CONTAINERS_REGISTRIES_CONF", path("registries.conf"))
        .env("REGISTRY_AUTH_FILE", path("auth.json"))
        .env("TMPDIR", path("tmp"))
        .env("HOME", path("home"))
        .env("XDG_RUNTIME_DIR", path("run"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG");
}

/// A podman with its own image store (the `vfs` driver, which needs no kernel support), its own
/// login file and no registry configuration, kept between calls: what `podman login` stores, the
/// next `podman pull` uses.
pub struct Podman {
    private: TempDir,
}

impl Podman {
    /// A podman with a fresh image store and login file.
    pub fn private() -> Podman {
        Podman {
            private: containers_dir("podman", &["root", "runroot"]),
        }
    }

    /// Runs `podman args` feeding it `stdin`; its output, whatever its exit status.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let path = |name: &str| self.private.path().join(name);
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(path("root"))
            .arg("--runroot")
            .arg(path("runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        containers_env(&mut command, self.private.path());
        output_with_stdin(&mut command, stdin)
    }

    /// What `podman login` stored.
    pub fn auth_file(&self) -> Value {
        let text = fs::read(self.private.path().join("auth.json")).expect("read podman auth.json");
        serde_json::from_slice(&text).expect("parse podman auth.json")
    }
}

/// Exit status, stdout and stderr of `output`, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Debian's chromedriver on a loopback port, driving Debian's chromium headless. Killed on drop.
pub struct Chromedriver {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl Chromedriver {
    pub fn start() -> Chromedriver {
        let dir = temp_dir("chromedriver");
        let port = free_port();
        let log = dir.path().join("chromedriver.log");
        let child = spawn_logged(
            Command::new("chromedriver").arg(format!("--port={port}")),
            &log,
        );
        let mut driver = Chromedriver {
            port,
            child,
            _dir: dir,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_until_ready("chromedriver", &mut driver.child, &log, || {
            TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok()
        });
        driver
    }

    /// The WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
