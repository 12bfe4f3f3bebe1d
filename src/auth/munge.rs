//! The MUNGE front door: per realm, the platforms whose credentials it accepts (keys loaded once),
//! how a credential reaches us (the `authentication` header, or a Basic password in the shapes
//! Shifter's code sends), and which `authorized_locations` entry is ours. Deciding who the caller
//! is from a decoded credential is `authn`'s job; decoding is `munge`'s.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::Settings;
use crate::domain::RealmName;
use crate::munge::{decode, Credential, DecodePolicy, KeyFileError, MungeError, MungeKey};

/// Armor prefix and suffix of a credential.
const ARMOR_PREFIX: &str = "MUNGE:";
const ARMOR_SUFFIX: &str = ":";
/// The prefix left when Shifter's code strips the colons.
const STRIPPED_PREFIX: &str = "MUNGE";
/// The entry of `authorized_locations` a gateway uses for its default location.
pub const DEFAULT_LOCATION: &str = "default";

/// A platform's key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("realms.{realm}.munge platform {platform:?}: {error}")]
pub struct DoorError {
    realm: String,
    platform: String,
    error: KeyFileError,
}

struct Platform {
    name: String,
    key: MungeKey,
    policy: DecodePolicy,
}

/// One realm's front door.
pub struct RealmDoor {
    platforms: Vec<Platform>,
    locations: Vec<String>,
    default_location: bool,
}

/// The privileged payload a gateway sends: the user's registry credentials per location, and
/// optionally the one use the credential is for.
#[derive(Debug, Deserialize)]
pub struct Payload {
    #[serde(default)]
    pub authorized_locations: HashMap<String, String>,
    pub service: Option<String>,
    pub scope: Option<String>,
}

impl RealmDoor {
    /// Decodes a credential with each platform's key; the platform is the one whose MAC verifies.
    pub fn decode(&self, armored: &str, now: u64) -> Result<Credential, MungeError> {
        let mut result = Err(MungeError::CredInvalid);
        for platform in &self.platforms {
            result = decode(
                armored,
                &[(&platform.name, &platform.key)],
                now,
                &platform.policy,
            );
            if !matches!(result, Err(MungeError::CredInvalid)) {
                break;
            }
        }
        result
    }

    /// Our entry of `authorized_locations`: one naming a location of this realm, else `default`
    /// when this realm is the gateway's default location.
    pub fn choose<'a>(&self, locations: &'a HashMap<String, String>) -> Option<&'a str> {
        self.locations
            .iter()
            .find_map(|name| locations.get(name))
            .or_else(|| {
                self.default_location
                    .then(|| locations.get(DEFAULT_LOCATION))
                    .flatten()
            })
            .map(String::as_str)
    }
}

/// Every realm's front door, from the configuration.
#[derive(Default)]
pub struct MungeDoors {
    realms: HashMap<RealmName, RealmDoor>,
}

impl MungeDoors {
    /// Loads every configured platform key; a short or exposed key stops the start.
    pub fn load(settings: &Settings) -> Result<MungeDoors, DoorError> {
        let mut realms = HashMap::new();
        for (name, realm) in &settings.realms {
            let (Some(munge), Ok(realm_name)) = (&realm.munge, RealmName::parse(name)) else {
                continue;
            };
            let platforms = munge
                .platforms
                .iter()
                .map(|p| {
                    let key = MungeKey::from_file(&p.key_file).map_err(|error| DoorError {
                        realm: name.clone(),
                        platform: p.name.clone(),
                        error,
                    })?;
                    Ok(Platform {
                        name: p.name.clone(),
                        key,
                        policy: DecodePolicy {
                            max_ttl_secs: p.max_ttl_secs,
                            clock_skew_secs: p.clock_skew_secs,
                            decoder_uid: munge.service_uid,
                            decoder_gid: munge.service_gid,
                            require_restriction: munge.require_restriction,
                        },
                    })
                })
                .collect::<Result<Vec<_>, DoorError>>()?;
            realms.insert(
                realm_name,
                RealmDoor {
                    platforms,
                    locations: munge.locations.clone(),
                    default_location: munge.default_location,
                },
            );
        }
        Ok(MungeDoors { realms })
    }

    /// The realm's door, when it accepts MUNGE credentials.
    pub fn realm(&self, realm: &RealmName) -> Option<&RealmDoor> {
        self.realms.get(realm)
    }
}

/// A credential as carried in a header or password, restored to its armored form: as is, or with
/// the colons Shifter's code strips put back (base64 has no `:`). `None` when it is not one.
pub fn armored(text: &str) -> Option<String> {
    let text = text.trim();
    if text.starts_with(ARMOR_PREFIX) {
        Some(text.to_owned())
    } else if let Some(rest) = text.strip_prefix(STRIPPED_PREFIX) {
        (!rest.is_empty() && !rest.contains(':'))
            .then(|| format!("{ARMOR_PREFIX}{rest}{ARMOR_SUFFIX}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriers_are_restored() {
        assert_eq!(armored("MUNGE:AwQ=:").as_deref(), Some("MUNGE:AwQ=:"));
        assert_eq!(armored(" MUNGEAwQ= ").as_deref(), Some("MUNGE:AwQ=:"));
        assert_eq!(armored("MUNGE"), None);
        assert_eq!(armored("password"), None);
        assert_eq!(armored("MUNGEa:b"), None);
    }

    #[test]
    fn the_specific_location_wins_over_default() {
        let door = RealmDoor {
            platforms: Vec::new(),
            locations: vec!["registry.example.org".into()],
            default_location: true,
        };
        let both: HashMap<String, String> = [
            ("default".to_owned(), "bob:x".to_owned()),
            ("registry.example.org".to_owned(), "alice:y".to_owned()),
        ]
        .into();
        assert_eq!(door.choose(&both), Some("alice:y"));
        let only_default: HashMap<String, String> =
            [("default".to_owned(), "bob:x".to_owned())].into();
        assert_eq!(door.choose(&only_default), Some("bob:x"));
        let not_default = RealmDoor {
            default_location: false,
            ..door
        };
        assert_eq!(not_default.choose(&only_default), None);
    }
}
