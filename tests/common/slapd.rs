//! A private OpenLDAP `slapd` per test, killed on drop: a generated `slapd.conf`, a test CA and a
//! server certificate (`tls.rs`), a fixed directory tree loaded with `slapadd`, and its `-d stats`
//! log to read back. It does not configure Portcullis, and installs nothing
//! (`scripts/install-deps.sh` does).
//!
//! # Listeners
//! `ldap://127.0.0.1:P` (plain, StartTLS offered) and `ldaps://127.0.0.1:P2`, two free loopback
//! ports chosen at start and kept by [`Slapd::start_again`]. Only 127.0.0.1 listens: a client given
//! `localhost` may try `::1` first and fail. The server certificate names `IP:127.0.0.1` and
//! `DNS:localhost` and is signed by [`Slapd::ca_file`]; [`Slapd::other_ca_file`] is a CA that
//! signed nothing here, for the refused-certificate case.
//!
//! # The tree ([`Tree::Example`], suffix `dc=example,dc=org`)
//! ```text
//! dc=example,dc=org
//! ├─ ou=people        inetOrgPerson, DN uid=<uid>,ou=people,dc=example,dc=org, plain userPassword
//! │   alice        alice-pw        memberOf: cn=registry-admins
//! │   bob          bob-pw          memberOf: cn=developers
//! │   carol        carol-pw        memberOf: cn=frontend
//! │   dave         dave-pw         (no memberOf; memberUid of the posixGroup ci)
//! │   admin        admin-pw        (no groups: a user literally named "admin")
//! │   star*user    star-pw         (no groups: "*" must be escaped as \2a in a filter)
//! │   paren(user)  paren-pw        (no groups: "(" ")" must be escaped as \28 \29)
//! ├─ ou=groups
//! │   cn=registry-admins  groupOfNames  member: alice
//! │   cn=developers       groupOfNames  member: bob, cn=frontend,ou=groups,… (a nested group)
//! │   cn=frontend         groupOfNames  member: carol; itself memberOf: cn=developers
//! │   cn=ci               posixGroup    gidNumber 5001, memberUid: dave
//! └─ ou=services
//!     cn=portcullis       the service account, password [`Tree::service_password`]
//!                         (`portcullis-service-pw`)
//! ```
//! `memberOf` values are written into the LDIF (slapadd bypasses overlays) and list DIRECT
//! groupOfNames memberships only, as OpenLDAP's memberof overlay would: carol's entry does not
//! name `developers`; a nested lookup must follow `frontend`'s own `memberOf` or `member`. The
//! overlay is loaded, so membership changed at run time through [`Slapd::modify_as_root`] keeps
//! `memberOf` in step. `memberOf` is an OPERATIONAL attribute in OpenLDAP: a search returns it only
//! when asked for by name (not for `*`).
//!
//! [`Tree::Second`] (suffix `dc=second,dc=org`, same `ou`s) is an independent directory to run
//! beside the first: `alice` (password `alice-second-pw`, a different one), `erin` (`erin-pw`),
//! the groupOfNames `cn=second-admins` (member erin), and `cn=portcullis,ou=services` with
//! password `second-service-pw`.
//!
//! # Access
//! - `userPassword`: anonymous may authenticate against it (every simple bind, including a rebind
//!   on a connection already bound); nobody but the root DN reads it.
//! - Everything else: the service account and every bound user may read (so a user bound directly
//!   can look up its own groups). Anonymous may read only with [`Anonymous::MayRead`]; with
//!   [`Anonymous::Refused`] its searches find nothing (`noSuchObject`, result 32).
//! - The root DN `cn=admin,<suffix>` ([`ROOT_PASSWORD`]) may do anything; it is for changing the
//!   tree during a test, not for Portcullis's configuration.
//! - slapd itself refuses a simple bind with a DN and an empty password as "unauthenticated".
//!
//! # Log
//! `slapd -d stats` logs each connection (`ACCEPT`, `TLS established … ssf=256`), each bind with
//! `ssf=N` (N > 0 over TLS), each search filter with escaped bytes as `\2A` etc., and each result
//! (`err=49` for bad credentials). [`Slapd::log`] reads it, across restarts. Readiness is probed
//! by TCP connects, which log as connections closed without an operation: take a
//! [`Slapd::log_mark`] just before the step whose lines a test asserts on.
//!
//! # Timing
//! A start (certificates, `slapadd`, slapd listening) takes a few hundred milliseconds; every
//! method blocks. A port freed by [`Slapd::stop`] stays ours only by luck: another process could
//! take it before [`Slapd::start_again`], which then panics with slapd's bind error in the log.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::external::{describe, free_port, run_with_stdin};
use super::tls;

