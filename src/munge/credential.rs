//! A decoded, verified credential: who made it, on which platform, when, for whom, and its payload.
//! Only [`decode`](super::decode) builds one, so holding one means every check passed.

use std::fmt;
use std::net::Ipv4Addr;

use super::algorithms::{Cipher, Mac, Zip};
use super::outer::REPLAY_KEY_LEN;

/// A credential that passed every check of [`decode`](super::decode) except replay, which is the
/// caller's: store [`replay_key`](Credential::replay_key) until [`expires_at`](Credential::expires_at)
/// and refuse a second use with [`MungeError::Replayed`](super::MungeError::Replayed).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub(super) platform: String,
    pub(super) cipher: Cipher,
    pub(super) mac: Mac,
    pub(super) zip: Zip,
    pub(super) realm: Option<Vec<u8>>,
    pub(super) origin: Option<Ipv4Addr>,
    pub(super) encode_time: u32,
    pub(super) ttl_secs: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) restrict_uid: Option<u32>,
    pub(super) restrict_gid: Option<u32>,
    pub(super) payload: Vec<u8>,
    pub(super) replay_key: [u8; REPLAY_KEY_LEN],
    pub(super) expires_at: u64,
}

impl Credential {
    /// Name of the platform whose key verified the credential.
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// Cipher the body was encrypted with.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// MAC the credential was signed with.
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Compression applied to the body (munged drops it when it would not shrink the body, so a
    /// small credential says `none` even when `munge -z` asked for one).
    pub fn zip(&self) -> Zip {
        self.zip
    }

    /// Security realm bytes as sent, NUL included when present; munge 0.5 never sets one.
    pub fn realm(&self) -> Option<&[u8]> {
        self.realm.as_deref()
    }

    /// IPv4 address of the host that encoded the credential, when munged recorded one.
    pub fn origin(&self) -> Option<Ipv4Addr> {
        self.origin
    }

    /// When the credential was encoded, in Unix seconds.
    pub fn encode_time(&self) -> u32 {
        self.encode_time
    }

    /// Time-to-live in seconds, capped at the policy's `max_ttl_secs` as munged caps it.
    pub fn ttl_secs(&self) -> u32 {
        self.ttl_secs
    }

    /// The uid of the process that encoded the credential.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The gid of the process that encoded the credential.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The only uid allowed to decode it (`munge -u`), or `None` for anyone.
    pub fn restrict_uid(&self) -> Option<u32> {
        self.restrict_uid
    }

    /// The only gid allowed to decode it (`munge -g`), or `None` for anyone.
    pub fn restrict_gid(&self) -> Option<u32> {
        self.restrict_gid
    }

    /// The payload (may be empty; at most 1 MiB).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload, by value.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// First 16 bytes of the MAC: the key munged's replay cache uses for this credential.
    pub fn replay_key(&self) -> [u8; REPLAY_KEY_LEN] {
        self.replay_key
    }

    /// Last Unix second at which the credential decodes (`encode_time + ttl + clock skew`); a
    /// replay cache must keep its entry until then.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Shows the payload's length only: a privileged request's payload carries registry passwords.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("platform", &self.platform)
            .field("cipher", &self.cipher)
            .field("mac", &self.mac)
            .field("zip", &self.zip)
            .field("realm", &self.realm)
            .field("origin", &self.origin)
            .field("encode_time", &self.encode_time)
            .field("ttl_secs", &self.ttl_secs)
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("restrict_uid", &self.restrict_uid)
            .field("restrict_gid", &self.restrict_gid)
            .field("payload_len", &self.payload.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
