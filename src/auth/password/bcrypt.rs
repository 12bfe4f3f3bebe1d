//! bcrypt hashes imported from htpasswd files and docker_auth: what counts as one, its cost, and
//! verification at login (the caller then replaces it with argon2id). A cost above [`MAX_COST`] is
//! never computed. Hashing new passwords is argon2id's job, never bcrypt's.

/// The bcrypt variants accepted: `$2a$`, `$2b$` and `$2y$` all mean the same algorithm for the
/// passwords a registry client can send (`$2x$`, the marker of crypt_blowfish's bug, is refused).
pub const PREFIXES: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
/// Length of a bcrypt hash string: `$2y$`, two cost digits, `$`, 22 salt and 31 hash characters.
const HASH_LEN: usize = 60;
/// Lowest and highest cost bcrypt defines (the exponent of its key-setup rounds).
const COSTS: std::ops::RangeInclusive<u32> = 4..=31;
/// Highest bcrypt cost imported or checked at login. Each step doubles a check's time: with the
/// `bcrypt` crate (release build, AMD EPYC) cost 12 took about 0.5 s, ten argon2id checks at the
/// default parameters, and cost 14 about 2 s; cost 31 would hold a password thread for days.
/// `htpasswd -B` uses cost 5 by default, Go's bcrypt 10.
pub const MAX_COST: u32 = 14;

/// A string that is not a usable bcrypt hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// It does not start with one of the [`PREFIXES`].
    #[error("not a bcrypt hash")]
    NotBcrypt,
    /// It starts like one, but its cost, length or characters are wrong.
    #[error("malformed bcrypt hash")]
    Malformed,
}

/// Whether `hash` claims to be bcrypt (starts with one of the [`PREFIXES`]).
pub fn is_bcrypt(hash: &str) -> bool {
    PREFIXES.iter().any(|prefix| hash.starts_with(prefix))
}

/// The cost of a well-formed bcrypt hash of an accepted variant (any cost bcrypt defines).
pub fn cost(hash: &str) -> Result<u32, HashError> {
    if !is_bcrypt(hash) {
        return Err(HashError::NotBcrypt);
    }
    let cost = hash
        .get(4..6)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(HashError::Malformed)?;
    let body = &hash[6..];
    match cost.parse().ok().filter(|c: &u32| COSTS.contains(c)) {
        Some(cost)
            if hash.len() == HASH_LEN
                && body.starts_with('$')
                && body[1..].bytes().all(is_crypt_char) =>
        {
            Ok(cost)
        }
        _ => Err(HashError::Malformed),
    }
}

/// The cost of a well-formed bcrypt hash of an accepted variant whose cost is above [`MAX_COST`];
/// `None` for every other string.
pub fn cost_above_max(hash: &str) -> Option<u32> {
    cost(hash).ok().filter(|&cost| cost > MAX_COST)
}

/// Whether `password` matches a bcrypt hash (`$2a$`, `$2b$` or `$2y$`). Like Apache and Go, bcrypt
/// uses only the first 72 bytes of a password. False for anything that is not such a hash, and
/// without computing anything for a cost above [`MAX_COST`].
pub fn verify(hash: &str, password: &str) -> bool {
    cost(hash).is_ok_and(|cost| cost <= MAX_COST)
        && ::bcrypt::verify(password, hash).unwrap_or(false)
}

/// The characters of crypt's base64 (salts and hashes of bcrypt and DES crypt).
pub fn is_crypt_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `htpasswd -nbB alice 'correct horse'`.
    const ALICE: &str = "$2y$05$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.";

    #[test]
    fn verifies_every_accepted_variant() {
        for prefix in PREFIXES {
            let hash = format!("{prefix}{}", &ALICE[4..]);
            assert!(verify(&hash, "correct horse"), "{hash}");
            assert!(!verify(&hash, "correct horsE"), "{hash}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_accepted_hash() {
        let twox = format!("$2x${}", &ALICE[4..]);
        for bad in [
            "",
            "correct horse",
            &twox,
            &ALICE[..59],
            "$2y$99$.F/eXShFYDCpe3Z6LQKsBO5diCtVmXK9.xmCxy8/kQ4oyasHhZkq.",
        ] {
            assert!(!verify(bad, "correct horse"), "{bad}");
        }
        assert_eq!(cost(&twox), Err(HashError::NotBcrypt));
        assert_eq!(cost("$2y$05$short"), Err(HashError::Malformed));
        let non_ascii = format!("$2y$05${}é", &ALICE[7..58]);
        assert_eq!(cost(&non_ascii), Err(HashError::Malformed));
    }

    #[test]
    fn costs_above_the_maximum_are_never_computed() {
        let with_cost = |cost: u32| format!("$2y${cost:02}{}", &ALICE[6..]);
        assert_eq!(cost_above_max(&with_cost(MAX_COST)), None);
        assert_eq!(cost_above_max(&with_cost(4)), None);
        assert_eq!(cost_above_max(ALICE), None);
        assert_eq!(cost_above_max("garbage"), None);
        for cost in [MAX_COST + 1, 31] {
            let hash = with_cost(cost);
            assert_eq!(cost_above_max(&hash), Some(cost));
            // Cost 31 would take days: returning at all shows nothing was computed.
            assert!(!verify(&hash, "correct horse"));
        }
    }
}
