//! Splits an unarmored credential into its clear header (OUTER), its MAC and its body, checking
//! the header's fields in munged's order (`dec_unpack_outer`). Nothing here needs a key.

use super::algorithms::{Cipher, Mac, Zip};
use super::error::MungeError;
use super::reader::Reader;

/// The only credential format munged 0.5.x writes and reads (`MUNGE_CRED_VERSION` in munged).
const CRED_VERSION: u8 = 3;

/// Leading MAC bytes that identify a credential in munged's replay cache (`replay.c` keys on
/// `MUNGE_MINIMUM_MD_LEN` bytes, the length of the shortest MAC, MD5).
pub(super) const REPLAY_KEY_LEN: usize = 16;

/// An unarmored credential, split but not yet verified.
#[derive(Debug)]
pub(super) struct Outer<'a> {
    pub(super) cipher: Cipher,
    pub(super) mac: Mac,
    pub(super) zip: Zip,
    /// The realm bytes as sent (with their NUL, when the encoder included one); `None` when absent.
    pub(super) realm: Option<&'a [u8]>,
    /// The CBC IV, `cipher.block_len()` bytes (empty for no cipher).
    pub(super) iv: &'a [u8],
    /// The whole clear header, version through IV: the first input to the MAC.
    pub(super) header: &'a [u8],
    /// The received MAC, exactly `mac.mac_len()` bytes.
    pub(super) tag: &'a [u8],
    /// The first bytes of the MAC, which identify the credential for replay detection.
    pub(super) replay_key: [u8; REPLAY_KEY_LEN],
    /// Everything after the MAC: the ciphertext, or the plain (maybe compressed) body.
    pub(super) body: &'a [u8],
}

impl<'a> Outer<'a> {
    /// Reads version, cipher, MAC, zip, realm and IV, then the MAC; munged's error for the first
    /// field that is short or invalid.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Outer<'a>, MungeError> {
        let mut reader = Reader::new(bytes);

        let version = reader.u8("Truncated credential version")?;
        if version != CRED_VERSION {
            return Err(MungeError::BadVersion(version));
        }
        let cipher_code = reader.u8("Truncated cipher type")?;
        let cipher = Cipher::from_code(cipher_code).ok_or(MungeError::BadCipher(cipher_code))?;
        let mac_code = reader.u8("Truncated MAC type")?;
        let mac = Mac::from_code(mac_code).ok_or(MungeError::BadMac {
            mac: mac_code,
            cipher: None,
        })?;
        if !mac.can_key(cipher) {
            return Err(MungeError::BadMac {
                mac: mac_code,
                cipher: Some(cipher_code),
            });
        }
        let zip_code = reader.u8("Truncated compression type")?;
        let zip = Zip::from_code(zip_code).ok_or(MungeError::BadZip(zip_code))?;
        let realm_len = reader.u8("Truncated security realm length")?;
        let realm = reader.bytes(usize::from(realm_len), "Truncated security realm string")?;
        let iv = reader.bytes(cipher.block_len(), "Truncated cipher IV")?;
        let header = reader.consumed();
        let tag = reader.bytes(mac.mac_len(), "Truncated MAC")?;
        let replay_key = *tag
            .first_chunk::<REPLAY_KEY_LEN>()
            .ok_or(MungeError::BadCred("Truncated MAC"))?;

        Ok(Outer {
            cipher,
            mac,
            zip,
            realm: (!realm.is_empty()).then_some(realm),
            iv,
            header,
            tag,
            replay_key,
            body: reader.rest(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Outer;
    use crate::munge::{Cipher, Mac, MungeError, Zip};

    fn header(version: u8, cipher: u8, mac: u8, zip: u8) -> Vec<u8> {
        vec![version, cipher, mac, zip, 0]
    }

    #[test]
    fn splits_header_mac_and_body() {
        let mut bytes = vec![3, 4, 5, 3, 2, b'r', 0];
        bytes.extend([0xAA; 16]);
        bytes.extend([0xBB; 32]);
        bytes.extend([0xCC; 5]);
        let outer = Outer::parse(&bytes).unwrap();
        assert_eq!(
            (outer.cipher, outer.mac, outer.zip),
            (Cipher::Aes128, Mac::Sha256, Zip::Zlib)
        );
        assert_eq!(outer.realm, Some(&b"r\0"[..]));
        assert_eq!(outer.iv, [0xAA; 16]);
        assert_eq!(outer.header.len(), 7 + 16);
        assert_eq!(outer.tag, [0xBB; 32]);
        assert_eq!(outer.replay_key, [0xBB; 16]);
        assert_eq!(outer.body, [0xCC; 5]);
    }

    #[test]
    fn no_cipher_means_no_iv_and_an_empty_body_is_allowed_here() {
        let mut bytes = header(3, 0, 2, 0);
        bytes.extend([0x11; 16]);
        let outer = Outer::parse(&bytes).unwrap();
        assert_eq!(outer.realm, None);
        assert!(outer.iv.is_empty());
        assert_eq!(outer.header, [3, 0, 2, 0, 0]);
        assert!(outer.body.is_empty());
    }

    #[test]
    fn fields_are_checked_in_munged_order() {
        assert_eq!(Outer::parse(&[]).unwrap_err().code(), 8);
        assert_eq!(
            Outer::parse(&[2, 99, 99, 99]).unwrap_err(),
            MungeError::BadVersion(2)
        );
        assert_eq!(Outer::parse(&[3]).unwrap_err().code(), 8);
        assert_eq!(
            Outer::parse(&[3, 1, 99, 99]).unwrap_err(),
            MungeError::BadCipher(1)
        );
        assert_eq!(
            Outer::parse(&[3, 6, 99, 99]).unwrap_err(),
            MungeError::BadCipher(6)
        );
        assert_eq!(
            Outer::parse(&[3, 4, 0, 99]).unwrap_err(),
            MungeError::BadMac {
                mac: 0,
                cipher: None
            }
        );
        assert_eq!(
            Outer::parse(&[3, 5, 3, 99]).unwrap_err(),
            MungeError::BadMac {
                mac: 3,
                cipher: Some(5)
            }
        );
        assert_eq!(
            Outer::parse(&[3, 4, 5, 1]).unwrap_err(),
            MungeError::BadZip(1)
        );
        assert_eq!(
            Outer::parse(&[3, 4, 5, 0]).unwrap_err(),
            MungeError::BadCred("Truncated security realm length")
        );
        assert_eq!(
            Outer::parse(&[3, 4, 5, 0, 3, b'a']).unwrap_err(),
            MungeError::BadCred("Truncated security realm string")
        );
        assert_eq!(
            Outer::parse(&[3, 4, 5, 0, 0, 1, 2]).unwrap_err(),
            MungeError::BadCred("Truncated cipher IV")
        );
        let mut bytes = header(3, 2, 6, 2);
        bytes.extend([0; 8 + 63]);
        assert_eq!(
            Outer::parse(&bytes).unwrap_err(),
            MungeError::BadCred("Truncated MAC")
        );
    }

    #[test]
    fn every_prefix_of_a_valid_header_is_refused_without_panic() {
        let mut bytes = vec![3, 5, 6, 2, 255];
        bytes.extend([b'x'; 255]);
        bytes.extend([0; 16 + 64]);
        assert!(Outer::parse(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert_eq!(
                Outer::parse(&bytes[..len]).unwrap_err().code(),
                8,
                "length {len}"
            );
        }
    }
}