/// The daemon; Debian installs it in `/usr/sbin`, which a non-root `PATH` may lack.
pub const SLAPD: &str = "/usr/sbin/slapd";
/// The offline loader that fills the database before slapd starts.
pub const SLAPADD: &str = "/usr/sbin/slapadd";
/// The root DN's password (`cn=admin,<suffix>`), in both trees.
pub const ROOT_PASSWORD: &str = "root-pw";

/// How long slapd may take to listen on both ports.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long slapd may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness and exit are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Which directory tree the instance holds (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// `dc=example,dc=org`: alice, bob, carol, dave, admin, `star*user`, `paren(user)`; groups.
    Example,
    /// `dc=second,dc=org`: alice (another password) and erin, group `second-admins`.
    Second,
}

/// A user entry under `ou=people`.
#[derive(Clone, Copy, Debug)]
pub struct Person {
    pub uid: &'static str,
    pub password: &'static str,
}

/// A group entry under `ou=groups`.
enum Group {
    /// `groupOfNames`: members are people (`uid`) or groups (`cn`) of the same tree.
    OfNames {
        cn: &'static str,
        members: &'static [Member],
    },
    /// `posixGroup`: `memberUid` values are plain uids.
    Posix {
        cn: &'static str,
        gid_number: u32,
        member_uids: &'static [&'static str],
    },
}

enum Member {
    Person(&'static str),
    Group(&'static str),
}

const EXAMPLE_PEOPLE: &[Person] = &[
    Person {
        uid: "alice",
        password: "alice-pw",
    },
    Person {
        uid: "bob",
        password: "bob-pw",
    },
    Person {
        uid: "carol",
        password: "carol-pw",
    },
    Person {
        uid: "dave",
        password: "dave-pw",
    },
    Person {
        uid: "admin",
        password: "admin-pw",
    },
    Person {
        uid: "star*user",
        password: "star-pw",
    },
    Person {
        uid: "paren(user)",
        password: "paren-pw",
    },
];

const EXAMPLE_GROUPS: &[Group] = &[
    Group::OfNames {
        cn: "registry-admins",
        members: &[Member::Person("alice")],
    },
    Group::OfNames {
        cn: "developers",
        members: &[Member::Person("bob"), Member::Group("frontend")],
    },
    Group::OfNames {
        cn: "frontend",
        members: &[Member::Person("carol")],
    },
    Group::Posix {
        cn: "ci",
        gid_number: 5001,
        member_uids: &["dave"],
    },
];

const SECOND_PEOPLE: &[Person] = &[
    Person {
        uid: "alice",
        password: "alice-second-pw",
    },
    Person {
        uid: "erin",
        password: "erin-pw",
    },
];

const SECOND_GROUPS: &[Group] = &[Group::OfNames {
    cn: "second-admins",
    members: &[Member::Person("erin")],
}];

impl Tree {
    /// The suffix: `dc=example,dc=org` or `dc=second,dc=org`.
    pub fn base_dn(self) -> &'static str {
        match self {
            Tree::Example => "dc=example,dc=org",
            Tree::Second => "dc=second,dc=org",
        }
    }

    /// The users under `ou=people`, with their passwords.
    pub fn people(self) -> &'static [Person] {
        match self {
            Tree::Example => EXAMPLE_PEOPLE,
            Tree::Second => SECOND_PEOPLE,
        }
    }

