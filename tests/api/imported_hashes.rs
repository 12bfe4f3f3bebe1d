//! Imported bcrypt hashes at login: one whose cost is above the maximum never matches and is
//! answered at the cost of an ordinary check, not after the hours its cost would take.

use std::time::{Duration, Instant};

use crate::api::helpers::{realm_name, TestApp};
use crate::on_both_engines;
use portcullis::names::Username;
use portcullis::store::Role;

on_both_engines!(a_too_costly_bcrypt_hash_is_refused_at_once);

/// `htpasswd -nbB -C 5 alice 'correct horse'`.
const ALICE_COST_5: &str = "$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.";

/// Cost 31 takes days per check; "at once" is anything far below that, with room for a loaded
/// machine.
const PROMPT: Duration = Duration::from_secs(10);

async fn a_too_costly_bcrypt_hash_is_refused_at_once(app: TestApp) {
    let realm = realm_name("default");
    let costly = ALICE_COST_5.replacen("$2y$05$", "$2y$31$", 1);
    for (name, hash) in [("alice", ALICE_COST_5.to_owned()), ("slow", costly)] {
        app.store
            .create_user(
                &realm,
                &Username::parse(name).unwrap(),
                Some(&hash),
                Role::User,
            )
            .await
            .unwrap();
    }
    let login = async |user: &str| {
        let started = Instant::now();
        let status = app
            .get_token("service=registry", Some((user, "correct horse")))
            .await
            .status()
            .as_u16();
        assert!(
            started.elapsed() < PROMPT,
            "{user}: {:?}",
            started.elapsed()
        );
        status
    };
    assert_eq!(
        login("alice").await,
        200,
        "an ordinary imported hash logs in"
    );
    for _ in 0..2 {
        assert_eq!(login("slow").await, 401);
    }
    assert_eq!(login("alice").await, 200, "the password threads are free");
}
