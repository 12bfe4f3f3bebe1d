//! The HMACs and CBC decryption a credential names, over the RustCrypto crates. Verifying is
//! constant-time; a padding failure is returned as a flag so the caller can still compute the MAC.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, KeyIvInit};
use hmac::digest::KeyInit;
use hmac::Hmac;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::algorithms::{Cipher, Mac};

/// `HMAC_mac(key, parts[0] || parts[1] || ...)`.
pub(super) fn hmac(mac: Mac, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    match mac {
        Mac::Md5 => hmac_with::<Hmac<md5::Md5>>(key, parts),
        Mac::Sha1 => hmac_with::<Hmac<sha1::Sha1>>(key, parts),
        Mac::Ripemd160 => hmac_with::<Hmac<ripemd::Ripemd160>>(key, parts),
        Mac::Sha256 => hmac_with::<Hmac<sha2::Sha256>>(key, parts),
        Mac::Sha512 => hmac_with::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// Whether `expected` is the HMAC of `parts`, compared in constant time.
pub(super) fn hmac_matches(mac: Mac, key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    hmac(mac, key, parts).as_slice().ct_eq(expected).into()
}

/// HMAC takes keys of any length, so construction cannot fail; if it ever did, the empty result
/// fails closed (it matches no MAC and keys no cipher).
fn hmac_with<M: hmac::Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return Zeroizing::new(Vec::new());
    };
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// A CBC-decrypted body and whether its PKCS#7 padding was valid. With valid padding `bytes` is
/// the plaintext; otherwise it is whatever decryption produced, to be MACed all the same so that
/// bad padding and a bad MAC cost the same and read the same.
pub(super) struct Decrypted {
    pub(super) bytes: Zeroizing<Vec<u8>>,
    pub(super) padding_ok: bool,
}

/// Decrypts `ciphertext` with the first `cipher.key_len()` bytes of `dek` and `iv`. A ciphertext
/// that is not a whole number of blocks is a padding failure, as in munged. `Cipher::None`
/// returns the body unchanged.
pub(super) fn decrypt(cipher: Cipher, dek: &[u8], iv: &[u8], ciphertext: &[u8]) -> Decrypted {
    match cipher {
        Cipher::None => Decrypted {
            bytes: Zeroizing::new(ciphertext.to_vec()),
            padding_ok: true,
        },
        Cipher::Blowfish => cbc_decrypt::<blowfish::Blowfish>(cipher, dek, iv, ciphertext),
        Cipher::Cast5 => cbc_decrypt::<cast5::Cast5>(cipher, dek, iv, ciphertext),
        Cipher::Aes128 => cbc_decrypt::<aes::Aes128>(cipher, dek, iv, ciphertext),
        Cipher::Aes256 => cbc_decrypt::<aes::Aes256>(cipher, dek, iv, ciphertext),
    }
}

/// The key and IV lengths come from the cipher table and the outer parser, so construction cannot
/// fail; if it ever did, the result fails closed as a padding failure.
fn cbc_decrypt<C>(cipher: Cipher, dek: &[u8], iv: &[u8], ciphertext: &[u8]) -> Decrypted
where
    C: BlockCipher + BlockDecryptMut + KeyInit,
{
    let mut bytes = Zeroizing::new(ciphertext.to_vec());
    let decryptor = dek
        .get(..cipher.key_len())
        .and_then(|key| cbc::Decryptor::<C>::new_from_slices(key, iv).ok());
    let plaintext_len = decryptor.and_then(|d| {
        d.decrypt_padded_mut::<Pkcs7>(bytes.as_mut_slice())
            .ok()
            .map(<[u8]>::len)
    });
    match plaintext_len {
        Some(len) => {
            bytes.truncate(len);
            Decrypted {
                bytes,
                padding_ok: true,
            }
        }
        None => Decrypted {
            bytes,
            padding_ok: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{decrypt, hmac, hmac_matches};
    use crate::munge::{Cipher, Mac};
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockEncryptMut, KeyIvInit};

    /// RFC 4231 test case 2 (SHA-256, SHA-512) and RFC 2202 test case 2 (MD5, SHA-1).
    #[test]
    fn hmacs_match_published_vectors() {
        let parts: [&[u8]; 2] = [b"what do ya want ", b"for nothing?"];
        let hex = |mac| {
            hmac(mac, b"Jefe", &parts)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(hex(Mac::Md5), "750c783e6ab0b503eaa86e310a5db738");
        assert_eq!(hex(Mac::Sha1), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert_eq!(
            hex(Mac::Ripemd160),
            "dda6c0213a485a9e24f4742064a7f033b43c4069"
        );
        assert_eq!(
            hex(Mac::Sha256),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hex(Mac::Sha512).starts_with("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd6"));
        for mac in Mac::ALL {
            assert_eq!(hmac(mac, b"k", &parts).len(), mac.mac_len());
        }
    }

    #[test]
    fn hmac_matches_only_the_exact_tag() {
        let tag = hmac(Mac::Sha256, b"key", &[b"data"]);
        assert!(hmac_matches(Mac::Sha256, b"key", &[b"da", b"ta"], &tag));
        let mut flipped = tag.to_vec();
        flipped[31] ^= 1;
        assert!(!hmac_matches(Mac::Sha256, b"key", &[b"data"], &flipped));
        assert!(!hmac_matches(Mac::Sha256, b"key", &[b"data"], &tag[..31]));
        assert!(!hmac_matches(Mac::Sha256, b"key", &[b"data"], &[]));
    }

    #[test]
    fn decrypts_what_cbc_pkcs7_encrypts_and_flags_bad_padding() {
        let dek = [0x42; 64];
        let iv = [0x24; 16];
        let plaintext = b"seventeen bytes!!";
        let ciphertext = cbc::Encryptor::<aes::Aes128>::new_from_slices(&dek[..16], &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let decrypted = decrypt(Cipher::Aes128, &dek, &iv, &ciphertext);
        assert!(decrypted.padding_ok);
        assert_eq!(decrypted.bytes.as_slice(), plaintext);

        let wrong_key = decrypt(Cipher::Aes128, &[0x43; 64], &iv, &ciphertext);
        assert!(
            !wrong_key.padding_ok,
            "a wrong key almost surely breaks the padding"
        );
        assert_eq!(wrong_key.bytes.len(), ciphertext.len());

        for broken in [&ciphertext[..0], &ciphertext[..15], &ciphertext[..17]] {
            assert!(!decrypt(Cipher::Aes128, &dek, &iv, broken).padding_ok);
        }
        assert!(!decrypt(Cipher::Aes256, &dek[..16], &iv, &ciphertext).padding_ok);
        assert!(!decrypt(Cipher::Blowfish, &dek, &iv[..7], &ciphertext).padding_ok);

        let clear = decrypt(Cipher::None, &[], &[], b"as is");
        assert!(clear.padding_ok);
        assert_eq!(clear.bytes.as_slice(), b"as is");
    }
}
