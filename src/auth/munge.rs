//! The MUNGE front door: per realm, the platforms whose credentials it accepts (keys loaded once),
//! how a credential reaches us (the `authentication` header, or a Basic password in the shapes
//! Shifter's code sends), which `authorized_locations` entry is ours, and who the caller is: a
//! mapped uid, or the password or token our entry carries. Decoding is the `crate::munge` library's.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{principal, Authenticator, AuthnError, Credentials, Method, Principal, Request};
use crate::config::Settings;
use crate::munge::{decode, Credential, DecodePolicy, KeyFileError, MungeError, MungeKey};
use crate::names::RealmName;
use crate::scope;
use crate::store::{unix_now, TokenKind};

/// Armor prefix and suffix of a credential.
const ARMOR_PREFIX: &str = "MUNGE:";
const ARMOR_SUFFIX: &str = ":";
/// The prefix left when Shifter's code strips the colons.
const STRIPPED_PREFIX: &str = "MUNGE";
/// The header image gateways carry MUNGE credentials in.
pub const MUNGE_HEADER: &str = "authentication";
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

impl Authenticator {
    /// A MUNGE credential: decoded with the realm's platform keys, used once, then either its uid
    /// (empty payload) is mapped to a user, or our `authorized_locations` entry is checked exactly as
    /// Basic credentials would be.
    pub(super) async fn munge(
        &self,
        request: &Request<'_>,
        credential: &SecretString,
    ) -> Result<Principal, AuthnError> {
        let realm = request.realm;
        let Some(door) = self.doors.realm(&realm.name) else {
            return Err(AuthnError::Rejected("munge: not accepted in this realm"));
        };
        let now = unix_now();
        let decoded = door
            .decode(
                credential.expose_secret(),
                u64::try_from(now).unwrap_or_default(),
            )
            .map_err(|error| AuthnError::Rejected(munge_reason(&error)))?;
        let replay_key = data_encoding::HEXLOWER.encode(&decoded.replay_key());
        let expires_at = i64::try_from(decoded.expires_at()).unwrap_or(i64::MAX);
        if !self
            .store
            .record_munge_use(&replay_key, expires_at, now)
            .await?
        {
            return Err(AuthnError::Rejected("munge: credential replayed"));
        }
        let platform = decoded.platform().to_owned();
        let mut principal = if decoded.payload().is_empty() {
            let account = self
                .accounts
                .munge_user(request.counters, &realm.name, &platform, decoded.uid())
                .await?;
            let Some(account) = account else {
                tracing::warn!(target: "audit", event = "munge_uid_unmapped", realm = %realm.name, platform = %platform, uid = decoded.uid(), "munge: unmapped uid");
                return Err(AuthnError::Rejected("munge: unmapped uid"));
            };
            if account.record.disabled {
                return Err(AuthnError::Rejected("user disabled"));
            }
            let groups = self.source_groups(&realm.name, &account).await?;
            principal(&account, Method::Munge, None, groups)
        } else {
            self.munge_payload(request, door, decoded.payload()).await?
        };
        principal.method = Method::Munge;
        principal.platform = Some(platform);
        Ok(principal)
    }

    /// A privileged credential's payload: bound to this use if it says so, carrying our location's
    /// `user:password` (split at the first colon; passwords may hold colons).
    async fn munge_payload(
        &self,
        request: &Request<'_>,
        door: &RealmDoor,
        payload: &[u8],
    ) -> Result<Principal, AuthnError> {
        let binding = request.binding;
        let payload: Payload = serde_json::from_slice(payload)
            .map_err(|_| AuthnError::Rejected("munge: payload is not the gateway's JSON"))?;
        if payload
            .service
            .as_deref()
            .is_some_and(|service| service != binding.service)
        {
            return Err(AuthnError::Rejected(
                "munge: credential bound to another service",
            ));
        }
        if let Some(scope) = &payload.scope {
            let bound = scope::parse_all([scope.as_str()]).map_err(|_| {
                AuthnError::Rejected("munge: credential bound to a malformed scope")
            })?;
            if bound != binding.scopes {
                return Err(AuthnError::Rejected(
                    "munge: credential bound to another scope",
                ));
            }
        }
        let entry = door
            .choose(&payload.authorized_locations)
            .ok_or(AuthnError::Rejected(
                "munge: no authorized location for this registry",
            ))?;
        let (username, secret) = entry.split_once(':').ok_or(AuthnError::Rejected(
            "munge: location entry is not user:password",
        ))?;
        match Credentials::from_user_and_secret(username.to_owned(), SecretString::from(secret)) {
            Credentials::Password { username, password } => {
                self.password(request, &username, password).await
            }
            Credentials::AccessToken { username, token } => {
                self.token(request, TokenKind::Access, Some(&username), &token)
                    .await
            }
            Credentials::RefreshToken { username, token } => {
                self.token(request, TokenKind::Refresh, username.as_deref(), &token)
                    .await
            }
            Credentials::Anonymous | Credentials::Munge { .. } | Credentials::Oidc { .. } => Err(
                AuthnError::Rejected("munge: location entry holds no password"),
            ),
        }
    }
}

/// The audit reason for a refused MUNGE credential, by munged's error.
fn munge_reason(error: &MungeError) -> &'static str {
    match error {
        MungeError::Expired => "munge: credential expired",
        MungeError::Rewound => "munge: credential rewound (encoded in the future)",
        MungeError::Replayed => "munge: credential replayed",
        MungeError::Unauthorized => "munge: credential restricted to another uid or gid",
        MungeError::CredInvalid => "munge: invalid credential (no platform key verifies it)",
        MungeError::BadVersion(_) => "munge: unsupported credential version",
        MungeError::BadCipher(_) => "munge: unsupported cipher",
        MungeError::BadMac { .. } => "munge: unsupported MAC",
        MungeError::BadZip(_) => "munge: unsupported compression",
        MungeError::BadArg | MungeError::BadLength(_) | MungeError::BadCred(_) => {
            "munge: malformed credential"
        }
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
