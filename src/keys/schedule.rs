//! Which of a realm's keys signs, which are published, and which are retired, at a given moment: a
//! pure function of the stored schedule (activation and revocation times) and the clock, so every
//! instance that has read the same records signs with the same key at the same moment.
//!
//! A key *took effect* when its activation time has come and it was not revoked before then. The
//! last key to take effect (by activation time, then generation) signs, unless it is revoked; the
//! ones before it are superseded and stay published until the tokens they signed have expired
//! (the realm's token lifetime plus the registries' 60 s leeway), then they are retired. A key
//! whose activation time is still ahead is pending: published (so registries that read a JWKS or
//! bundle file can learn it) but not signing.

/// The part of a key's record the schedule reads. Times are Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub generation: i64,
    pub activate_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A key's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, signs from `activates_at_ms`.
    Pending {
        activates_at_ms: i64,
    },
    /// Signs.
    Active,
    /// Superseded at `since_ms`; published until `retires_at_ms`.
    Superseded {
        since_ms: i64,
        retires_at_ms: i64,
    },
    /// Superseded, and every token it signed has expired.
    Retired {
        since_ms: i64,
    },
    Revoked {
        at_ms: i64,
    },
}

impl KeyState {
    /// In the JWKS and the certificate bundle.
    pub fn is_published(self) -> bool {
        matches!(
            self,
            KeyState::Pending { .. } | KeyState::Active | KeyState::Superseded { .. }
        )
    }

    /// May still sign now or later, so its private key is loaded.
    pub fn may_sign(self) -> bool {
        matches!(self, KeyState::Pending { .. } | KeyState::Active)
    }

    /// The word `keys list` shows.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Pending { .. } => "pending",
            KeyState::Active => "active",
            KeyState::Superseded { .. } => "published",
            KeyState::Retired { .. } => "retired",
            KeyState::Revoked { .. } => "revoked",
        }
    }
}

fn took_effect(entry: &Entry, now_ms: i64) -> bool {
    entry.activate_at_ms <= now_ms
        && entry
            .revoked_at_ms
            .is_none_or(|revoked| revoked > entry.activate_at_ms)
}

fn is_revoked(entry: &Entry, now_ms: i64) -> bool {
    entry.revoked_at_ms.is_some_and(|revoked| revoked <= now_ms)
}

/// The keys that took effect by `now_ms`, as indexes into `entries`, in the order they did.
fn effective(entries: &[Entry], now_ms: i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| took_effect(&entries[i], now_ms))
        .collect();
    order.sort_by_key(|&i| (entries[i].activate_at_ms, entries[i].generation));
    order
}

/// The index of the key that signs at `now_ms`, if any does. On every token request, so it
/// allocates nothing.
pub fn active(entries: &[Entry], now_ms: i64) -> Option<usize> {
    let last = (0..entries.len())
        .filter(|&i| took_effect(&entries[i], now_ms))
        .max_by_key(|&i| (entries[i].activate_at_ms, entries[i].generation))?;
    (!is_revoked(&entries[last], now_ms)).then_some(last)
}

/// Every key's state at `now_ms`, in the order of `entries`. `retire_after_ms` is how long a
/// superseded key stays published: the longest token lifetime plus the registries' leeway.
pub fn states(entries: &[Entry], now_ms: i64, retire_after_ms: i64) -> Vec<KeyState> {
    let order = effective(entries, now_ms);
    let mut superseded_at = vec![None; entries.len()];
    for pair in order.windows(2) {
        superseded_at[pair[0]] = Some(entries[pair[1]].activate_at_ms);
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| match entry.revoked_at_ms {
            Some(at_ms) if at_ms <= now_ms => KeyState::Revoked { at_ms },
            _ if entry.activate_at_ms > now_ms => KeyState::Pending {
                activates_at_ms: entry.activate_at_ms,
            },
            _ => match superseded_at[i] {
                None => KeyState::Active,
                Some(since_ms) if now_ms < since_ms + retire_after_ms => KeyState::Superseded {
                    since_ms,
                    retires_at_ms: since_ms + retire_after_ms,
                },
                Some(since_ms) => KeyState::Retired { since_ms },
            },
        })
        .collect()
}

