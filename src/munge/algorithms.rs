//! The cipher, MAC and compression a credential names in its clear header, with munge's numbers,
//! names and sizes (`munge_cipher_t`, `munge_mac_t`, `munge_zip_t` in `munge.h`). Tables only: the
//! cryptography is in `crypto`, decompression in `zip`.

use std::fmt;

/// A cipher a credential may name; all but `None` are CBC with PKCS#7 padding.
///
/// Byte 1 ("default") is only a request to `munge`; it never appears in a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// 0: the body is not encrypted.
    None,
    /// 2: Blowfish, 64-bit blocks, 128-bit key.
    Blowfish,
    /// 3: CAST5, 64-bit blocks, 128-bit key.
    Cast5,
    /// 4: AES, 128-bit key; munged's default.
    Aes128,
    /// 5: AES, 256-bit key.
    Aes256,
}

impl Cipher {
    /// Every cipher, in munge's numbering order.
    pub const ALL: [Cipher; 5] = [
        Cipher::None,
        Cipher::Blowfish,
        Cipher::Cast5,
        Cipher::Aes128,
        Cipher::Aes256,
    ];

    /// The cipher numbered `code`, or `None` for a number munge does not decode.
    pub fn from_code(code: u8) -> Option<Cipher> {
        Cipher::ALL.into_iter().find(|c| c.code() == code)
    }

    /// munge's number for this cipher.
    pub fn code(self) -> u8 {
        match self {
            Cipher::None => 0,
            Cipher::Blowfish => 2,
            Cipher::Cast5 => 3,
            Cipher::Aes128 => 4,
            Cipher::Aes256 => 5,
        }
    }

    /// munge's name for this cipher, as `munge -c` takes it and `unmunge` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::None => "none",
            Cipher::Blowfish => "blowfish",
            Cipher::Cast5 => "cast5",
            Cipher::Aes128 => "aes128",
            Cipher::Aes256 => "aes256",
        }
    }

    /// Key length in bytes; 0 for no cipher.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::None => 0,
            Cipher::Blowfish | Cipher::Cast5 | Cipher::Aes128 => 16,
            Cipher::Aes256 => 32,
        }
    }

    /// Block length in bytes, which is also the length of the IV in the clear header; 0 for none.
    pub fn block_len(self) -> usize {
        match self {
            Cipher::None => 0,
            Cipher::Blowfish | Cipher::Cast5 => 8,
            Cipher::Aes128 | Cipher::Aes256 => 16,
        }
    }
}

/// The HMAC digest a credential names. Byte 0 (none) and 1 ("default") are invalid in a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mac {
    /// 2: HMAC-MD5.
    Md5,
    /// 3: HMAC-SHA-1.
    Sha1,
    /// 4: HMAC-RIPEMD-160.
    Ripemd160,
    /// 5: HMAC-SHA-256; munged's default.
    Sha256,
    /// 6: HMAC-SHA-512.
    Sha512,
}

impl Mac {
    /// Every MAC, in munge's numbering order.
    pub const ALL: [Mac; 5] = [
        Mac::Md5,
        Mac::Sha1,
        Mac::Ripemd160,
        Mac::Sha256,
        Mac::Sha512,
    ];

    /// The MAC numbered `code`, or `None` for a number munge does not decode.
    pub fn from_code(code: u8) -> Option<Mac> {
        Mac::ALL.into_iter().find(|m| m.code() == code)
    }

    /// munge's number for this MAC.
    pub fn code(self) -> u8 {
        match self {
            Mac::Md5 => 2,
            Mac::Sha1 => 3,
            Mac::Ripemd160 => 4,
            Mac::Sha256 => 5,
            Mac::Sha512 => 6,
        }
    }

    /// munge's name for this MAC, as `munge -m` takes it and `unmunge` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Mac::Md5 => "md5",
            Mac::Sha1 => "sha1",
            Mac::Ripemd160 => "ripemd160",
            Mac::Sha256 => "sha256",
            Mac::Sha512 => "sha512",
        }
    }

    /// Length of the MAC (the digest) in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Mac::Md5 => 16,
            Mac::Sha1 | Mac::Ripemd160 => 20,
            Mac::Sha256 => 32,
            Mac::Sha512 => 64,
        }
    }

    /// Whether this MAC can key `cipher`: munged derives the cipher key from one HMAC output, so
    /// the MAC must be at least as long as the key (aes256 with md5, sha1 or ripemd160 is invalid).
    pub fn can_key(self, cipher: Cipher) -> bool {
        self.mac_len() >= cipher.key_len()
    }
}

/// The compression a credential names. Byte 1 ("default") is only a request to `munge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zip {
    /// 0: not compressed.
    None,
    /// 2: bzip2 (`munge -z bzlib`).
    Bzlib,
    /// 3: zlib, the RFC 1950 wrapper around deflate.
    Zlib,
}

impl Zip {
    /// Every compression, in munge's numbering order.
    pub const ALL: [Zip; 3] = [Zip::None, Zip::Bzlib, Zip::Zlib];

    /// The compression numbered `code`, or `None` for a number munge does not decode.
    pub fn from_code(code: u8) -> Option<Zip> {
        Zip::ALL.into_iter().find(|z| z.code() == code)
    }

    /// munge's number for this compression.
    pub fn code(self) -> u8 {
        match self {
            Zip::None => 0,
            Zip::Bzlib => 2,
            Zip::Zlib => 3,
        }
    }

    /// munge's name for this compression, as `munge -z` takes it and `unmunge` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Zip::None => "none",
            Zip::Bzlib => "bzlib",
            Zip::Zlib => "zlib",
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::{Cipher, Mac, Zip};

    #[test]
    fn codes_round_trip_and_gaps_are_refused() {
        for code in 0..=u8::MAX {
            if let Some(c) = Cipher::from_code(code) {
                assert_eq!(c.code(), code);
            }
            if let Some(m) = Mac::from_code(code) {
                assert_eq!(m.code(), code);
            }
            if let Some(z) = Zip::from_code(code) {
                assert_eq!(z.code(), code);
            }
        }
        assert_eq!(Cipher::from_code(1), None, "cipher 'default'");
        assert_eq!(Mac::from_code(0), None, "MAC 'none'");
        assert_eq!(Mac::from_code(1), None, "MAC 'default'");
        assert_eq!(Zip::from_code(1), None, "zip 'default'");
        assert_eq!(Cipher::from_code(6), None);
        assert_eq!(Mac::from_code(7), None);
        assert_eq!(Zip::from_code(4), None);
    }

    #[test]
    fn twenty_two_cipher_mac_pairs_are_valid() {
        let valid: Vec<_> = Cipher::ALL
            .into_iter()
            .flat_map(|c| Mac::ALL.into_iter().map(move |m| (c, m)))
            .filter(|(c, m)| m.can_key(*c))
            .collect();
        assert_eq!(valid.len(), 22);
        for mac in [Mac::Md5, Mac::Sha1, Mac::Ripemd160] {
            assert!(!mac.can_key(Cipher::Aes256), "{mac} cannot key aes256");
        }
    }
}
