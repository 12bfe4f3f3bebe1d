//! [`decode`]: munged's decode steps in munged's order, with munged's error numbers, against a set
//! of platform keys and a [`DecodePolicy`]. It keeps no state: replay is the caller's.

use zeroize::Zeroizing;

use super::armor::unarmor;
use super::credential::Credential;
use super::crypto::{decrypt, hmac, hmac_matches};
use super::error::MungeError;
use super::inner::Inner;
use super::key::MungeKey;
use super::outer::Outer;
use super::zip::decompress;

/// munged's largest time-to-live, in seconds (`MUNGE_MAXIMUM_TTL` in `munge_defs.h`, munged's
/// `--max-ttl` default).
pub const MAX_TTL_SECS: u32 = 3600;

/// What a decoder accepts beyond a well-formed, correctly signed credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodePolicy {
    /// Largest time-to-live honoured, in seconds; a credential claiming more is given this much,
    /// as munged's `--max-ttl` does. Default [`MAX_TTL_SECS`].
    pub max_ttl_secs: u32,
    /// Extra seconds accepted at both ends of munged's window `encode_time ± ttl`, for clocks
    /// that disagree by more than a ttl. Default 0: munged's window exactly.
    pub clock_skew_secs: u32,
    /// This decoder's uid, matched against a credential's uid restriction (`munge -u`). `None`
    /// means the decoder has no uid: a credential restricted to any uid is `Unauthorized`, since
    /// we are not that uid. Like munged, root (0) is not exempt.
    pub decoder_uid: Option<u32>,
    /// This decoder's gid, matched against a credential's gid restriction (`munge -g`). `None`
    /// means no gid: a credential restricted to any gid is `Unauthorized`.
    pub decoder_gid: Option<u32>,
    /// Refuse, as `Unauthorized`, a credential restricted to neither a uid nor a gid: anyone
    /// else on the platform could have decoded it and replayed it here.
    pub require_restriction: bool,
}

impl Default for DecodePolicy {
    fn default() -> DecodePolicy {
        DecodePolicy {
            max_ttl_secs: MAX_TTL_SECS,
            clock_skew_secs: 0,
            decoder_uid: None,
            decoder_gid: None,
            require_restriction: false,
        }
    }
}

/// Decodes an armored credential (`MUNGE:<base64>:`) at Unix time `now` (seconds).
///
/// The platform is the first of `keys` whose MAC verifies. The steps and their errors are
/// munged's, in munged's order (`dec_process_msg`):
/// 1. unarmor and base64 (`BadArg`, `BadLength`, `BadCred`);
/// 2. header: version, cipher, MAC and MAC-vs-cipher, compression, realm, IV, MAC length
///    (`BadVersion`, `BadCipher`, `BadMac`, `BadZip`, `BadCred`);
/// 3. for each key: decrypt, then the MAC over header and plaintext whatever the padding said;
///    bad padding and a bad MAC are both `CredInvalid`, and so is a MAC no key verifies;
/// 4. decompress, at most to the largest credential (`BadCred`, `BadLength`, `CredInvalid`);
/// 5. unpack the body, every length checked, nothing after the payload (`BadCred`, `BadLength`);
/// 6. uid and gid restrictions (`Unauthorized`);
/// 7. time window (`Expired`, `Rewound`).
///
/// Replay is not checked here: see [`Credential::replay_key`].
pub fn decode(
    armored: &str,
    keys: &[(&str, &MungeKey)],
    now: u64,
    policy: &DecodePolicy,
) -> Result<Credential, MungeError> {
    let bytes = unarmor(armored)?;
    let outer = Outer::parse(&bytes)?;
    let (platform, plaintext) = verify(&outer, keys)?;
    let inner_bytes = decompress(outer.zip, plaintext)?;
    let inner = Inner::parse(&inner_bytes)?;
    policy.check_restrictions(inner.restrict_uid, inner.restrict_gid)?;
    let ttl_secs = inner.ttl_secs.min(policy.max_ttl_secs);
    let expires_at = policy.check_time(inner.encode_time, ttl_secs, now)?;
    Ok(Credential {
        platform: platform.to_owned(),
        cipher: outer.cipher,
        mac: outer.mac,
        zip: outer.zip,
        realm: outer.realm.map(<[u8]>::to_vec),
        origin: inner.origin,
        encode_time: inner.encode_time,
        ttl_secs,
        uid: inner.uid,
        gid: inner.gid,
        restrict_uid: inner.restrict_uid,
        restrict_gid: inner.restrict_gid,
        payload: inner.payload.to_vec(),
        replay_key: outer.replay_key,
        expires_at,
    })
}

