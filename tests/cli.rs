//! The operator's view: the real binary, its commands and its refusals.

pub mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::external::{describe, free_port, run_with_stdin};
use common::jwt;
use common::portcullis::{cli_in, succeeded, Portcullis, BIN};
use serde_json::Value;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The README's run command: `portcullis serve` with no configuration at all.
#[test]
fn zero_config_serve_prints_the_registry_snippet_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("PORTCULLIS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut snippet = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        snippet.push_str(&line);
        snippet.push('\n');
        if line.contains("rootcertbundle") {
            break;
        }
    }
    // A loopback listen address is named `localhost` in the derived URLs (crane refuses IP realms).
    let public = format!("http://localhost:{port}/auth/realms/default/protocol/docker-v2/auth");
    assert!(snippet.contains(&format!("realm: {public}")), "{snippet}");
    assert!(snippet.contains("service: registry"), "{snippet}");
    let token_url = format!("http://127.0.0.1:{port}/auth/realms/default/protocol/docker-v2/auth");
    assert!(snippet.contains(&format!("issuer: {public}")), "{snippet}");
    let bundle = dir.path().join("keys/default/bundle.pem");
    let bundle = bundle.canonicalize().unwrap();
    assert!(
        snippet.contains(&format!("rootcertbundle: {}", bundle.display())),
        "{snippet}"
    );
    assert!(dir.path().join("data/portcullis.db").exists());
    let key_mode = std::fs::metadata(dir.path().join("keys/default/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let body = run_with_stdin(
        "curl",
        &[
            "-sf",
            "--retry",
            "20",
            "--retry-connrefused",
            "--retry-delay",
            "0",
            &format!("{token_url}?service=registry"),
        ],
        "",
        &[],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(body.status.success(), "{}", describe(&body));
    let body: Value = serde_json::from_slice(&body.stdout).unwrap();
    assert_eq!(body["expires_in"], 300);
}

#[test]
fn invalid_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 8] = [
        (
            "[server]\nlisten = \"not an address\"\n",
            "server.listen",
            "",
        ),
        ("[keys]\nrotate_every = \"5s\"\n", "keys.rotate_every", ""),
        ("[keys]\nrotate_every = \"29d\"\n", "keys.rotate_every", ""),
        ("[keys]\nrotate_every = \"1d1d\"\n", "not a period", ""),
        ("[keys]\nleaf_lifetime = \"1d\"\n", "leaf_lifetime", ""),
        ("[server]\nlisen = \"127.0.0.1:1\"\n", "lisen", ""),
        ("[passwords\n", "config.toml", ""),
        ("", "log.level", "PORTCULLIS__LOG__LEVEL"),
    ];
    for (text, key, env) in cases {
        let file = dir.path().join("config.toml");
        std::fs::write(&file, text).unwrap();
        let mut command = Command::new(BIN);
        command.args(["--config", file.to_str().unwrap(), "serve"]);
        if !env.is_empty() {
            command.env(env, "not=a=level[");
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{key}: {}",
            describe(&output)
        );
        assert!(
            stderr(&output).contains(key),
            "{key}: {}",
            describe(&output)
        );
    }
    let output = Command::new(BIN)
        .args(["--config", "/nonexistent/portcullis.toml", "migrate"])
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("/nonexistent/portcullis.toml"),
        "{}",
        describe(&output)
    );
    let output = Command::new(BIN)
        .arg("serve")
        .env("PORTCULLIS_CONFIG", "/nonexistent/from-env.toml")
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("from-env.toml"),
        "{}",
        describe(&output)
    );
}

#[test]
fn refuses_to_start_on_a_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let migrated = cli_in(dir.path(), port, &["keys", "list"], "");
    assert!(migrated.status.success(), "{}", describe(&migrated));
    let key = dir.path().join("keys/default/key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .envs(common::portcullis::env(dir.path(), port));
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let Some(status) = exited else {
        child.kill().unwrap();
        panic!("the server started with a world-readable key");
    };
    assert!(!status.success());
    let mut message = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut message).unwrap();
    assert!(message.contains("chmod 600"), "{message}");
}

#[test]
fn user_lifecycle() {
    let server = Portcullis::start();
    server.add_user("alice", "pw1", false);
    let duplicate = server.cli(&["user", "add", "alice", "--password-stdin"], "x\n");
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("already exists"),
        "{}",
        describe(&duplicate)
    );
    let bad_name = server.cli(&["user", "add", "Alice!", "--password-stdin"], "x\n");
    assert!(!bad_name.status.success());
    assert!(
        stderr(&bad_name).contains("a-z, 0-9"),
        "{}",
        describe(&bad_name)
    );
    let empty = server.cli(&["user", "add", "carol", "--password-stdin"], "\n");
    assert!(stderr(&empty).contains("empty"), "{}", describe(&empty));
    let no_tty = server.cli(&["user", "add", "carol"], "");
    assert!(
        stderr(&no_tty).contains("--password-stdin"),
        "{}",
        describe(&no_tty)
    );

    let token = |user: &str, password: &str| server.token_status(user, password);
    assert_eq!(token("alice", "pw1"), "200");
    server.cli_ok(&["user", "passwd", "alice", "--password-stdin"], "pw2\n");
    assert_eq!(token("alice", "pw1"), "401");
    assert_eq!(token("alice", "pw2"), "200");
    server.cli_ok(&["user", "disable", "alice"], "");
    assert_eq!(token("alice", "pw2"), "401");
    let listed = server.cli_ok(&["user", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("disabled")),
        "{listed}"
    );
    server.cli_ok(&["user", "enable", "alice"], "");
    assert_eq!(token("alice", "pw2"), "200");
    server.cli_ok(&["user", "role", "alice", "admin"], "");
    assert!(server.cli_ok(&["user", "list"], "").contains("admin"));
    server.cli_ok(&["user", "delete", "alice"], "");
    assert_eq!(token("alice", "pw2"), "401");
    let missing = server.cli(&["user", "delete", "alice"], "");
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        describe(&missing)
    );
}

