//! A platform's munge key, reduced on load to the two SHA-1 subkeys munged derives from it.
//! Loading refuses short, long, and group- or other-accessible key files; the key bytes are not kept.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use thiserror::Error;
use zeroize::Zeroizing;

/// Shortest key munged accepts, in bytes (`MUNGE_KEY_LEN_MIN_BYTES` in munge's `munge_defs.h`).
pub const KEY_MIN_LEN: usize = 32;

/// Longest key munged accepts, in bytes (`MUNGE_KEY_LEN_MAX_BYTES` in munge's `munge_defs.h`).
pub const KEY_MAX_LEN: usize = 1024;

/// Permission bits that must be clear on a key file: nothing for group or others.
const GROUP_OTHER_MODE_BITS: u32 = 0o077;

/// Length of each subkey: one SHA-1 digest (munged's `create_subkeys` always uses SHA-1).
const SUBKEY_LEN: usize = 20;

/// Suffix hashed after the key to make the cipher (DEK) subkey (munged's `create_subkeys`).
const DEK_SUBKEY_SUFFIX: &[u8] = b"1";

/// Suffix hashed after the key to make the MAC subkey (munged's `create_subkeys`).
const MAC_SUBKEY_SUFFIX: &[u8] = b"2";

/// The subkeys of one platform's munge key. The only ways to build one check the key's length,
/// and the file loader also its permissions. Debug output shows no key material, and the
/// subkeys are wiped when dropped.
#[derive(Clone)]
pub struct MungeKey {
    dek_subkey: Zeroizing<[u8; SUBKEY_LEN]>,
    mac_subkey: Zeroizing<[u8; SUBKEY_LEN]>,
}

/// A key of a length munged would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("munge key is {len} bytes; it must be {KEY_MIN_LEN} to {KEY_MAX_LEN}")]
pub struct KeyLengthError {
    /// The key's length in bytes (for an oversized file, the first length past the limit).
    pub len: usize,
}

/// A key file that cannot be used; each variant names the file.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The file could not be opened or read.
    #[error("cannot read munge key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The path is a directory, device, FIFO or socket rather than a regular file.
    #[error("munge key file {} is not a regular file", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others have some access to the file.
    #[error(
        "munge key file {} has mode {mode:04o}; it must not be accessible by group or others (chmod 600)",
        path.display()
    )]
    Insecure {
        /// The key file.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The file's length is outside munged's limits.
    #[error("munge key file {}: {source}", path.display())]
    Length {
        /// The key file.
        path: PathBuf,
        /// The length problem.
        source: KeyLengthError,
    },
}

impl MungeKey {
    /// Reads a key file as munged does: raw bytes, a trailing newline included. The file must be a
    /// regular file that group and others cannot access, of 32 to 1024 bytes.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MungeKey, KeyFileError> {
        let path = path.as_ref();
        let read_error = |source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(KeyFileError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER_MODE_BITS != 0 {
            return Err(KeyFileError::Insecure {
                path: path.to_owned(),
                mode,
            });
        }
        let mut key = Zeroizing::new(Vec::with_capacity(KEY_MAX_LEN + 1));
        file.take(KEY_MAX_LEN as u64 + 1)
            .read_to_end(&mut key)
            .map_err(read_error)?;
        MungeKey::from_bytes(&key).map_err(|source| KeyFileError::Length {
            path: path.to_owned(),
            source,
        })
    }

    /// Derives the subkeys from key bytes of 32 to 1024 bytes.
    pub fn from_bytes(key: &[u8]) -> Result<MungeKey, KeyLengthError> {
        if !(KEY_MIN_LEN..=KEY_MAX_LEN).contains(&key.len()) {
            return Err(KeyLengthError { len: key.len() });
        }
        Ok(MungeKey {
            dek_subkey: subkey(key, DEK_SUBKEY_SUFFIX),
            mac_subkey: subkey(key, MAC_SUBKEY_SUFFIX),
        })
    }

    /// `SHA1(key || "1")`: keys the HMAC that turns a credential's MAC into its cipher key.
    pub(super) fn dek_subkey(&self) -> &[u8] {
        self.dek_subkey.as_slice()
    }

