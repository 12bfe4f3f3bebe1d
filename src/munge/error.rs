//! Why a credential was refused, numbered as munged numbers it (`munge_err_t` in `munge.h`, also
//! `unmunge`'s exit status). Texts follow munged's; none of them says which key was tried.

use thiserror::Error;

/// A refused credential. [`MungeError::code`] is munged's error number for the same refusal.
///
/// `CredInvalid` deliberately says nothing more: a bad CBC padding and a wrong MAC must look alike,
/// or the decoder becomes a padding oracle.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MungeError {
    /// `EMUNGE_BAD_ARG`: the input is empty or only whitespace.
    #[error("Invalid argument: no credential specified")]
    BadArg,
    /// `EMUNGE_BAD_LENGTH`: the armored credential or its payload is over munge's limits.
    #[error("Exceeded maximum message length: {0}")]
    BadLength(&'static str),
    /// `EMUNGE_BAD_CRED`: malformed armor, base64 or field layout; the text names the field.
    #[error("Invalid credential format: {0}")]
    BadCred(&'static str),
    /// `EMUNGE_BAD_VERSION`: the version byte is not 3.
    #[error("Invalid credential version {0}")]
    BadVersion(u8),
    /// `EMUNGE_BAD_CIPHER`: the cipher byte names no cipher munge decodes.
    #[error("Invalid cipher type {0}")]
    BadCipher(u8),
    /// `EMUNGE_BAD_MAC`: the MAC byte names no MAC, or a MAC too short to key the cipher.
    #[error("Invalid MAC type {mac}{}", with_cipher(*.cipher))]
    BadMac {
        /// The MAC byte as found.
        mac: u8,
        /// The cipher byte, when the MAC is valid but too short for that cipher's key.
        cipher: Option<u8>,
    },
    /// `EMUNGE_BAD_ZIP`: the compression byte names no compression munge decodes.
    #[error("Invalid compression type {0}")]
    BadZip(u8),
    /// `EMUNGE_CRED_INVALID`: no key's MAC matches, or the padding is wrong (indistinguishably),
    /// or a MAC-verified body does not decompress.
    #[error("Invalid credential")]
    CredInvalid,
    /// `EMUNGE_CRED_EXPIRED`: decoded after `encode_time + ttl`.
    #[error("Expired credential")]
    Expired,
    /// `EMUNGE_CRED_REWOUND`: decoded before `encode_time - ttl` (a clock running ahead).
    #[error("Rewound credential")]
    Rewound,
    /// `EMUNGE_CRED_REPLAYED`: never returned by [`decode`](super::decode); for the caller's replay
    /// cache to report a second use of the same [`replay_key`](super::Credential::replay_key).
    #[error("Replayed credential")]
    Replayed,
    /// `EMUNGE_CRED_UNAUTHORIZED`: restricted to a uid or gid this decoder does not have, or
    /// unrestricted where the policy requires a restriction.
    #[error("Unauthorized credential")]
    Unauthorized,
}

impl MungeError {
    /// munged's error number for this refusal (`EMUNGE_*` in `munge.h`).
    pub fn code(&self) -> u8 {
        match self {
            MungeError::BadArg => 2,
            MungeError::BadLength(_) => 3,
            MungeError::BadCred(_) => 8,
            MungeError::BadVersion(_) => 9,
            MungeError::BadCipher(_) => 10,
            MungeError::BadMac { .. } => 11,
            MungeError::BadZip(_) => 12,
            MungeError::CredInvalid => 14,
            MungeError::Expired => 15,
            MungeError::Rewound => 16,
            MungeError::Replayed => 17,
            MungeError::Unauthorized => 18,
        }
    }
}

fn with_cipher(cipher: Option<u8>) -> String {
    cipher.map_or_else(String::new, |c| format!(" with cipher type {c}"))
}

#[cfg(test)]
mod tests {
    use super::MungeError;

    #[test]
    fn codes_are_munged_numbers() {
        let cases = [
            (MungeError::BadArg, 2),
            (MungeError::BadLength("x"), 3),
            (MungeError::BadCred("x"), 8),
            (MungeError::BadVersion(1), 9),
            (MungeError::BadCipher(1), 10),
            (
                MungeError::BadMac {
                    mac: 0,
                    cipher: None,
                },
                11,
            ),
            (MungeError::BadZip(1), 12),
            (MungeError::CredInvalid, 14),
            (MungeError::Expired, 15),
            (MungeError::Rewound, 16),
            (MungeError::Replayed, 17),
            (MungeError::Unauthorized, 18),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn texts_follow_munged() {
        assert_eq!(
            MungeError::BadMac {
                mac: 2,
                cipher: Some(5)
            }
            .to_string(),
            "Invalid MAC type 2 with cipher type 5"
        );
        assert_eq!(
            MungeError::BadMac {
                mac: 9,
                cipher: None
            }
            .to_string(),
            "Invalid MAC type 9"
        );
        assert_eq!(
            MungeError::BadCred("Truncated MAC").to_string(),
            "Invalid credential format: Truncated MAC"
        );
        assert_eq!(MungeError::CredInvalid.to_string(), "Invalid credential");
    }
}