#[test]
fn realms_keys_and_registry_config() {
    let server = Portcullis::start();
    let added = server.cli_ok(
        &[
            "realm",
            "add",
            "team",
            "--service",
            "registry.team",
            "--token-ttl-secs",
            "120",
        ],
        "",
    );
    assert!(added.contains("service: registry.team"), "{added}");
    let too_short = server.cli(
        &[
            "realm",
            "add",
            "fast",
            "--service",
            "s",
            "--token-ttl-secs",
            "59",
        ],
        "",
    );
    assert!(
        stderr(&too_short).contains("60..=86400"),
        "{}",
        describe(&too_short)
    );
    let listed = server.cli_ok(&["realm", "list"], "");
    assert!(
        listed.contains("default") && listed.contains("team") && listed.contains("120"),
        "{listed}"
    );

    let keys = server.cli_ok(&["keys", "list"], "");
    let team_kid = keys
        .lines()
        .find(|l| l.starts_with("team"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned();
    let jwks: Value = serde_json::from_str(&server.cli_ok(
        &["keys", "export", "--realm", "team", "--format", "jwks"],
        "",
    ))
    .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], team_kid.as_str());
    let pem = server.cli_ok(
        &[
            "keys",
            "export",
            "--realm",
            "team",
            "--format",
            "pem-bundle",
        ],
        "",
    );
    assert_eq!(
        pem,
        std::fs::read_to_string(server.dir.path().join("keys/team/cert.pem")).unwrap()
    );

    let config = server.cli_ok(&["registry-config", "--realm", "team"], "");
    assert!(
        config.contains("/auth/realms/team/protocol/docker-v2/auth"),
        "{config}"
    );
    let url = format!(
        "{}/auth/realms/team/protocol/docker-v2/auth?service=registry.team",
        server.url()
    );
    let out = run_with_stdin("curl", &["-sf", &url], "", &[]);
    assert!(
        out.status.success(),
        "new realm is served without restart: {}",
        describe(&out)
    );

    let unknown = server.cli(&["registry-config", "--realm", "nope"], "");
    assert!(
        stderr(&unknown).contains("does not exist"),
        "{}",
        describe(&unknown)
    );
    assert!(server.cli_ok(&["migrate"], "").contains("up to date"));
}

/// A realm's token header: chosen at `realm add`, validated, listed, changed with `realm set`, and
/// explained by `registry-config` (x5c: rootcertbundle for 2.8 and 3.x; kid: jwks for 3.x).
#[test]
fn realm_token_header_is_chosen_listed_changed_and_explained() {
    let server = Portcullis::start();
    let default = server.cli_ok(&["registry-config"], "");
    assert!(default.contains("tokens carry x5c"), "{default}");
    assert!(!default.contains("also wants"), "{default}");

    let added = server.cli_ok(
        &[
            "realm",
            "add",
            "kids",
            "--service",
            "s",
            "--token-header",
            "kid",
        ],
        "",
    );
    assert!(added.contains("tokens carry kid only"), "{added}");
    let jwks_file = server.dir.path().join("keys/kids/jwks.json");
    assert!(
        added.contains(&format!("jwks: {}", jwks_file.display())),
        "{added}"
    );
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&jwks_file).unwrap()).unwrap();
    let url = format!(
        "{}/auth/realms/kids/protocol/docker-v2/auth?service=s",
        server.url()
    );
    let out = run_with_stdin("curl", &["-sf", &url], "", &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let header = jwt::header(body["token"].as_str().unwrap());
    assert!(
        header["kid"].is_string() && header.get("x5c").is_none(),
        "{header}"
    );
    assert_eq!(
        written["keys"][0]["kid"], header["kid"],
        "the JWKS file names the token's key"
    );

    for bad in [
        vec![
            "realm",
            "add",
            "odd",
            "--service",
            "s",
            "--token-header",
            "jwk",
        ],
        vec!["realm", "set", "default", "--token-header", "X5C"],
    ] {
        let refused = server.cli(&bad, "");
        assert!(
            !refused.status.success() && stderr(&refused).contains("expected x5c or kid"),
            "{bad:?}: {}",
            describe(&refused)
        );
    }
    assert!(
        !server.dir.path().join("keys/odd").exists(),
        "nothing created"
    );
    let unknown = server.cli(&["realm", "set", "nope", "--token-header", "kid"], "");
    assert!(
        stderr(&unknown).contains("realm nope not found"),
        "{}",
        describe(&unknown)
    );

    let set = server.cli_ok(&["realm", "set", "default", "--token-header", "kid"], "");
    assert!(set.contains("restart"), "{set}");
    assert!(set.contains("tokens carry kid only"), "{set}");
    let listed = server.cli_ok(&["realm", "list"], "");
    let header_of = |realm: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{realm} ")))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_else(|| panic!("no {realm} in:\n{listed}"))
            .to_owned()
    };
    assert!(listed.starts_with("REALM"), "{listed}");
    assert_eq!(
        listed.lines().next().unwrap().split_whitespace().nth(2),
        Some("HEADER")
    );
    assert_eq!(header_of("default"), "kid");
    assert_eq!(header_of("kids"), "kid");
    server.cli_ok(&["realm", "set", "kids", "--token-header", "x5c"], "");
    let listed = server.cli_ok(&["realm", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("kids ") && l.split_whitespace().nth(2) == Some("x5c")),
        "{listed}"
    );
}