    /// `SHA1(key || "2")`: keys the HMAC over the credential.
    pub(super) fn mac_subkey(&self) -> &[u8] {
        self.mac_subkey.as_slice()
    }
}

impl fmt::Debug for MungeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MungeKey").finish_non_exhaustive()
    }
}

fn subkey(key: &[u8], suffix: &[u8]) -> Zeroizing<[u8; SUBKEY_LEN]> {
    Zeroizing::new(
        Sha1::new()
            .chain_update(key)
            .chain_update(suffix)
            .finalize()
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::{KeyFileError, KeyLengthError, MungeKey, KEY_MAX_LEN, KEY_MIN_LEN};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn write_key(dir: &tempfile::TempDir, bytes: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.path().join("munge.key");
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn subkeys_are_sha1_of_key_and_digit() {
        let key = MungeKey::from_bytes(&[b'k'; 32]).unwrap();
        let mut dek_input = vec![b'k'; 32];
        dek_input.push(b'1');
        let mut mac_input = vec![b'k'; 32];
        mac_input.push(b'2');
        use sha1::Digest;
        assert_eq!(key.dek_subkey(), &sha1::Sha1::digest(&dek_input)[..]);
        assert_eq!(key.mac_subkey(), &sha1::Sha1::digest(&mac_input)[..]);
    }

    #[test]
    fn length_limits_are_munged_limits() {
        assert!(MungeKey::from_bytes(&[0; KEY_MIN_LEN]).is_ok());
        assert!(MungeKey::from_bytes(&[0; KEY_MAX_LEN]).is_ok());
        assert_eq!(
            MungeKey::from_bytes(&[0; KEY_MIN_LEN - 1]).unwrap_err(),
            KeyLengthError { len: 31 }
        );
        assert_eq!(
            MungeKey::from_bytes(&[0; KEY_MAX_LEN + 1]).unwrap_err(),
            KeyLengthError { len: 1025 }
        );
        assert!(MungeKey::from_bytes(&[]).is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = MungeKey::from_bytes(&[0xAB; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "MungeKey { .. }");
    }

    #[test]
    fn file_with_private_mode_loads_like_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"0123456789abcdef0123456789abcdef\n";
        let path = write_key(&dir, bytes, 0o600);
        let from_file = MungeKey::from_file(&path).unwrap();
        let from_bytes = MungeKey::from_bytes(bytes).unwrap();
        assert_eq!(from_file.dek_subkey(), from_bytes.dek_subkey());
        assert_eq!(from_file.mac_subkey(), from_bytes.mac_subkey());
        write_key(&dir, bytes, 0o400);
        assert!(MungeKey::from_file(&path).is_ok());
    }

    #[test]
    fn file_readable_by_group_or_others_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o610, 0o601, 0o660, 0o644] {
            let path = write_key(&dir, &[7; 64], mode);
            let error = MungeKey::from_file(&path).unwrap_err();
            assert!(
                matches!(error, KeyFileError::Insecure { mode: m, .. } if m == mode),
                "{mode:o}: {error}"
            );
            assert!(error.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn short_and_long_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_key(&dir, &[7; 31], 0o600);
        let error = MungeKey::from_file(&path).unwrap_err();
        assert!(matches!(
            error,
            KeyFileError::Length {
                source: KeyLengthError { len: 31 },
                ..
            }
        ));
        assert!(error.to_string().contains(&path.display().to_string()));

        let path = write_key(&dir, &[7; 4096], 0o600);
        let error = MungeKey::from_file(&path).unwrap_err();
        assert!(matches!(
            error,
            KeyFileError::Length {
                source: KeyLengthError { len: 1025 },
                ..
            }
        ));
    }

    #[test]
    fn missing_file_and_directory_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.key");
        let error = MungeKey::from_file(&missing).unwrap_err();
        assert!(matches!(error, KeyFileError::Read { .. }));
        assert!(error.to_string().contains("absent.key"));

        let sub = dir.path().join("keydir");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        let error = MungeKey::from_file(&sub).unwrap_err();
        assert!(matches!(error, KeyFileError::NotAFile { .. }), "{error}");
    }
}
