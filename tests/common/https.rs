//! A real HTTPS server for the tests that fetch over TLS: Python 3's `http.server` wrapped by its
//! `ssl` module (a short script written into the server's temporary directory and run with
//! `python3`), serving the files of a directory, killed on drop.
//!
//! # Listener
//! `https://127.0.0.1:PORT` only, the port chosen by the script (bound to port 0 and printed once
//! listening, so no other process can take it in between). The certificate is the one
//! `tls::write_certificates` makes: it names `IP:127.0.0.1` and `DNS:localhost` and is signed by
//! [`HttpsServer::ca_file`]; [`HttpsServer::other_ca_file`] is a CA that signed nothing here.
//!
//! # Content
//! Empty at start: [`HttpsServer::put`] writes a file under the served root, which is read at each
//! request, so a test may start the server first and then write documents naming its URL. Any
//! other path answers 404; every file is sent as it is, with a content type guessed from its name.
//!
//! # Log
//! One line per request on stderr (`"GET /jwks.json HTTP/1.1" 200 -`), and a traceback naming the
//! TLS alert when a client aborts the handshake (the handshake runs in the request's own thread,
//! so a stuck client never blocks the others). [`HttpsServer::log`] reads it.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::tls;

/// How long `python3` may take to print its port.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The server: `python3 server.py ROOT CERTIFICATE KEY`, printing its port once listening.
const SCRIPT: &str = r#"import http.server
import ssl
import sys

root, certificate, key = sys.argv[1:4]


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)

    def setup(self):
        self.request.settimeout(10)
        self.request.do_handshake()
        super().setup()


context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(certificate, key)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.socket = context.wrap_socket(
    server.socket, server_side=True, do_handshake_on_connect=False
)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running HTTPS server at `https://127.0.0.1:PORT`, stopped on drop.
pub struct HttpsServer {
    pub port: u16,
    /// The script, the certificates, the served `root/` and `stderr.log`.
    dir: TempDir,
    child: Child,
}

impl HttpsServer {
    /// Makes the certificates and starts the server with an empty root.
    pub fn start() -> HttpsServer {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-https-")
            .tempdir()
            .unwrap();
        tls::write_certificates(dir.path());
        let script = dir.path().join("server.py");
        fs::write(&script, SCRIPT).expect("write server.py");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("create the served root");
        let log = File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&root)
            .arg(dir.path().join(tls::SERVER_CERTIFICATE))
            .arg(dir.path().join(tls::SERVER_KEY))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = port_tx.send(line);
        });
        let mut server = HttpsServer {
            port: 0,
            dir,
            child,
        };
        let line = port_rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
        server.port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the HTTPS server did not print its port within {READY_TIMEOUT:?}: {:?}\n{}",
                line,
                server.log()
            )
        });
        server
    }

    /// `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The test CA (PEM) that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(tls::CA)
    }

    /// A CA (PEM) that signed nothing this server presents: trusting only it must fail.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join(tls::OTHER_CA)
    }

    /// Serves `contents` at `/<path>` (`path` relative, e.g. `.well-known/openid-configuration`).
    pub fn put(&self, path: &str, contents: &str) {
        let file = self.dir.path().join("root").join(path);
        fs::create_dir_all(file.parent().unwrap()).expect("create the file's directory");
        fs::write(&file, contents).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }

    /// What the server wrote to stderr so far: requests, and handshakes clients aborted.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log"))
            .unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