/// A fresh database and key directory for operator commands without a server.
struct Operator {
    dir: tempfile::TempDir,
    port: u16,
}

impl Operator {
    fn new() -> Operator {
        Operator {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        }
    }

    /// A database holding `user` (password `pw`) and a grant of pull on `x/*` to anyone.
    fn with_a_user_and_a_grant(user: &str) -> Operator {
        let op = Operator::new();
        op.ok(&["user", "add", user, "--password-stdin"], "pw\n");
        op.ok(
            &[
                "grant",
                "add",
                "--subject",
                "any",
                "--name",
                "x/*",
                "--actions",
                "pull",
            ],
            "",
        );
        op
    }

    fn run(&self, args: &[&str], stdin: &str) -> std::process::Output {
        cli_in(self.dir.path(), self.port, args, stdin)
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        succeeded(args, self.run(args, stdin))
    }

    /// Runs a command that must fail, and returns its standard error.
    fn refused(&self, args: &[&str], stdin: &str) -> String {
        let output = self.run(args, stdin);
        assert!(
            !output.status.success(),
            "portcullis {args:?} succeeded: {}",
            describe(&output)
        );
        assert!(
            !stderr(&output).contains("panicked"),
            "{args:?}: {}",
            describe(&output)
        );
        stderr(&output)
    }
}

/// `realm add` checks every argument before it creates a key directory or a row: a refused realm
/// leaves nothing behind, however often it is tried, and bad services and issuers never reach
/// `realm list`, the registry's YAML or the token's `iss`.
#[test]
fn realm_add_checks_everything_before_creating_anything() {
    let op = Operator::new();
    let refusals: [(&[&str], &str); 6] = [
        (
            &["--service", "s", "--token-ttl-secs", "18446744073709551615"],
            "60..=86400",
        ),
        (
            &["--service", "s", "--token-ttl-secs", "86401"],
            "60..=86400",
        ),
        (&["--service", "s", "--token-ttl-secs", "59"], "60..=86400"),
        (
            &["--service", "s", "--issuer", "http://x\nfake line"],
            "invalid issuer",
        ),
        (&["--service", "a\x1b[31mb"], "invalid service"),
        (&["--service", "a\x07b"], "invalid service"),
    ];
    for (args, expected) in refusals {
        for _ in 0..2 {
            let mut command = vec!["realm", "add", "r3"];
            command.extend_from_slice(args);
            let why = op.refused(&command, "");
            assert!(why.contains(expected), "{args:?}: {why}");
            assert!(
                !why.chars().any(|c| c.is_control() && c != '\n'),
                "the operator's control characters reach the terminal: {why:?}"
            );
        }
    }
    for args in [
        &["--service", "s", "--issuer", "Acme auth server"][..],
        &["--service", "s", "--issuer", "ftp://x/"],
        &["--service", "two words"],
        &["--service", ""],
    ] {
        let mut command = vec!["realm", "add", "r3"];
        command.extend_from_slice(args);
        op.refused(&command, "");
    }
    assert!(!op.dir.path().join("keys/r3").exists(), "orphan keys/r3");
    assert!(!op.ok(&["realm", "list"], "").contains("r3"));

    let added = op.ok(
        &[
            "realm",
            "add",
            "r3",
            "--service",
            "registry.example.com:5000",
            "--issuer",
            "https://auth.example.com/r3",
            "--token-ttl-secs",
            "86400",
        ],
        "",
    );
    assert!(
        added.contains("service: registry.example.com:5000\n")
            && added.contains("issuer: https://auth.example.com/r3\n"),
        "{added}"
    );
}

/// `token create --expires` refuses lifetimes past ten years instead of overflowing into a token
/// that is already expired; nothing is printed or stored.
#[test]
fn token_lifetimes_have_a_ceiling() {
    let op = Operator::new();
    op.ok(&["user", "add", "alice", "--password-stdin"], "pw\n");
    for expires in [
        "9223372036854775807s",
        "106751991167301d",
        "3651d",
        "0d",
        "5é",
        "d",
    ] {
        let output = op.run(
            &[
                "token",
                "create",
                "--user",
                "alice",
                "--name",
                "t",
                "--expires",
                expires,
            ],
            "",
        );
        assert!(!output.status.success(), "{expires}: {}", describe(&output));
        assert!(
            stdout(&output).is_empty(),
            "{expires}: a secret was printed"
        );
        assert!(
            stderr(&output).contains("at most 3650d"),
            "{expires}: {}",
            describe(&output)
        );
    }
    let listed = op.ok(&["token", "list"], "");
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
    let secret = op.ok(
        &[
            "token",
            "create",
            "--user",
            "alice",
            "--name",
            "t",
            "--expires",
            "3650d",
        ],
        "",
    );
    assert!(secret.starts_with("pcat_"), "{secret}");
    assert!(op.ok(&["token", "list"], "").contains("active"));
}