    /// The service account's password.
    pub fn service_password(self) -> &'static str {
        match self {
            Tree::Example => "portcullis-service-pw",
            Tree::Second => "second-service-pw",
        }
    }

    fn groups(self) -> &'static [Group] {
        match self {
            Tree::Example => EXAMPLE_GROUPS,
            Tree::Second => SECOND_GROUPS,
        }
    }

    fn dc(self) -> &'static str {
        match self {
            Tree::Example => "example",
            Tree::Second => "second",
        }
    }

    /// The whole tree as LDIF for `slapadd`, `memberOf` written from the groupOfNames members.
    fn ldif(self) -> String {
        let base = self.base_dn();
        let mut ldif = format!(
            "dn: {base}\nobjectClass: dcObject\nobjectClass: organization\ndc: {dc}\no: {dc}\n\n",
            dc = self.dc()
        );
        for ou in ["people", "groups", "services"] {
            ldif += &format!("dn: ou={ou},{base}\nobjectClass: organizationalUnit\nou: {ou}\n\n");
        }
        ldif += &format!(
            "dn: {}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
             cn: portcullis\nuserPassword: {}\n\n",
            service_dn(self),
            self.service_password()
        );
        for person in self.people() {
            ldif += &format!(
                "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
                 userPassword: {}\n",
                user_dn(self, person.uid),
                person.password,
                uid = person.uid,
            );
            ldif += &self
                .member_of(|member| matches!(member, Member::Person(uid) if *uid == person.uid));
            ldif += "\n";
        }
        for group in self.groups() {
            match group {
                Group::OfNames { cn, members } => {
                    ldif += &format!(
                        "dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n",
                        group_dn(self, cn)
                    );
                    for member in *members {
                        let dn = match member {
                            Member::Person(uid) => user_dn(self, uid),
                            Member::Group(cn) => group_dn(self, cn),
                        };
                        ldif += &format!("member: {dn}\n");
                    }
                    ldif += &self
                        .member_of(|member| matches!(member, Member::Group(inner) if inner == cn));
                }
                Group::Posix {
                    cn,
                    gid_number,
                    member_uids,
                } => {
                    ldif += &format!(
                        "dn: {}\nobjectClass: posixGroup\ncn: {cn}\ngidNumber: {gid_number}\n",
                        group_dn(self, cn)
                    );
                    for uid in *member_uids {
                        ldif += &format!("memberUid: {uid}\n");
                    }
                }
            }
            ldif += "\n";
        }
        ldif
    }

    /// `memberOf:` lines for the groupOfNames groups that list a member matching `is_this`.
    fn member_of(self, is_this: impl Fn(&Member) -> bool) -> String {
        self.groups()
            .iter()
            .filter_map(|group| match group {
                Group::OfNames { cn, members } if members.iter().any(&is_this) => {
                    Some(format!("memberOf: {}\n", group_dn(self, cn)))
                }
                _ => None,
            })
            .collect()
    }
}

fn user_dn(tree: Tree, uid: &str) -> String {
    format!("uid={uid},ou=people,{}", tree.base_dn())
}

fn group_dn(tree: Tree, cn: &str) -> String {
    format!("cn={cn},ou=groups,{}", tree.base_dn())
}

fn service_dn(tree: Tree) -> String {
    format!("cn=portcullis,ou=services,{}", tree.base_dn())
}

/// Whether anonymous clients may search the tree (never read `userPassword`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anonymous {
    /// Anonymous searches find nothing; binds still work.
    Refused,
    /// Anonymous may search and read entries, as "anonymous search" configurations need.
    MayRead,
}

/// A slapd of our own in a temp dir, on two free loopback ports. Killed on drop.
pub struct Slapd {
    tree: Tree,
    ldap_port: u16,
    ldaps_port: u16,
    /// `None` while stopped.
    child: Option<Child>,
    /// Holds certificates, config, database and log; removed after slapd stops.
    dir: TempDir,
}

