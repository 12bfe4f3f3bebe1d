//! The real `portcullis serve` beside other processes that write its database: operator commands
//! run many times while the server is under token load (on SQLite, the server once died of SIGBUS
//! after 7–16 of them), and another process holding SQLite's write lock for seconds while requests
//! that need no write keep their latency (a request worker once slept waiting for that lock).

pub mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use common::database::Db;
use common::external::describe;
use common::munged::Munged;
use common::portcullis::Portcullis;

/// How long any one request may take before the test counts it as unanswered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// The token endpoint of the default realm, with a scope alice may pull.
const TOKEN_PATH: &str =
    "/auth/realms/default/protocol/docker-v2/auth?service=registry&scope=repository:alice/app:pull";
const ALICE_PASSWORD: &str = "alice-Pa55word";
/// The MUNGE platform of the lock test.
const PLATFORM: &str = "perlmutter";

/// `GET path` on a connection of its own, with an `Authorization` or `Authentication` header;
/// the status and how long the answer took (`Retry-After` is checked by the caller through
/// [`get_with_headers`]).
fn get(port: u16, path: &str, header: Option<(&str, &str)>) -> std::io::Result<(u16, Duration)> {
    get_with_headers(port, path, header).map(|(status, elapsed, _)| (status, elapsed))
}