/// A password that the server would take for a MUNGE credential could never log in: refused like
/// the token prefixes, at `user add` and `user passwd`.
#[test]
fn passwords_shaped_like_munge_credentials_are_refused() {
    let op = Operator::new();
    op.ok(&["user", "add", "alice", "--password-stdin"], "pw\n");
    for password in ["MUNGE:AQID:", "MUNGEsecret", "  MUNGE:x"] {
        let why = op.refused(
            &["user", "add", "bob", "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(why.contains("MUNGE"), "{password}: {why}");
        let why = op.refused(
            &["user", "passwd", "alice", "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(why.contains("MUNGE"), "{password}: {why}");
    }
    assert!(!op.ok(&["user", "list"], "").contains("bob"));
}

/// Every printing command ends quietly when its reader has gone (`portcullis grant list | true`):
/// no panic, no backtrace, no message.
#[test]
fn a_closed_stdout_ends_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let op = Operator::with_a_user_and_a_grant("alice");
    let commands: [&[&str]; 8] = [
        &["grant", "list"],
        &["user", "list"],
        &["realm", "list"],
        &["keys", "list"],
        &["token", "list"],
        &["group", "list"],
        &["registry-config"],
        &[
            "policy",
            "explain",
            "--anonymous",
            "--scope",
            "repository:x/y:pull",
        ],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(BIN)
            .args(args)
            .envs(common::portcullis::env(op.dir.path(), op.port))
            .stdout(writer)
            .output()
            .unwrap();
        let status = output.status;
        assert!(
            status.success() || status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {status}"
        );
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

/// List columns line up whatever the names' lengths, and `policy explain` prints one line per
/// scope and action.
#[test]
fn lists_and_explanations_are_laid_out() {
    let op = Operator::with_a_user_and_a_grant("bo");
    let column = |text: &str, header: &str, row_start: &str, cell: &str| {
        let head = text.lines().next().unwrap().find(header).unwrap();
        let row = text.lines().find(|l| l.starts_with(row_start)).unwrap();
        assert_eq!(row.find(cell), Some(head), "{text}");
    };
    column(&op.ok(&["user", "list"], ""), "ROLE", "bo ", "user");
    column(
        &op.ok(&["realm", "list"], ""),
        "TTL_SECS",
        "default ",
        "300",
    );
    column(&op.ok(&["keys", "list"], ""), "STATE", "default ", "active");
    let explained = op.ok(
        &[
            "policy",
            "explain",
            "--anonymous",
            "--scope",
            "repository:x/y:pull,push",
            "--scope",
            "repository:alice/y:pull",
        ],
        "",
    );
    let lines: Vec<&str> = explained.lines().collect();
    assert_eq!(lines.len(), 5, "{explained}");
    assert!(
        lines[0].starts_with("repository:x/y:pull,push: granted"),
        "{explained}"
    );
    assert!(
        lines[1].starts_with("  pull: granted by rule"),
        "{explained}"
    );
    assert_eq!(lines[2], "  push: not granted: no rule allows it");
    assert_eq!(lines[3], "repository:alice/y:pull: nothing granted");
    assert_eq!(lines[4], "  pull: not granted: no rule allows it");
    assert!(explained.ends_with('\n'), "{explained:?}");
}

/// Key commands refuse what would break a realm's key schedule, saying why in words, and change
/// nothing when they do.
#[test]
fn key_commands_refuse_in_words() {
    let op = Operator::new();
    let kids_in = |state: &str| -> Vec<String> {
        op.ok(&["keys", "list"], "")
            .lines()
            .skip(1)
            .map(|line| {
                line.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|cells| cells[3] == state)
            .map(|cells| cells[2].clone())
            .collect()
    };
    let active = kids_in("active").pop().unwrap();
    let why = op.refused(&["keys", "activate", &active], "");
    assert!(why.contains("is active, not pending"), "{why}");
    let why = op.refused(&["keys", "revoke", "NOPE"], "");
    assert!(
        why.contains("realm default has no signing key NOPE"),
        "{why}"
    );
    let why = op.refused(&["keys", "rotate", "--realm", "nope"], "");
    assert!(why.contains("realm nope"), "{why}");

    op.ok(&["keys", "rotate"], "");
    let pending = kids_in("pending").pop().unwrap();
    for args in [&["keys", "rotate"][..], &["keys", "ca", "init"][..]] {
        let why = op.refused(args, "");
        assert!(
            why.contains(&format!("key {pending} of realm default is pending")),
            "{why}"
        );
    }
    op.ok(&["keys", "revoke", &pending], "");
    let why = op.refused(&["keys", "revoke", &pending], "");
    assert!(why.contains("is revoked"), "{why}");
    assert_eq!(
        kids_in("active"),
        std::slice::from_ref(&active),
        "revoking a pending key leaves the active one"
    );

    op.ok(&["keys", "ca", "init"], "");
    let why = op.refused(&["keys", "ca", "init"], "");
    assert!(why.contains("has a certificate authority already"), "{why}");
    let ca_key = op.dir.path().join("keys/default/ca/key.pem");
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let activated = op.ok(
        &["keys", "activate", &kids_in("pending").pop().unwrap()],
        "",
    );
    assert!(activated.contains("signs from"), "{activated}");
    // Activation takes effect when every instance has heard of it, a few seconds on.
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    assert!(kids_in("pending").is_empty());
    // The CA key moved offline: rotation asks for it, and refuses a key that is not the CA's.
    let offline = op.dir.path().join("offline-ca.pem");
    std::fs::rename(&ca_key, &offline).unwrap();
    let why = op.refused(&["keys", "rotate"], "");
    assert!(why.contains("pass --ca-key FILE"), "{why}");
    let other = op.dir.path().join("keys/default/key.pem");
    let why = op.refused(&["keys", "rotate", "--ca-key", other.to_str().unwrap()], "");
    assert!(
        why.contains("not the key of realm default's certificate authority"),
        "{why}"
    );
    assert!(kids_in("pending").is_empty(), "nothing made");
    let rotated = op.ok(
        &["keys", "rotate", "--ca-key", offline.to_str().unwrap()],
        "",
    );
    assert!(rotated.contains("nothing to do"), "{rotated}");
    assert_eq!(kids_in("pending").len(), 1);
}

/// A broken `key.pem` is explained in words, naming the file.
#[test]
fn broken_keys_are_explained_in_words() {
    let op = Operator::new();
    op.ok(&["keys", "list"], "");
    let key = op.dir.path().join("keys/default/key.pem");
    let rsa = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ])
        .output()
        .unwrap();
    assert!(rsa.status.success(), "{}", describe(&rsa));
    let cases: [(&[u8], &str); 2] = [
        (b"\0\0garbage\n", "it is not PEM"),
        (&rsa.stdout, "it holds an RSA key"),
    ];
    for (content, reason) in cases {
        std::fs::write(&key, content).unwrap();
        let why = op.refused(&["keys", "list"], "");
        let expected = format!(
            "{} is not a PEM-encoded P-256 private key (PKCS#8): {reason}",
            key.display()
        );
        assert!(why.contains(&expected), "{why}");
        assert!(!why.contains("preamble") && !why.contains("OID"), "{why}");
    }
}

/// JSON logs carry one audit event per decision, with the rule that decided it, and never the
/// password.
#[test]
fn json_logs_carry_audit_events_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = "s3cret-Pa55word";
    let added = cli_in(
        dir.path(),
        port,
        &["user", "add", "alice", "--password-stdin"],
        &format!("{secret}\n"),
    );
    assert!(added.status.success(), "{}", describe(&added));
    let log = dir.path().join("server.log");
    let child = Command::new(BIN)
        .arg("serve")
        .envs(common::portcullis::env(dir.path(), port))
        .env("PORTCULLIS__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/auth/realms/default/protocol/docker-v2/auth?service=registry&scope=repository:alice/app:pull");
    let retry = [
        "-s",
        "--retry",
        "20",
        "--retry-connrefused",
        "--retry-delay",
        "0",
        "-o",
        "/dev/null",
    ];
    for user in [format!("alice:{secret}"), format!("alice:{secret}x")] {
        let mut args = retry.to_vec();
        args.extend(["-u", &user, &url]);
        run_with_stdin("curl", &args, "", &[]);
    }
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(secret),
        "a password reached the log:\n{text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"] != "WARN" && l["level"] != "ERROR"),
        "a refusal is an audit event, not a warning: {text}"
    );
    let events: Vec<&Value> = lines.iter().filter(|e| e["target"] == "audit").collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["fields"]["outcome"], "granted");
    assert_eq!(events[0]["fields"]["granted"], "repository:alice/app:pull");
    assert_eq!(events[0]["fields"]["method"], "password");
    let rules = events[0]["fields"]["rules"].as_str().unwrap_or_default();
    assert!(
        rules.starts_with("rule ") && rules.contains("${account}/**"),
        "the grant names the rule that decided it: {text}"
    );
    assert_eq!(events[1]["fields"]["outcome"], "refused");
    assert_eq!(events[1]["fields"]["reason"], "wrong password");
    assert_eq!(events[1]["fields"]["client_addr"], "127.0.0.1");
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["span"]["request_id"].as_str().unwrap_or_default())
        .collect();
    assert!(
        ids.iter().all(|id| id.len() == 36) && ids[0] != ids[1],
        "each audit event names its request: {text}"
    );
}