impl Slapd {
    /// [`Tree::Example`] with anonymous searches refused.
    pub fn start() -> Slapd {
        Self::start_with(Tree::Example, Anonymous::Refused)
    }

    /// Generates certificates and `slapd.conf` for `tree`, loads the tree with `slapadd`, starts
    /// slapd and returns once both ports accept connections; panics with slapd's log otherwise.
    pub fn start_with(tree: Tree, anonymous: Anonymous) -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-slapd-")
            .tempdir()
            .expect("create temp dir");
        tls::write_certificates(dir.path());
        let data = dir.path().join("data");
        fs::create_dir(&data).expect("create database directory");
        let config = dir.path().join("slapd.conf");
        fs::write(&config, slapd_conf(tree, anonymous, dir.path())).expect("write slapd.conf");
        let ldif = dir.path().join("tree.ldif");
        fs::write(&ldif, tree.ldif()).expect("write tree.ldif");
        let loaded = Command::new(SLAPADD)
            .arg("-q")
            .arg("-f")
            .arg(&config)
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SLAPADD} ({e}); run scripts/install-deps.sh"));
        assert!(
            loaded.status.success(),
            "slapadd failed: {}",
            describe(&loaded)
        );
        let ldap_port = free_port();
        // Two ports probed one after the other may coincide.
        let ldaps_port = std::iter::repeat_with(free_port)
            .find(|port| *port != ldap_port)
            .expect("a second free port");
        let mut slapd = Slapd {
            tree,
            ldap_port,
            ldaps_port,
            child: None,
            dir,
        };
        slapd.start_again();
        slapd
    }

    /// Starts slapd again after [`Slapd::stop`], on the same ports with the same data. Does
    /// nothing if it is running.
    pub fn start_again(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open slapd log");
        let err = log.try_clone().expect("clone log file handle");
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap_port, self.ldaps_port
        );
        let child = Command::new(SLAPD)
            .arg("-h")
            .arg(urls)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-d")
            .arg("stats")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SLAPD} ({e}); run scripts/install-deps.sh"));
        // Owned by `self` before waiting, so a panic below still kills it on drop.
        let child = self.child.insert(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let listening = |port: u16| {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok()
        };
        loop {
            if listening(self.ldap_port) && listening(self.ldaps_port) {
                return;
            }
            if let Some(status) = child.try_wait().expect("poll slapd") {
                self.child = None;
                panic!(
                    "slapd exited ({status}) before it listened; its log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "slapd not listening after {READY_TIMEOUT:?}; its log:\n{}",
                    self.log()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops slapd (SIGTERM, then SIGKILL after a timeout) and waits for it: connections are
    /// refused until [`Slapd::start_again`]. Does nothing if it is stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // A frozen slapd would hold SIGTERM until continued.
        signal(&child, libc::SIGCONT);
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait().expect("poll slapd").is_none() {
            if Instant::now() >= deadline {
                eprintln!("slapd did not exit {STOP_TIMEOUT:?} after SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stops slapd with SIGSTOP: the kernel still accepts connections, but nothing answers,
    /// as with a directory that hangs. [`Slapd::thaw`] continues it.
    pub fn freeze(&self) {
        signal(self.running(), libc::SIGSTOP);
    }

    /// Continues a slapd stopped by [`Slapd::freeze`].
    pub fn thaw(&self) {
        signal(self.running(), libc::SIGCONT);
    }

    /// The tree this instance holds.
    pub fn tree(&self) -> Tree {
        self.tree
    }

    /// `ldap://127.0.0.1:PORT` (plain; StartTLS available).
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    pub fn ldap_port(&self) -> u16 {
        self.ldap_port
    }

    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// The test CA (PEM) that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(tls::CA)
    }

    /// Another CA (PEM) that signed nothing this server presents: trusting only it must fail.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join(tls::OTHER_CA)
    }

    /// The suffix, e.g. `dc=example,dc=org`.
    pub fn base_dn(&self) -> &'static str {
        self.tree.base_dn()
    }

    /// `ou=people,<suffix>`.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{}", self.base_dn())
    }

    /// `ou=groups,<suffix>`.
    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{}", self.base_dn())
    }

    /// `uid=<uid>,ou=people,<suffix>`, unescaped (every uid in the trees is a valid DN value).
    pub fn user_dn(&self, uid: &str) -> String {
        user_dn(self.tree, uid)
    }

    /// `cn=<cn>,ou=groups,<suffix>`.
    pub fn group_dn(&self, cn: &str) -> String {
        group_dn(self.tree, cn)
    }

    /// `cn=portcullis,ou=services,<suffix>`: may search and read everything but passwords.
    pub fn service_dn(&self) -> String {
        service_dn(self.tree)
    }

    pub fn service_password(&self) -> &'static str {
        self.tree.service_password()
    }

    /// Writes the service account's password (no newline) to a new file with mode 0600 in the
    /// instance's directory and returns its path.
    pub fn service_password_file(&self) -> PathBuf {
        let path = self.dir.path().join("service-password");
        let _ = fs::remove_file(&path);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(self.service_password().as_bytes()))
            .expect("write password file");
        path
    }

    /// `cn=admin,<suffix>`, the root DN (password [`ROOT_PASSWORD`]).
    pub fn root_dn(&self) -> String {
        format!("cn=admin,{}", self.base_dn())
    }

    /// Applies `ldif` (`ldapmodify` input: changetype records) as the root DN over plain LDAP;
    /// panics if it fails. The memberof overlay keeps `memberOf` in step with group changes.
    pub fn modify_as_root(&self, ldif: &str) {
        let output = self.ldap_tool(
            "ldapmodify",
            &[
                "-x",
                "-H",
                &self.ldap_url(),
                "-D",
                &self.root_dn(),
                "-w",
                ROOT_PASSWORD,
            ],
            ldif,
            &self.ca_file(),
        );
        assert!(
            output.status.success(),
            "ldapmodify failed: {}",
            describe(&output)
        );
    }

    /// Runs an ldap-utils `program` (`ldapsearch`, `ldapwhoami`, …) with `args` and `stdin`,
    /// trusting only `ca` for TLS and reading no system or user `ldap.conf` settings.
    pub fn ldap_tool(&self, program: &str, args: &[&str], stdin: &str, ca: &Path) -> Output {
        let ca = ca.to_str().expect("CA path is UTF-8");
        run_with_stdin(
            program,
            args,
            stdin,
            &[("LDAPCONF", ""), ("LDAPTLS_CACERT", ca)],
        )
    }

    /// Everything slapd has logged so far, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_else(|e| format!("<cannot read log: {e}>"))
    }

    /// The log's length now, to pass to [`Slapd::log_since`] later.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// What slapd has logged after `mark` (from [`Slapd::log_mark`]).
    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or_default().to_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("slapd.log")
    }

    fn running(&self) -> &Child {
        self.child.as_ref().expect("slapd is running")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine; anything else has nowhere to go from a Drop.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with our own child's pid, which stays reserved until we wait for it.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
}

/// `slapd.conf` for `tree` with everything in `dir`: mdb with the memberof overlay, TLS, ACLs.
fn slapd_conf(tree: Tree, anonymous: Anonymous, dir: &Path) -> String {
    let dir = dir.display();
    let base = tree.base_dn();
    let service = service_dn(tree);
    let anonymous_access = match anonymous {
        Anonymous::Refused => "none",
        Anonymous::MayRead => "read",
    };
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
maxsize 16777216
suffix "{base}"
rootdn "cn=admin,{base}"
rootpw {ROOT_PASSWORD}
directory {dir}/data
index objectClass eq
index uid eq
index member eq
index memberUid eq
overlay memberof
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="{service}" read
  by users read
  by anonymous {anonymous_access}
"#
    )
}
