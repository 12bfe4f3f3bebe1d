//! A database made before console sign-in with OpenID providers (migration 14 widened the
//! accounts' `source`; on SQLite that means dropping and re-adding the column) keeps everything
//! that hangs off its accounts: tokens, memberships, directory accounts and their groups, and
//! passwords that still log in. The fixture is a SQLite dump of such a database: alice (local, a
//! password, an access token, member of devs) and dora (an LDAP directory's account).

use portcullis::names::{IssuerName, RealmName, Username};
use portcullis::store::{SeenGroups, Source};

use super::helpers::spawn_app_at;

const BEFORE_SSO: &str = include_str!("../fixtures/sqlite-before-sso.sql");

#[tokio::test]
async fn a_database_from_before_provider_accounts_keeps_its_accounts_and_what_hangs_off_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(BEFORE_SSO)
        .unwrap();
    let app = spawn_app_at(dir, format!("sqlite://{}", path.display()), |_| {}).await;
    let realm = RealmName::parse("default").unwrap();
    let name = |n: &str| Username::parse(n).unwrap();

    let alice = app
        .store
        .find_user(&realm, &name("alice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.source, Source::Local);
    assert_eq!(app.store.user_groups(alice.id).await.unwrap(), ["devs"]);
    let tokens = app
        .store
        .list_tokens(&realm, Some(&name("alice")))
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1, "alice's access token survived");
    let dora = app
        .store
        .find_user(&realm, &name("dora"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dora.source.as_stored(), "ldap:corp");
    assert_eq!(
        dora.directory_groups,
        Some(SeenGroups {
            groups: vec!["ldap:corp:devs".into()],
            at: 5
        })
    );
    let answer = app
        .get_token("service=registry", Some(("alice", "pw-alice-1")))
        .await;
    assert_eq!(answer.status(), 200, "alice's password still logs in");

    // The wider source is accepted now, and deleting an account still cascades.
    let provider = Source::Provider(IssuerName::parse("corp").unwrap());
    app.store
        .create_external_user(&realm, &name("erin"), &provider)
        .await
        .unwrap();
    let erin = app
        .store
        .find_user(&realm, &name("erin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erin.source, provider);
    assert!(erin.id > dora.id, "ids are not reused");
    app.store.delete_user(&realm, &name("alice")).await.unwrap();
    assert!(app
        .store
        .list_tokens(&realm, None)
        .await
        .unwrap()
        .is_empty());
}