/// Log lines are written in batches: a clean stop (SIGTERM, as from a supervisor) writes every line
/// still waiting. The human format has no colour codes in a file.
#[test]
fn a_clean_stop_writes_every_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("server.log");
    let child = Command::new(BIN)
        .arg("serve")
        .envs(common::portcullis::env(dir.path(), port))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let requests = 50;
    let codes = anonymous_requests(port, requests);
    assert_eq!(codes, vec!["200"; requests], "{codes:?}");
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let audit = text.lines().filter(|l| l.contains(" audit: ")).count();
    assert_eq!(audit, requests, "{text}");
    assert!(!text.contains('\x1b'), "colour codes in a file:\n{text}");
}

/// A supervisor that stops reading stderr does not stop the server.
#[test]
fn a_closed_stderr_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(common::portcullis::env(dir.path(), port))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    // Enough lines to need more than one batch.
    let requests = 300;
    let codes = anonymous_requests(port, requests);
    assert_eq!(codes, vec!["200"; requests], "{codes:?}");
    stop(child);
}

/// Makes `count` anonymous token requests over one connection (retrying until the server listens);
/// the status codes, in order.
fn anonymous_requests(port: u16, count: usize) -> Vec<String> {
    let url = format!(
        "http://127.0.0.1:{port}/auth/realms/default/protocol/docker-v2/auth?service=registry&scope=repository:library/a:pull"
    );
    let mut args = vec![
        "-s",
        "--retry",
        "20",
        "--retry-connrefused",
        "--retry-delay",
        "0",
        "-w",
        "%{http_code}\\n",
    ];
    for _ in 0..count {
        args.extend(["-o", "/dev/null", &url]);
    }
    let out = run_with_stdin("curl", &args, "", &[]);
    stdout(&out).lines().map(str::to_owned).collect()
}

/// Stops a server the way a supervisor does (SIGTERM) and waits for its clean exit.
fn stop(mut child: std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
}

/// With `tls.cert_file` and `tls.key_file` the server speaks HTTPS only.
#[test]
fn serves_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(common::portcullis::env(dir.path(), port))
        .env("PORTCULLIS__TLS__CERT_FILE", &cert_file)
        .env("PORTCULLIS__TLS__KEY_FILE", &key_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let https = format!("https://localhost:{port}/healthz");
    let ok = run_with_stdin(
        "curl",
        &[
            "-sf",
            "--retry",
            "20",
            "--retry-connrefused",
            "--retry-delay",
            "0",
            "--cacert",
            cert_file.to_str().unwrap(),
            &https,
        ],
        "",
        &[],
    );
    let plain = run_with_stdin(
        "curl",
        &["-sf", &format!("http://localhost:{port}/healthz")],
        "",
        &[],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ok.status.success(), "{}", describe(&ok));
    assert!(!plain.status.success(), "plain HTTP must not be served");
}