/// The first platform whose key verifies the credential, and the plaintext body it decrypts to.
///
/// munged's `dec_decrypt` + `dec_validate_mac`: the cipher key is the first key-length bytes of
/// `HMAC(dek_subkey, MAC)`; the MAC is `HMAC(mac_subkey, header || plaintext)`, computed even when
/// the padding is bad so the two failures cannot be told apart.
fn verify<'k>(
    outer: &Outer<'_>,
    keys: &[(&'k str, &MungeKey)],
) -> Result<(&'k str, Zeroizing<Vec<u8>>), MungeError> {
    for &(platform, key) in keys {
        let dek = hmac(outer.mac, key.dek_subkey(), &[outer.tag]);
        let decrypted = decrypt(outer.cipher, &dek, outer.iv, outer.body);
        let parts = [outer.header, decrypted.bytes.as_slice()];
        let mac_ok = hmac_matches(outer.mac, key.mac_subkey(), &parts, outer.tag);
        if mac_ok && decrypted.padding_ok {
            return Ok((platform, decrypted.bytes));
        }
    }
    Err(MungeError::CredInvalid)
}

impl DecodePolicy {
    /// munged's `dec_validate_auth` against this decoder's own uid and gid.
    fn check_restrictions(
        &self,
        restrict_uid: Option<u32>,
        restrict_gid: Option<u32>,
    ) -> Result<(), MungeError> {
        let unrestricted = restrict_uid.is_none() && restrict_gid.is_none();
        let uid_ok = restrict_uid.is_none() || restrict_uid == self.decoder_uid;
        let gid_ok = restrict_gid.is_none() || restrict_gid == self.decoder_gid;
        if (self.require_restriction && unrestricted) || !uid_ok || !gid_ok {
            return Err(MungeError::Unauthorized);
        }
        Ok(())
    }

    /// munged's `dec_validate_time`: valid from `encode_time - ttl` to `encode_time + ttl`, each
    /// end widened by the clock skew. Returns the last valid second.
    fn check_time(&self, encode_time: u32, ttl_secs: u32, now: u64) -> Result<u64, MungeError> {
        let leeway = u64::from(ttl_secs) + u64::from(self.clock_skew_secs);
        let encoded = u64::from(encode_time);
        let not_before = encoded.saturating_sub(leeway);
        let expires_at = encoded + leeway;
        if now < not_before {
            return Err(MungeError::Rewound);
        }
        if now > expires_at {
            return Err(MungeError::Expired);
        }
        Ok(expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, DecodePolicy, MAX_TTL_SECS};
    use crate::munge::{Cipher, Mac, MungeError, MungeKey, Zip};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use std::net::Ipv4Addr;

    /// Key file of the munged (0.5.15) that encoded the vectors below, all at `ENCODED`, by root.
    const KEY: &[u8] = b"portcullis munge decoder unit-test key, not secret\n";
    const ENCODED: u32 = 1_795_632_444;
    /// `munge -n`: munged's defaults, empty payload.
    const DEFAULTS_EMPTY: &str = "MUNGE:AwQFAADvAS9eFg2YAlM3kS2cOcVsyiK+qR3e9fVzuaJ8YQ8mVOC5cjriKmG9dJU33LHRUJXaO3MMXewS54fevew8+6bUszt+IVoW+AbdrZsDtAGV3Mc7WWDm44tT46opmyhrY1Q=:";
    /// `munge -c blowfish -m md5 -s JSON`.
    const BLOWFISH_MD5_JSON: &str = "MUNGE:AwICAADnmFOd8Bq9/MjKgDA7elMg/lA0emvlNTkqluyGkZ+9NahGswY6zEEnR79MWSx0nnbsZYPTFtZyM0JO3TOkoI1t7pzbCkTT31n1cXeaMhiE+fZJ7mQSu1c6V3ztHn7+piKLrYVOe+kOgcOxeqwU/qvtfEzSAmd1138=:";
    /// `munge -c none -m sha512 -z zlib` of `repeated()`.
    const CLEAR_SHA512_ZLIB: &str = "MUNGE:AwAGAwD8BCOPWi9aVvFbZyAem2D5aVCrZzwS2y451WbJihiTEZMlT64wBVe3uJ+q2bXIX/Vmo05FZH60Gy+yqbEXn5aPysrKygAAAZF4nOvZlafLeFGPj6WegYExm13XBkjpMEDBfygAimUUpaZnFpcUVSqMMmjKAACZmJzF:";
    /// `munge -c aes256 -m sha512 -z bzlib` of `repeated()`.
    const AES256_SHA512_BZLIB: &str = "MUNGE:AwUGAgACpQXKXQLYv1oV9x2q3cq5a01AFXbLhoRijLgCYIBwcwmgofhhHa+1Vsuj4Jbp6ORUQPG0quM/4mSaFnThC0rX36RXXTnTmKC1YeXhWhEhlspxpTSVA+jD5X9ML1RUBdKazOof2UqlvMQT6FWl46fQ/g4YoplIBplGCirZuOt25TWULuJLoGdlPDq3Lg4SIclI5fTIW85B9+CFJUk8HUu9kTxByytZpi9Pwznod0u5h3jI9XCXW4dzCc+Ee2dsO7zkOPRy5OBpu8VPu60lRbN1:";
    /// `munge -c cast5 -m ripemd160 -u 1234 -g 5678 -s JSON`.
    const CAST5_RIPEMD160_RESTRICTED: &str = "MUNGE:AwMEAACYd61S5UW4+eiOianM4v0GAH58e5iPOcnO76DkUWnfZNbcyzGvf9hLFbf9uwDLJDWdPzjgQ44D2Mu/Hyh4zwGfd8QwWQvA2z5gfdYM21iAr/yZA2W3IjYOe33XwptGBKdt671K3L6Is16J9dnEesTRFOfFUQZ1N/Uv1tyM:";
    const JSON: &[u8] = br#"{"authorized_locations":{"default":"alice:pa:ss"}}"#;

    fn repeated() -> Vec<u8> {
        b"registry ".repeat(40)
    }

    fn key() -> MungeKey {
        MungeKey::from_bytes(KEY).unwrap()
    }

    fn at_encode_time(
        armored: &str,
        policy: &DecodePolicy,
    ) -> Result<crate::munge::Credential, MungeError> {
        decode(armored, &[("hpc", &key())], u64::from(ENCODED), policy)
    }

    fn rearmor(bytes: &[u8]) -> String {
        format!("MUNGE:{}:", STANDARD.encode(bytes))
    }

    fn unarmored(armored: &str) -> Vec<u8> {
        let base64 = armored
            .strip_prefix("MUNGE:")
            .unwrap()
            .strip_suffix(':')
            .unwrap();
        STANDARD.decode(base64).unwrap()
    }

    #[test]
    fn munged_vectors_decode_field_by_field() {
        let policy = DecodePolicy::default();
        let cases = [
            (
                DEFAULTS_EMPTY,
                Cipher::Aes128,
                Mac::Sha256,
                Zip::None,
                Vec::new(),
            ),
            (
                BLOWFISH_MD5_JSON,
                Cipher::Blowfish,
                Mac::Md5,
                Zip::None,
                JSON.to_vec(),
            ),
            (
                CLEAR_SHA512_ZLIB,
                Cipher::None,
                Mac::Sha512,
                Zip::Zlib,
                repeated(),
            ),
            (
                AES256_SHA512_BZLIB,
                Cipher::Aes256,
                Mac::Sha512,
                Zip::Bzlib,
                repeated(),
            ),
        ];
        for (armored, cipher, mac, zip, payload) in cases {
            let credential = at_encode_time(armored, &policy).unwrap();
            assert_eq!(credential.platform(), "hpc");
            assert_eq!(
                (credential.cipher(), credential.mac(), credential.zip()),
                (cipher, mac, zip)
            );
            assert_eq!(
                credential.payload(),
                payload.as_slice(),
                "{cipher}/{mac}/{zip}"
            );
            assert_eq!((credential.uid(), credential.gid()), (0, 0));
            assert_eq!(
                (credential.restrict_uid(), credential.restrict_gid()),
                (None, None)
            );
            assert_eq!(credential.encode_time(), ENCODED);
            assert_eq!(credential.ttl_secs(), 300);
            assert_eq!(credential.expires_at(), u64::from(ENCODED) + 300);
            assert_eq!(credential.origin(), Some(Ipv4Addr::LOCALHOST));
            assert_eq!(credential.realm(), None);
            let header_len = 5 + cipher.block_len();
            assert_eq!(
                credential.replay_key().as_slice(),
                &unarmored(armored)[header_len..header_len + 16]
            );
        }
    }

    #[test]
    fn platform_is_the_key_that_verifies() {
        let other = MungeKey::from_bytes(&[b'o'; 64]).unwrap();
        let hpc = key();
        let now = u64::from(ENCODED);
        let policy = DecodePolicy::default();
        let keys = [("other", &other), ("hpc", &hpc)];
        let credential = decode(BLOWFISH_MD5_JSON, &keys, now, &policy).unwrap();
        assert_eq!(credential.platform(), "hpc");
        assert_eq!(
            decode(BLOWFISH_MD5_JSON, &[("other", &other)], now, &policy),
            Err(MungeError::CredInvalid)
        );
        assert_eq!(
            decode(BLOWFISH_MD5_JSON, &[], now, &policy),
            Err(MungeError::CredInvalid)
        );
    }

    #[test]
    fn restricted_vector_needs_the_restricted_ids() {
        let anonymous = DecodePolicy::default();
        assert_eq!(
            at_encode_time(CAST5_RIPEMD160_RESTRICTED, &anonymous),
            Err(MungeError::Unauthorized)
        );
        let only_uid = DecodePolicy {
            decoder_uid: Some(1234),
            ..DecodePolicy::default()
        };
        assert_eq!(
            at_encode_time(CAST5_RIPEMD160_RESTRICTED, &only_uid),
            Err(MungeError::Unauthorized)
        );
        let both = DecodePolicy {
            decoder_uid: Some(1234),
            decoder_gid: Some(5678),
            require_restriction: true,
            ..DecodePolicy::default()
        };
        let credential = at_encode_time(CAST5_RIPEMD160_RESTRICTED, &both).unwrap();
        assert_eq!(
            (credential.cipher(), credential.mac()),
            (Cipher::Cast5, Mac::Ripemd160)
        );
        assert_eq!(
            (credential.restrict_uid(), credential.restrict_gid()),
            (Some(1234), Some(5678))
        );
        assert_eq!(credential.payload(), JSON);
        assert_eq!(
            at_encode_time(DEFAULTS_EMPTY, &both),
            Err(MungeError::Unauthorized)
        );
    }

    #[test]
    fn restrictions_are_checked_before_time() {
        let late = u64::from(ENCODED) + 10_000;
        let policy = DecodePolicy::default();
        let restricted = decode(
            CAST5_RIPEMD160_RESTRICTED,
            &[("hpc", &key())],
            late,
            &policy,
        );
        assert_eq!(restricted, Err(MungeError::Unauthorized));
    }

    #[test]
    fn time_window_and_ttl_cap_apply() {
        let hpc = key();
        let keys = [("hpc", &hpc)];
        let policy = DecodePolicy::default();
        let t = u64::from(ENCODED);
        assert!(decode(DEFAULTS_EMPTY, &keys, t + 300, &policy).is_ok());
        assert!(decode(DEFAULTS_EMPTY, &keys, t - 300, &policy).is_ok());
        assert_eq!(
            decode(DEFAULTS_EMPTY, &keys, t + 301, &policy),
            Err(MungeError::Expired)
        );
        assert_eq!(
            decode(DEFAULTS_EMPTY, &keys, t - 301, &policy),
            Err(MungeError::Rewound)
        );
        let capped = DecodePolicy {
            max_ttl_secs: 60,
            ..DecodePolicy::default()
        };
        let credential = decode(DEFAULTS_EMPTY, &keys, t + 60, &capped).unwrap();
        assert_eq!(
            (credential.ttl_secs(), credential.expires_at()),
            (60, t + 60)
        );
        assert_eq!(
            decode(DEFAULTS_EMPTY, &keys, t + 61, &capped),
            Err(MungeError::Expired)
        );
        let skewed = DecodePolicy {
            clock_skew_secs: 5,
            ..DecodePolicy::default()
        };
        let credential = decode(DEFAULTS_EMPTY, &keys, t + 305, &skewed).unwrap();
        assert_eq!(credential.expires_at(), t + 305);
    }

    #[test]
    fn every_flipped_byte_is_refused_with_munged_error_for_its_place() {
        let policy = DecodePolicy::default();
        for armored in [
            DEFAULTS_EMPTY,
            BLOWFISH_MD5_JSON,
            CLEAR_SHA512_ZLIB,
            AES256_SHA512_BZLIB,
        ] {
            let bytes = unarmored(armored);
            for index in 0..bytes.len() {
                for flip in [0x01, 0x80, 0xFF] {
                    let mut tampered = bytes.clone();
                    tampered[index] ^= flip;
                    let error = at_encode_time(&rearmor(&tampered), &policy).unwrap_err();
                    // A flip to another valid cipher, MAC, zip or realm length moves the
                    // field boundaries: then the MAC is truncated (8) or fails (14).
                    let expected: &[u8] = match index {
                        0 => &[9],
                        1 => &[10, 11, 8, 14],
                        2 => &[11, 8, 14],
                        3 => &[12, 14],
                        4 => &[8, 14],
                        _ => &[14],
                    };
                    assert!(
                        expected.contains(&error.code()),
                        "byte {index} ^ {flip:#x}: {error}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let policy = DecodePolicy::default();
        for armored in [DEFAULTS_EMPTY, AES256_SHA512_BZLIB] {
            let bytes = unarmored(armored);
            for len in 0..bytes.len() {
                let error = at_encode_time(&rearmor(&bytes[..len]), &policy).unwrap_err();
                assert!([8, 14].contains(&error.code()), "length {len}: {error}");
            }
            for len in 0..armored.len() {
                assert!(
                    at_encode_time(&armored[..len], &policy).is_err(),
                    "text length {len}"
                );
            }
        }
    }

    #[test]
    fn default_policy_is_munged_defaults() {
        let policy = DecodePolicy::default();
        assert_eq!(policy.max_ttl_secs, 3600);
        assert_eq!(MAX_TTL_SECS, 3600);
        assert_eq!(policy.clock_skew_secs, 0);
        assert_eq!((policy.decoder_uid, policy.decoder_gid), (None, None));
        assert!(!policy.require_restriction);
    }

    #[test]
    fn time_window_is_encode_time_plus_or_minus_ttl() {
        let policy = DecodePolicy::default();
        assert_eq!(policy.check_time(1000, 300, 700), Ok(1300));
        assert_eq!(policy.check_time(1000, 300, 1300), Ok(1300));
        assert_eq!(policy.check_time(1000, 300, 699), Err(MungeError::Rewound));
        assert_eq!(policy.check_time(1000, 300, 1301), Err(MungeError::Expired));
        assert_eq!(policy.check_time(1000, 0, 1000), Ok(1000));
        assert_eq!(policy.check_time(1000, 0, 1001), Err(MungeError::Expired));
        assert_eq!(
            policy.check_time(10, 300, 0),
            Ok(310),
            "no underflow near the epoch"
        );
        assert_eq!(
            policy.check_time(u32::MAX, u32::MAX, u64::MAX),
            Err(MungeError::Expired),
            "no overflow at the top"
        );
    }

    #[test]
    fn clock_skew_widens_both_ends() {
        let policy = DecodePolicy {
            clock_skew_secs: 30,
            ..DecodePolicy::default()
        };
        assert_eq!(policy.check_time(1000, 300, 670), Ok(1330));
        assert_eq!(policy.check_time(1000, 300, 1330), Ok(1330));
        assert_eq!(policy.check_time(1000, 300, 669), Err(MungeError::Rewound));
        assert_eq!(policy.check_time(1000, 300, 1331), Err(MungeError::Expired));
    }

    #[test]
    fn restrictions_need_the_decoders_own_ids() {
        let anonymous = DecodePolicy::default();
        assert_eq!(anonymous.check_restrictions(None, None), Ok(()));
        assert_eq!(
            anonymous.check_restrictions(Some(0), None),
            Err(MungeError::Unauthorized)
        );
        assert_eq!(
            anonymous.check_restrictions(None, Some(0)),
            Err(MungeError::Unauthorized)
        );

        let service = DecodePolicy {
            decoder_uid: Some(990),
            decoder_gid: Some(991),
            ..DecodePolicy::default()
        };
        assert_eq!(service.check_restrictions(Some(990), None), Ok(()));
        assert_eq!(service.check_restrictions(None, Some(991)), Ok(()));
        assert_eq!(service.check_restrictions(Some(990), Some(991)), Ok(()));
        assert_eq!(
            service.check_restrictions(Some(0), None),
            Err(MungeError::Unauthorized)
        );
        assert_eq!(
            service.check_restrictions(Some(990), Some(0)),
            Err(MungeError::Unauthorized)
        );

        let root = DecodePolicy {
            decoder_uid: Some(0),
            decoder_gid: Some(0),
            ..DecodePolicy::default()
        };
        assert_eq!(
            root.check_restrictions(Some(990), None),
            Err(MungeError::Unauthorized)
        );
    }

    #[test]
    fn require_restriction_refuses_unrestricted_credentials() {
        let strict = DecodePolicy {
            decoder_uid: Some(990),
            decoder_gid: Some(991),
            require_restriction: true,
            ..DecodePolicy::default()
        };
        assert_eq!(
            strict.check_restrictions(None, None),
            Err(MungeError::Unauthorized)
        );
        assert_eq!(strict.check_restrictions(Some(990), None), Ok(()));
        assert_eq!(strict.check_restrictions(None, Some(991)), Ok(()));
    }
}
