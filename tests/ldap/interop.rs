//! Directory users with the real clients and registry: `docker login` (the docker CLI) stores our
//! refresh token for a directory user, and a grant by directory group lets skopeo push and pull
//! through the real registry, while a user outside the group is refused.

use serde_json::Value;

use crate::common::database::Db;
use crate::common::external::{build_oci_image, describe, run_with_stdin, skopeo, Registry};
use crate::common::slapd::Slapd;
use crate::ldap::setup::{directory, Server};

/// A server with the corp directory and a registry trusting it.
fn setup(slapd: &Slapd) -> (Server, Registry) {
    let server = Server::start(Db::Sqlite, &directory("corp", slapd, ""));
    let config = server.portcullis.registry_config();
    let registry = Registry::start(
        &config.realm,
        &config.service,
        &config.issuer,
        &config.rootcertbundle,
    );
    (server, registry)
}

#[test]
fn docker_login_of_a_directory_user_stores_a_refresh_token() {
    let slapd = Slapd::start();
    let (server, registry) = setup(&slapd);
    let config = tempfile::tempdir().unwrap();
    let config_dir = config.path().display().to_string();
    let login = |user: &str, password: &str| {
        run_with_stdin(
            "docker",
            &["login", "-u", user, "--password-stdin", &registry.host()],
            &format!("{password}\n"),
            &[("DOCKER_CONFIG", config_dir.as_str())],
        )
    };
    let refused = login("alice", "wrong");
    assert!(!refused.status.success(), "{}", describe(&refused));
    let logged_in = login("alice", "alice-pw");
    assert!(
        logged_in.status.success()
            && String::from_utf8_lossy(&logged_in.stdout).contains("Login Succeeded"),
        "{}\n{}",
        describe(&logged_in),
        server.portcullis.log()
    );
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(config.path().join("config.json")).unwrap())
            .unwrap();
    let entry = &stored["auths"][registry.host()];
    assert!(
        entry["identitytoken"]
            .as_str()
            .is_some_and(|t| t.starts_with("pcrt_")),
        "{stored}"
    );
}

#[test]
fn a_grant_by_directory_group_pushes_and_pulls_through_the_registry() {
    let slapd = Slapd::start();
    let (server, registry) = setup(&slapd);
    let work = tempfile::tempdir().unwrap();
    let layout = build_oci_image(&work.path().join("image"), "v1");
    let source = format!("oci:{}:v1", layout.display());
    let target = format!("docker://{}/team/app:v1", registry.host());
    let push = |creds: &str| {
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &source,
            &target,
        ])
    };
    let refused = push("bob:bob-pw");
    assert!(
        !refused.status.success(),
        "bob is not in registry-admins: {}",
        describe(&refused)
    );
    let pushed = push("alice:alice-pw");
    assert!(
        pushed.status.success(),
        "{}\n{}\n{}",
        describe(&pushed),
        server.portcullis.log(),
        registry.log()
    );
    let inspected = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:alice-pw",
        &target,
    ]);
    assert!(inspected.status.success(), "{}", describe(&inspected));
    assert!(
        server.portcullis.logged(
            "rules=rule 1 (allow * on repository \"team/**\" to group:ldap:corp:registry-admins)"
        ),
        "the grant came from the directory group:\n{}",
        server.portcullis.log()
    );
}