/// Groups, grants and `policy explain` through the commands an operator types.
#[test]
fn groups_grants_and_explain() {
    let server = Portcullis::start();
    server.add_user("alice", "pw", false);
    server.add_user("bob", "pw", false);
    server.cli_ok(&["group", "add", "team"], "");
    server.cli_ok(&["group", "member", "add", "team", "bob"], "");
    assert!(server.cli_ok(&["group", "list"], "").contains("team: bob"));
    let added = server.cli_ok(
        &[
            "grant",
            "add",
            "--subject",
            "group:team",
            "--name",
            "team/**",
            "--actions",
            "pull,push",
        ],
        "",
    );
    assert!(
        added.contains("allow pull,push on repository \"team/**\" to group:team"),
        "{added}"
    );
    let bad = server.cli(
        &[
            "grant",
            "add",
            "--subject",
            "crowd",
            "--name",
            "x",
            "--actions",
            "pull",
        ],
        "",
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("subject"),
        "{}",
        describe(&bad)
    );
    let bad = server.cli(
        &[
            "grant",
            "add",
            "--subject",
            "any",
            "--name",
            "re:(",
            "--actions",
            "pull",
        ],
        "",
    );
    assert!(!bad.status.success(), "{}", describe(&bad));

    let explain = |user: &str| {
        server.cli_ok(
            &[
                "policy",
                "explain",
                "--user",
                user,
                "--scope",
                "repository:team/app:pull,push",
            ],
            "",
        )
    };
    let bob = explain("bob");
    assert!(
        !bob.contains("not granted") && bob.contains("group:team"),
        "{bob}"
    );
    let alice = explain("alice");
    assert!(alice.contains("nothing granted"), "{alice}");
    let anonymous = server.cli_ok(
        &[
            "policy",
            "explain",
            "--anonymous",
            "--scope",
            "repository:alice/app:pull",
        ],
        "",
    );
    assert!(anonymous.contains("nothing granted"), "{anonymous}");

    let listed = server.cli_ok(&["grant", "list"], "");
    let id = listed.split_whitespace().next().unwrap().to_owned();
    server.cli_ok(&["grant", "remove", &id], "");
    assert!(explain("bob").contains("nothing granted"));
    server.cli_ok(&["group", "member", "remove", "team", "bob"], "");
    server.cli_ok(&["group", "delete", "team"], "");
}

#[test]
fn policy_check_validates_files_offline() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/policy.example.toml"),
        &good,
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["policy", "check", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout(&output).contains("3 rules"), "{}", describe(&output));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nsubject = \"any\"\nname = \"x\"\nactions = [\"fly\"]\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["policy", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("line 4, column"),
        "{}",
        describe(&output)
    );
}