fn get_with_headers(
    port: u16,
    path: &str,
    header: Option<(&str, &str)>,
) -> std::io::Result<(u16, Duration, String)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let header = header.map_or(String::new(), |(name, value)| {
        format!("{name}: {value}\r\n")
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{header}\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {response:?}")))?;
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((status, started.elapsed(), head))
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// The credentials of the load: anonymous, alice's password, alice's access token.
fn credentials(token: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("anonymous", None),
        ("password", Some(basic("alice", ALICE_PASSWORD))),
        ("access token", Some(basic("alice", token))),
    ]
}

/// Token requests from a few threads, each a 200 or a failure, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<std::thread::JoinHandle<()>>,
    answered: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Load {
    fn start(port: u16, token: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..threads)
            .map(|thread| {
                let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
                let credentials = credentials(token);
                std::thread::spawn(move || {
                    let mut n = thread;
                    while !stop.load(Ordering::Relaxed) {
                        let (kind, authorization) = &credentials[n % credentials.len()];
                        n += 1;
                        let header = authorization
                            .as_deref()
                            .map(|value| ("Authorization", value));
                        match get(port, TOKEN_PATH, header) {
                            Ok((200, _)) => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.lock().unwrap().push(format!("{kind}: {other:?}")),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            clients,
            answered,
            failures,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Stops the clients; the failures.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        std::mem::take(&mut *self.failures.lock().unwrap())
    }
}

/// Adds alice with a password and an access token; the token's secret.
fn alice(server: &Portcullis) -> String {
    server.cli_ok(
        &["user", "add", "alice", "--password-stdin"],
        &format!("{ALICE_PASSWORD}\n"),
    );
    server.create_access_token("alice", "load")
}

/// Rounds of operator commands (six commands each) run beside the load: the old build died after
/// 7–16 commands on SQLite.
const COMMAND_ROUNDS: usize = 8;

/// Whether another process holds a POSIX lock on some byte of `file` (`F_GETLK`, which takes
/// none itself).
fn locked_by_another_process(file: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(file).unwrap();
    // SAFETY: flock is plain data; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid descriptor and a valid flock.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    assert_eq!(result, 0, "{}", std::io::Error::last_os_error());
    i32::from(lock.l_type) != libc::F_UNLCK
}

/// SQLite's sign to other processes that its shared memory (`<db>-shm`) is in use is a lock on it;
/// a process that finds none re-initialises the file, and a server still mapping it dies of SIGBUS.
fn assert_server_holds_shared_memory_locks(server: &Portcullis, when: &str) {
    let mut shm = server.database_path().into_os_string();
    shm.push("-shm");
    assert!(
        locked_by_another_process(std::path::Path::new(&shm)),
        "{when}: no process holds a lock on {shm:?}: the next process to open the database will \
         re-initialise it under the server"
    );
}

fn operator_commands_beside_a_loaded_server(engine: Db) {
    let mut server = Portcullis::start_on(engine, "");
    let token = alice(&server);
    if let Db::Sqlite = engine {
        assert_server_holds_shared_memory_locks(&server, "after start");
    }
    let load = Load::start(server.port, &token, 4);
    let started = Instant::now();
    for round in 0..COMMAND_ROUNDS {
        let (user, group) = (format!("user{round}"), format!("group{round}"));
        let uid = (2_000 + round).to_string();
        let pattern = format!("{group}/**");
        let commands: [(&[&str], &str); 6] = [
            (&["user", "add", &user, "--password-stdin"], "Pa55-word\n"),
            (&["group", "add", &group], ""),
            (&["group", "member", "add", &group, &user], ""),
            (
                &[
                    "grant",
                    "add",
                    "--subject",
                    &format!("group:{group}"),
                    "--name",
                    &pattern,
                    "--actions",
                    "pull,push",
                ],
                "",
            ),
            (&["token", "create", "--user", &user, "--name", "ci"], ""),
            (
                &[
                    "munge",
                    "map",
                    "--platform",
                    PLATFORM,
                    "--uid",
                    &uid,
                    "--user",
                    &user,
                ],
                "",
            ),
        ];
        for (args, stdin) in commands {
            let output = server.cli(args, stdin);
            assert!(
                output.status.success(),
                "{engine:?}: portcullis {args:?} (round {round}): {}",
                describe(&output)
            );
            if let Some(status) = server.exited() {
                panic!(
                    "{engine:?}: the server exited ({status}) after portcullis {args:?} (round {round}):\n{}",
                    server.log()
                );
            }
        }
    }
    let commands_took = started.elapsed();
    // Requests answered after the last command too.
    let before = load.answered();
    let settle = Instant::now();
    while load.answered() < before + 30 && settle.elapsed() < ANSWER_TIMEOUT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let answered = load.answered();
    let failures = load.stop();
    assert!(
        server.exited().is_none(),
        "{engine:?}: the server exited:\n{}",
        server.log()
    );
    assert!(
        failures.is_empty(),
        "{engine:?}: {} requests failed, first: {:?}\n{}",
        failures.len(),
        failures.first(),
        server.log()
    );
    assert!(
        answered >= 100,
        "{engine:?}: only {answered} requests answered in {commands_took:?}"
    );
    if let Db::Sqlite = engine {
        assert_server_holds_shared_memory_locks(&server, "after the commands");
    }
    // What the commands wrote is in effect: the last user added can log in.
    let authorization = basic(&format!("user{}", COMMAND_ROUNDS - 1), "Pa55-word");
    let (status, _) = get(
        server.port,
        TOKEN_PATH,
        Some(("Authorization", &authorization)),
    )
    .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn operator_commands_beside_a_loaded_server_on_sqlite() {
    operator_commands_beside_a_loaded_server(Db::Sqlite);
}

#[test]
fn operator_commands_beside_a_loaded_server_on_postgres() {
    operator_commands_beside_a_loaded_server(Db::Postgres);
}

/// How long a MUNGE request waits for another process's write lock before it gets 503 (the
/// server's `BUSY_TIMEOUT_MS`).
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The longest a request that needs no write may take while the lock is held: a blocked worker
/// would hold it for seconds.
const NO_WRITE_LATENCY: Duration = Duration::from_secs(1);

/// A python3 process holding SQLite's write lock (`BEGIN IMMEDIATE`) on `database` for `hold`;
/// returns once the lock is taken.
fn hold_write_lock(database: &std::path::Path, hold: Duration) -> Child {
    let script = format!(
        "import sqlite3, sys, time\n\
         db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         db.execute('BEGIN IMMEDIATE')\n\
         print('locked', flush=True)\n\
         time.sleep({})\n\
         db.execute('ROLLBACK')\n",
        hold.as_secs_f64()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .arg(database)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

/// A MUNGE request's answer: status, how long it took, the response head.
type Answer = (u16, Duration, String);

/// A server on one request worker, warmed with every credential, while another process holds the
/// write lock for `hold`: requests that need no write are each answered 200 within
/// [`NO_WRITE_LATENCY`] while a MUNGE request (which must write) waits; after the lock, MUNGE is
/// quick again. The answer to the MUNGE request sent as the lock was taken.
fn munge_during_a_write_lock(hold: Duration) -> Answer {
    let munged = Munged::start(&[]);
    let config = format!(
        "[server]\nworkers = 1\n\n\
         [realms.default.munge]\nlocations = [\"registry.example.org\"]\ndefault_location = true\n\n\
         [[realms.default.munge.platforms]]\nname = \"{PLATFORM}\"\nkey_file = \"{}\"\n",
        munged.key_path().display()
    );
    let server = Portcullis::start_on(Db::Sqlite, &config);
    let token = alice(&server);
    let own_uid = std::fs::metadata("/proc/self").unwrap().uid().to_string();
    server.cli_ok(
        &[
            "munge",
            "map",
            "--platform",
            PLATFORM,
            "--uid",
            &own_uid,
            "--user",
            "alice",
        ],
        "",
    );
    let munge = |port| {
        let credential = munged.encode(&[], b"").trim().to_owned();
        get_with_headers(port, TOKEN_PATH, Some(("Authentication", &credential))).unwrap()
    };
    // Warm: every credential once (caches filled, the access token's last use recorded, the
    // expired MUNGE records purged), so that during the lock only MUNGE must write.
    for (kind, authorization) in credentials(&token) {
        let header = authorization
            .as_deref()
            .map(|value| ("Authorization", value));
        assert_eq!(
            get(server.port, TOKEN_PATH, header).unwrap().0,
            200,
            "{kind}"
        );
    }
    assert_eq!(munge(server.port).0, 200);

    let mut holder = hold_write_lock(&server.database_path(), hold);
    let locked = Instant::now();
    let port = server.port;
    let credential = munged.encode(&[], b"").trim().to_owned();
    let during_lock = std::thread::spawn(move || {
        get_with_headers(port, TOKEN_PATH, Some(("Authentication", &credential))).unwrap()
    });
    let mut answered_while_munge_waited = 0;
    for (kind, authorization) in credentials(&token).iter().cycle() {
        if locked.elapsed() > hold - Duration::from_millis(500) {
            break;
        }
        let header = authorization
            .as_deref()
            .map(|value| ("Authorization", value));
        let (status, took) = get(server.port, TOKEN_PATH, header).unwrap();
        assert_eq!(status, 200, "{kind} during the lock");
        assert!(
            took < NO_WRITE_LATENCY,
            "{kind} took {took:?} during the lock"
        );
        if !during_lock.is_finished() {
            answered_while_munge_waited += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = during_lock.join().unwrap();
    assert!(holder.wait().unwrap().success());
    assert!(
        answered_while_munge_waited >= 10,
        "only {answered_while_munge_waited} requests answered while the MUNGE request waited"
    );
    let (status, took, _) = munge(server.port);
    assert_eq!(status, 200, "MUNGE after the lock");
    assert!(
        took < NO_WRITE_LATENCY,
        "MUNGE after the lock took {took:?}"
    );
    answer
}

#[test]
fn requests_that_need_no_write_keep_their_latency_while_another_process_holds_the_write_lock() {
    let hold = LOCK_WAIT - Duration::from_secs(1);
    let (status, took, head) = munge_during_a_write_lock(hold);
    assert_eq!(status, 200, "MUNGE recorded once the lock was free: {head}");
    assert!(took >= hold / 2, "answered in {took:?}, during the lock");
}

#[test]
fn a_request_that_must_write_gets_503_with_retry_after_when_the_lock_outlasts_its_wait() {
    let hold = LOCK_WAIT + Duration::from_secs(2);
    let (status, took, head) = munge_during_a_write_lock(hold);
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: 1"),
        "{head}"
    );
    assert!(took < hold, "answered only after the lock ({took:?})");
}
