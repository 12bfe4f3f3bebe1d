//! A private munged per test (stopped on drop), the `munge`/`unmunge` tools
//! against it, and a forger that signs arbitrary credential bytes with the daemon's key.

pub mod forge;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis::munge::MungeKey;

/// A munged of our own, on a socket in a private directory, with a fresh key.
pub struct Munged {
    /// Holds key, socket, pid, log and seed files; removed after munged stops.
    _dir: tempfile::TempDir,
    socket: PathBuf,
    key_file: PathBuf,
}

impl Munged {
    /// Creates a key with `mungekey`, then starts munged with `extra_args`; munged forks and
    /// returns once its socket is ready.
    pub fn start(extra_args: &[&str]) -> Munged {
        let dir = tempfile::tempdir().expect("temporary directory");
        let key_file = dir.path().join("munge.key");
        run_ok(Command::new("mungekey").arg("-c").arg("-k").arg(&key_file));
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).expect("chmod key");
        let socket_dir = dir.path().join("socket");
        fs::create_dir(&socket_dir).expect("socket directory");
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o711))
            .expect("chmod socket dir");
        let socket = socket_dir.join("munge.socket");
        let file = |name: &str| dir.path().join(name);
        run_ok(
            Command::new("munged")
                .arg(format!("--key-file={}", key_file.display()))
                .arg("-S")
                .arg(&socket)
                .arg(format!("--pid-file={}", file("munged.pid").display()))
                .arg(format!("--log-file={}", file("munged.log").display()))
                .arg(format!("--seed-file={}", file("munged.seed").display()))
                .args(extra_args),
        );
        Munged {
            _dir: dir,
            socket,
            key_file,
        }
    }

    /// The key file munged signs with (mode 0600), for a server configured with this platform.
    pub fn key_path(&self) -> &std::path::Path {
        &self.key_file
    }

    /// The daemon's key as the decoder loads it.
    pub fn key(&self) -> MungeKey {
        MungeKey::from_file(self.key_path()).expect("munged's key file loads")
    }

    /// The daemon's key file bytes, for the forger.
    pub fn key_bytes(&self) -> Vec<u8> {
        fs::read(&self.key_file).expect("key file")
    }

    /// `munge -S SOCKET ARGS` with `payload` on stdin; the credential, or `Err(stderr)`.
    pub fn munge(&self, args: &[&str], payload: &[u8]) -> Result<String, String> {
        let output = pipe(
            Command::new("munge").arg("-S").arg(&self.socket).args(args),
            payload,
        );
        if output.status.success() {
            Ok(String::from_utf8(output.stdout).expect("credential is text"))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// `munge` that must succeed.
    pub fn encode(&self, args: &[&str], payload: &[u8]) -> String {
        self.munge(args, payload)
            .unwrap_or_else(|stderr| panic!("munge {args:?} failed: {stderr}"))
    }

    /// `unmunge -N` on `credential` (as stdin); its exit status, metadata and payload.
    pub fn unmunge(&self, credential: &[u8]) -> Unmunged {
        self.unmunge_as(None, credential)
    }

    /// `unmunge -N` run under `setpriv` as `uid`/`gid` (no supplementary groups) when given.
    pub fn unmunge_as(&self, ids: Option<(u32, u32)>, credential: &[u8]) -> Unmunged {
        let mut command = match ids {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("unmunge");
                command
            }
            None => Command::new("unmunge"),
        };
        command.arg("-N").arg("-S").arg(&self.socket);
        let output = pipe(&mut command, credential);
        Unmunged::parse(&output)
    }
}

impl Drop for Munged {
    fn drop(&mut self) {
        let stopped = Command::new("munged")
            .arg("--stop")
            .arg("-S")
            .arg(&self.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(stopped, Ok(status) if status.success()) {
            eprintln!("munged on {} did not stop cleanly", self.socket.display());
        }
    }
}

/// What `unmunge -N` said.
#[derive(Debug)]
pub struct Unmunged {
    /// Exit status: munged's error number.
    pub status: i32,
    /// `KEY: value` lines (numeric).
    pub meta: HashMap<String, String>,
    pub payload: Vec<u8>,
    pub stderr: String,
}

impl Unmunged {
    fn parse(output: &Output) -> Unmunged {
        let stdout = &output.stdout;
        let split = stdout.windows(2).position(|w| w == b"\n\n");
        let (head, payload) = match split {
            Some(at) => (&stdout[..at], stdout[at + 2..].to_vec()),
            None => (&stdout[..], Vec::new()),
        };
        let meta = String::from_utf8_lossy(head)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Unmunged {
            status: output.status.code().expect("unmunge exited"),
            meta,
            payload,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A numeric metadata field.
    pub fn number(&self, key: &str) -> u64 {
        self.meta
            .get(key)
            .unwrap_or_else(|| panic!("unmunge printed no {key}: {self:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number: {self:?}"))
    }
}

/// Seconds since the epoch, as munged stamps credentials.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn run_ok(command: &mut Command) {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn pipe(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // A tool that fails early closes its stdin; that is its answer, not ours to report.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("command finishes");
    writer.join().expect("stdin writer");
    output
}

/// A small deterministic PRNG (xorshift64*) for reproducible random inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