/// A broken policy file stops the server at start; SIGHUP re-reads a file whose change the
/// modification time does not show.
#[test]
fn policy_file_at_start_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[[rule]]\nsubject = \"any\"\nname = \"library/**\"\nactions = [\"pull\", \"bogus\"]\n",
    )
    .unwrap();
    let env = common::portcullis::env(dir.path(), port);
    let broken = Command::new(BIN)
        .arg("serve")
        .envs(env.clone())
        .env("PORTCULLIS__REALMS__DEFAULT__POLICY_FILE", &file)
        .output()
        .unwrap();
    assert!(!broken.status.success());
    assert!(
        stderr(&broken).contains("policy.toml") && stderr(&broken).contains("line 4"),
        "{}",
        describe(&broken)
    );

    std::fs::write(
        &file,
        "[[rule]]\nsubject = \"any\"\nname = \"library/**\"\nactions = [\"push\"]\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(env)
        .env("PORTCULLIS__REALMS__DEFAULT__POLICY_FILE", &file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{port}/auth/realms/default/protocol/docker-v2/auth?service=registry&scope=repository:library/a:pull"
    );
    let granted = || {
        let out = run_with_stdin(
            "curl",
            &[
                "-sf",
                "--retry",
                "20",
                "--retry-connrefused",
                "--retry-delay",
                "0",
                &url,
            ],
            "",
            &[],
        );
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        jwt::claims(body["token"].as_str().unwrap())["access"].clone()
    };
    assert_eq!(granted(), serde_json::json!([]));
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(
        &file,
        "[[rule]]\nsubject = \"any\"\nname = \"library/**\"\nactions = [\"pull\"]\n",
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(
        granted(),
        serde_json::json!([]),
        "same stamp: not re-read yet"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    let after = granted();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        after,
        serde_json::json!([{"type": "repository", "name": "library/a", "actions": ["pull"]}])
    );
}

/// The access list inside a token for `user:password` and `scope`, from a running server.
fn granted_access(server: &Portcullis, user: &str, password: &str, scope: &str) -> Value {
    let url = server.token_url(&format!("&scope={scope}"));
    let out = run_with_stdin(
        "curl",
        &["-sf", "-u", &format!("{user}:{password}"), &url],
        "",
        &[],
    );
    assert!(out.status.success(), "{user}: {}", describe(&out));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    jwt::claims(body["token"].as_str().unwrap())["access"].clone()
}

/// An htpasswd file made by `htpasswd -B` logs in; other hash types are listed, not dropped.
#[test]
fn htpasswd_import() {
    let server = Portcullis::start();
    let file = server.dir.path().join("users.htpasswd");
    let file_arg = file.to_str().unwrap();
    for (flags, user, password) in [("-cbB", "alice", "wonder:land"), ("-bm", "bob", "builder")] {
        let made = run_with_stdin("htpasswd", &[flags, file_arg, user, password], "", &[]);
        assert!(made.status.success(), "{}", describe(&made));
    }
    let output = server.cli_ok(&["import", "htpasswd", file_arg], "");
    assert!(output.contains("1 user(s) imported"), "{output}");
    assert!(
        output.contains("not imported") && output.contains("bob"),
        "{output}"
    );
    for _ in 0..2 {
        let access = granted_access(&server, "alice", "wonder:land", "repository:alice/app:pull");
        assert_eq!(
            access,
            serde_json::json!([{"type": "repository", "name": "alice/app", "actions": ["pull"]}])
        );
    }
}

/// bcrypt costs above the maximum are not imported (each check would stall the password threads
/// for seconds to days): the line is reported with its user, the rest of the file is imported.
#[test]
fn htpasswd_import_refuses_costly_hashes() {
    let op = Operator::new();
    let line = |user: &str, cost: &str| {
        let made = run_with_stdin("htpasswd", &["-nbB", "-C", "5", user, "pw"], "", &[]);
        assert!(made.status.success(), "{}", describe(&made));
        stdout(&made)
            .trim()
            .replacen("$2y$05$", &format!("$2y${cost}$"), 1)
    };
    let file = op.dir.path().join("users.htpasswd");
    let text = [
        line("alice", "05"),
        line("slow", "31"),
        line("edge", "15"),
        line("top", "14"),
    ];
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let output = op.ok(&["import", "htpasswd", file.to_str().unwrap()], "");
    assert!(output.contains("2 user(s) imported"), "{output}");
    for (number, user, cost) in [(2, "slow", 31), (3, "edge", 15)] {
        let expected = format!(
            "not imported: line {number} (user \"{user}\"): bcrypt cost {cost} is above the maximum of 14"
        );
        assert!(output.contains(&expected), "{output}");
    }
    let users = op.ok(&["user", "list"], "");
    assert!(
        users.contains("alice ")
            && users.contains("top ")
            && !users.contains("slow")
            && !users.contains("edge"),
        "{users}"
    );
}

/// A docker_auth configuration: users log in with their bcrypt passwords and the imported ACL
/// decides in first-match order, as docker_auth does.
#[test]
fn docker_auth_import() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/import/testdata/docker_auth.yml"
    );
    let policy = dir.path().join("policy.toml");
    let output = cli_in(
        dir.path(),
        port,
        &[
            "import",
            "docker-auth",
            fixture,
            "--policy-out",
            policy.to_str().unwrap(),
        ],
        "",
    );
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout(&output);
    assert!(
        text.contains("written to") && text.contains("first-match"),
        "{text}"
    );
    assert!(text.contains("not imported: section ldap_auth"), "{text}");
    let check = Command::new(BIN)
        .args(["policy", "check", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", describe(&check));

    let config = format!(
        "[realms.default]\npolicy_file = {:?}\n",
        policy.display().to_string()
    );
    let server = Portcullis::start_with_config(&config);
    let imported = server.cli(
        &[
            "import",
            "docker-auth",
            fixture,
            "--policy-out",
            policy.to_str().unwrap(),
        ],
        "",
    );
    assert!(imported.status.success(), "{}", describe(&imported));
    let pull =
        |name: &str| serde_json::json!([{"type": "repository", "name": name, "actions": ["pull"]}]);
    assert_eq!(
        granted_access(&server, "test", "123", "repository:test-app:pull"),
        pull("test-app")
    );
    assert_eq!(
        granted_access(&server, "test", "123", "repository:other:pull"),
        serde_json::json!([])
    );
    assert_eq!(
        granted_access(&server, "admin", "badmin", "repository:anything/x:pull"),
        pull("anything/x")
    );
}

/// `munge import-passwd` maps the uids of a passwd file's existing users and reports the rest.
#[test]
fn munge_mappings_from_a_passwd_file() {
    let server = Portcullis::start();
    server.add_user("alice", "pw", false);
    let passwd = server.dir.path().join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/sh\nBad Line\n",
    )
    .unwrap();
    let output = server.cli_ok(
        &[
            "munge",
            "import-passwd",
            "--platform",
            "perlmutter",
            passwd.to_str().unwrap(),
        ],
        "",
    );
    assert!(output.contains("1 uid(s) of perlmutter mapped"), "{output}");
    let listed = server.cli_ok(&["munge", "list"], "");
    assert!(
        listed
            .lines()
            .any(|l| l.contains("perlmutter") && l.contains("1001") && l.contains("alice")),
        "{listed}"
    );
    server.cli_ok(
        &[
            "munge",
            "unmap",
            "--platform",
            "perlmutter",
            "--uid",
            "1001",
        ],
        "",
    );
    assert!(!server.cli_ok(&["munge", "list"], "").contains("1001"));
}