/// When the schedule next changes by itself after `now_ms` (a pending key activates or a
/// superseded key retires), if ever.
pub fn next_change(entries: &[Entry], now_ms: i64, retire_after_ms: i64) -> Option<i64> {
    states(entries, now_ms, retire_after_ms)
        .into_iter()
        .filter_map(|state| match state {
            KeyState::Pending { activates_at_ms } => Some(activates_at_ms),
            KeyState::Superseded { retires_at_ms, .. } => Some(retires_at_ms),
            _ => None,
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETIRE: i64 = 360_000;

    fn entry(generation: i64, activate_at_ms: i64, revoked_at_ms: Option<i64>) -> Entry {
        Entry {
            generation,
            activate_at_ms,
            revoked_at_ms,
        }
    }

    #[test]
    fn the_last_key_to_take_effect_signs_and_the_one_before_stays_published_then_retires() {
        let keys = [entry(1, 0, None), entry(2, 10_000, None)];
        assert_eq!(active(&keys, 9_999), Some(0));
        assert_eq!(
            states(&keys, 9_999, RETIRE),
            [
                KeyState::Active,
                KeyState::Pending {
                    activates_at_ms: 10_000
                }
            ]
        );
        assert_eq!(active(&keys, 10_000), Some(1));
        assert_eq!(
            states(&keys, 10_000, RETIRE)[0],
            KeyState::Superseded {
                since_ms: 10_000,
                retires_at_ms: 10_000 + RETIRE
            }
        );
        assert!(states(&keys, 10_000 + RETIRE - 1, RETIRE)[0].is_published());
        assert_eq!(
            states(&keys, 10_000 + RETIRE, RETIRE)[0],
            KeyState::Retired { since_ms: 10_000 }
        );
        assert_eq!(next_change(&keys, 5, RETIRE), Some(10_000));
        assert_eq!(next_change(&keys, 10_000, RETIRE), Some(10_000 + RETIRE));
        assert_eq!(next_change(&keys, 10_000 + RETIRE, RETIRE), None);
    }

    #[test]
    fn a_revoked_key_never_signs_and_a_key_revoked_while_pending_never_took_effect() {
        // Key 2 revoked before its activation: key 1 keeps signing and is not superseded.
        let keys = [entry(1, 0, None), entry(2, 10_000, Some(5_000))];
        assert_eq!(active(&keys, 20_000), Some(0));
        assert_eq!(
            states(&keys, 20_000, RETIRE),
            [KeyState::Active, KeyState::Revoked { at_ms: 5_000 }]
        );
        // The active key revoked with no successor: nothing signs, and the key before it does
        // not come back.
        let keys = [entry(1, 0, None), entry(2, 10_000, Some(20_000))];
        assert_eq!(active(&keys, 19_999), Some(1));
        assert_eq!(active(&keys, 20_000), None);
        assert!(!states(&keys, 20_000, RETIRE)[1].is_published());
        // Revoked and replaced in the same millisecond: the replacement signs.
        let keys = [entry(1, 0, Some(20_000)), entry(2, 20_000, None)];
        assert_eq!(active(&keys, 20_000), Some(1));
        assert_eq!(
            states(&keys, 20_000, RETIRE)[0],
            KeyState::Revoked { at_ms: 20_000 }
        );
    }

    #[test]
    fn a_pending_key_activated_early_signs_and_order_is_by_activation_then_generation() {
        let keys = [
            entry(1, 0, None),
            entry(2, 1_000, None),
            entry(3, 1_000, None),
        ];
        assert_eq!(active(&keys, 1_000), Some(2));
        let states = states(&keys, 1_000, RETIRE);
        assert_eq!(
            states[1],
            KeyState::Superseded {
                since_ms: 1_000,
                retires_at_ms: 1_000 + RETIRE
            }
        );
        assert_eq!(states.iter().filter(|s| **s == KeyState::Active).count(), 1);
        assert_eq!(active(&[], 0), None);
    }

    proptest::proptest! {
        /// The key `active` picks is the one `states` calls active, there is at most one, and only
        /// a published key signs.
        #[test]
        fn active_agrees_with_states(
            keys in proptest::collection::vec((0i64..50, proptest::option::of(0i64..50)), 0..6),
            now in 0i64..60,
        ) {
            let entries: Vec<Entry> = keys
                .iter()
                .enumerate()
                .map(|(i, (activate, revoked))| entry(i as i64 + 1, *activate, *revoked))
                .collect();
            let states = states(&entries, now, 10);
            let actives: Vec<usize> = (0..entries.len())
                .filter(|&i| states[i] == KeyState::Active)
                .collect();
            proptest::prop_assert!(actives.len() <= 1);
            proptest::prop_assert_eq!(active(&entries, now), actives.first().copied());
            if let Some(i) = active(&entries, now) {
                proptest::prop_assert!(states[i].is_published() && states[i].may_sign());
            }
        }
    }
}