/// `lockout list` shows locked accounts and addresses in aligned columns; `lockout clear` lifts
/// either for the running server's next request, and refuses what it cannot clear.
#[test]
fn lockout_list_and_clear() {
    let server =
        Portcullis::start_with_config("[lockout]\naccount_threshold = 2\naddress_threshold = 3\n");
    server.add_user("alice", "right", false);
    server.add_user("bob", "bobpw", false);
    let token = |user: &str, password: &str| server.token_status(user, password);
    assert_eq!(token("alice", "wrong1"), "401");
    assert_eq!(token("alice", "wrong2"), "401");
    assert_eq!(token("alice", "right"), "429", "the account is locked");
    assert_eq!(token("bob", "wrong"), "401");
    assert_eq!(token("bob", "bobpw"), "429", "the address is locked");

    let listed = server.cli_ok(&["lockout", "list"], "");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    let column = lines[0].find("LAST_FAILURE").unwrap();
    for line in &lines[1..] {
        assert_eq!(line.find(" 20").map(|i| i + 1), Some(column), "{listed}");
    }
    let row = |subject: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(subject))
            .unwrap_or_else(|| panic!("no {subject} in\n{listed}"));
        line.split_whitespace().collect::<Vec<_>>()
    };
    let alice = row("account:default/alice ");
    assert_eq!(alice[1], "2", "{listed}");
    assert!(alice[3].starts_with("20"), "locked until a date: {listed}");
    assert_eq!(row("account:default/bob ")[3], "-", "{listed}");
    let address = row("address:127.0.0.1 ");
    assert_eq!(address[1], "3", "{listed}");
    assert!(address[3].starts_with("20"), "{listed}");

    for (args, code, message) in [
        (&["lockout", "clear"][..], 2, "--user"),
        (
            &["lockout", "clear", "--address", "localhost"],
            2,
            "invalid IP address",
        ),
        (
            &["lockout", "clear", "--user", "bob", "--address", "::1"],
            2,
            "cannot be used",
        ),
        (
            &["lockout", "clear", "--address", "::1"],
            1,
            "no failures are recorded for address ::1",
        ),
        (
            &["lockout", "clear", "--user", "alice", "--realm", "nope"],
            1,
            "realm nope does not exist",
        ),
        (
            &["lockout", "clear", "--user", "carol"],
            1,
            "no failures are recorded for user carol",
        ),
    ] {
        let output = server.cli(args, "");
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            describe(&output)
        );
    }
    assert_eq!(
        server.cli_ok(&["lockout", "list"], ""),
        listed,
        "nothing written"
    );

    server.cli_ok(&["lockout", "clear", "--address", "127.0.0.1"], "");
    assert_eq!(token("bob", "bobpw"), "200", "the address lock is lifted");
    assert_eq!(token("alice", "right"), "429", "the account lock is not");
    server.cli_ok(&["lockout", "clear", "--user", "alice"], "");
    assert_eq!(token("alice", "right"), "200");
    let listed = server.cli_ok(&["lockout", "list"], "");
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");
}

/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on every Linux architecture we run).
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// CPU time the process has used (user and system).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SEC)
}

/// With few file descriptors (`ulimit -n 128`), more idle connections than that neither stop the
/// server nor make it spin, and once they are gone it answers again. With `server.max_connections`
/// derived from the limit (0, the default) it stops accepting before running out of descriptors;
/// with a larger explicit value, accepting fails with EMFILE and actix-server retries every half
/// second.
#[test]
fn running_out_of_file_descriptors_neither_stops_nor_spins_the_server() {
    // More than the descriptors, fewer than those and the listen queue (128) together: a connect
    // beyond that waits for the server.
    const HELD: usize = 150;
    const WATCHED: Duration = Duration::from_secs(3);
    for (max_connections, runs_out) in [(0, false), (10_000, true)] {
        let server = Portcullis::start_in_shell(
            &format!(
                "[server]\nworkers = 1\nclient_timeout_secs = 60\nmax_connections = {max_connections}\n"
            ),
            "ulimit -n 128",
        );
        let held: Vec<std::net::TcpStream> = (0..HELD)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap())
            .collect();
        let before = cpu_time(server.pid());
        std::thread::sleep(WATCHED);
        let used = cpu_time(server.pid()) - before;
        eprintln!("max_connections = {max_connections}: {used:?} of CPU in {WATCHED:?}");
        // Spinning on accept would use all of WATCHED.
        assert!(
            used < WATCHED / 3,
            "max_connections = {max_connections}: {used:?} of CPU in {WATCHED:?}"
        );
        assert_eq!(
            server.logged("Too many open files"),
            runs_out,
            "max_connections = {max_connections}:\n{}",
            server.log()
        );
        drop(held);
        let codes = anonymous_requests(server.port, 3);
        assert_eq!(
            codes,
            vec!["200"; 3],
            "max_connections = {max_connections}:\n{}",
            server.log()
        );
    }
}

/// A command against a database that does not answer fails after `database.acquire_timeout_ms`,
/// saying once where the database is (without its password) and how long it tried.
#[test]
fn an_unreachable_database_is_named_once() {
    let port = free_port();
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/portcullis");
    let started = std::time::Instant::now();
    let output = run_with_stdin(
        BIN,
        &["user", "list"],
        "",
        &[("PORTCULLIS__DATABASE__URL", url.as_str())],
    );
    let took = started.elapsed();
    let message = stderr(&output);
    assert!(!output.status.success());
    assert_eq!(
        message.trim(),
        format!(
            "portcullis: opening the database (database.url): database \
             postgres://app@127.0.0.1:{port}/portcullis is unreachable: no connection within 1000 ms"
        )
    );
    assert!(took < Duration::from_secs(10), "failed after {took:?}");
}

/// An error that shows its cause in its own message is printed without the cause again.
#[test]
fn a_database_error_is_printed_once() {
    let base = std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .expect("PORTCULLIS_TEST_POSTGRES_URL is set: run scripts/test.sh");
    let (server, _) = base.rsplit_once('/').unwrap();
    let url = format!("{server}/no_such_database");
    let output = run_with_stdin(
        BIN,
        &["user", "list"],
        "",
        &[("PORTCULLIS__DATABASE__URL", url.as_str())],
    );
    let message = stderr(&output);
    assert!(!output.status.success());
    assert_eq!(
        message
            .matches("\"no_such_database\" does not exist")
            .count(),
        1,
        "{message}"
    );
}
