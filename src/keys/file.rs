//! The files of keys: reading a private key (one P-256 key, PKCS#8 PEM, mode 0600, anything else
//! refused in words), making one, and publishing files atomically.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use p256::pkcs8::der::pem;
use p256::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, LineEnding, ObjectIdentifier, PrivateKeyInfo,
};

use super::KeyError;

/// `id-ecPublicKey` (RFC 5480): the algorithm of every elliptic-curve key; the curve is its parameter.
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1`, alias P-256 (RFC 5480): the only curve ES256 signs with.
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Private key algorithms and curves an operator may have put in `key.pem` by mistake, by their
/// object identifiers (RFC 8017, RFC 4055, RFC 8410, RFC 3279, RFC 5480, SEC 2), in words.
const KNOWN_KEYS: [(ObjectIdentifier, &str); 11] = [
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
        "an RSA key",
    ),
    (
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10"),
        "an RSA-PSS key",
    ),
    (
        ObjectIdentifier::new_unwrap("1.3.101.112"),
        "an Ed25519 key",
    ),
    (ObjectIdentifier::new_unwrap("1.3.101.113"), "an Ed448 key"),
    (ObjectIdentifier::new_unwrap("1.3.101.110"), "an X25519 key"),
    (ObjectIdentifier::new_unwrap("1.3.101.111"), "an X448 key"),
    (
        ObjectIdentifier::new_unwrap("1.2.840.10040.4.1"),
        "a DSA key",
    ),
    (
        ObjectIdentifier::new_unwrap("1.3.132.0.34"),
        "an EC key on curve P-384",
    ),
    (
        ObjectIdentifier::new_unwrap("1.3.132.0.35"),
        "an EC key on curve P-521",
    ),
    (
        ObjectIdentifier::new_unwrap("1.3.132.0.10"),
        "an EC key on curve secp256k1",
    ),
    (
        ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7"),
        "an EC key on curve brainpoolP256r1",
    ),
];

/// Parses a realm's private key: one PEM `PRIVATE KEY` block (PKCS#8) holding a P-256 key. Anything
/// else is refused with what the file holds instead, in words rather than parser internals.
pub(super) fn read_private_key(pem_text: &[u8]) -> Result<p256::SecretKey, String> {
    let (label, der) =
        pem::decode_vec(pem_text).map_err(|_| match pem::decode_label(pem_text) {
            Ok(label) => format!("its {label:?} block is damaged"),
            Err(_) => "it is not PEM (no intact -----BEGIN PRIVATE KEY----- block)".to_owned(),
        })?;
    match label {
        "PRIVATE KEY" => {}
        "EC PRIVATE KEY" => {
            return Err(
                "it holds an EC key in the older SEC1 form; convert it with \
                        `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem`"
                    .to_owned(),
            )
        }
        "RSA PRIVATE KEY" => return Err("it holds an RSA key".to_owned()),
        "ENCRYPTED PRIVATE KEY" => {
            return Err("it is encrypted; keep it unencrypted with mode 0600".to_owned())
        }
        "CERTIFICATE" => return Err("it holds a certificate, not a private key".to_owned()),
        "PUBLIC KEY" => return Err("it holds a public key, not a private key".to_owned()),
        other => return Err(format!("it holds a PEM {other:?} block, not a private key")),
    }
    let info = PrivateKeyInfo::try_from(der.as_slice())
        .map_err(|_| "its PRIVATE KEY block is not a valid PKCS#8 structure".to_owned())?;
    // An EC key is known by its curve, any other key by its algorithm.
    let ec = info.algorithm.oid == EC_PUBLIC_KEY_OID;
    let kind = if ec {
        info.algorithm.parameters_oid().ok()
    } else {
        Some(info.algorithm.oid)
    };
    if kind != Some(P256_OID) {
        let known = KNOWN_KEYS.iter().find(|(oid, _)| kind == Some(*oid));
        let what = match known {
            Some((_, what)) => what,
            None if ec => "an EC key on another curve",
            None => "a key of another algorithm",
        };
        return Err(format!("it holds {what}"));
    }
    p256::SecretKey::from_pkcs8_der(&der)
        .map_err(|_| "it holds a P-256 key that is not valid".to_owned())
}

/// Publishes a new file atomically, with `mode` from the start: the bytes go to a private temporary
/// file that is then hard-linked into place. When another process (a second instance, an operator
/// command) published the file first, theirs is kept and ours is dropped, so every process ends up
/// loading the same key.
pub(super) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |error| KeyError::Io {
        path: path.to_owned(),
        error,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(io)?;
    let mut file = temporary.as_file();
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    match fs::hard_link(temporary.path(), path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Writes `secret` to a new file at `path` (mode 0600). When another process made the file first,
/// theirs is kept.
pub(super) fn write_key(path: &Path, secret: &p256::SecretKey) -> Result<(), KeyError> {
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::BadKey {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    write_new(path, pem.as_bytes(), 0o600)
}

/// Reads the private key at `path`, refusing a file others may read.
pub(super) fn read_key(path: &Path) -> Result<p256::SecretKey, KeyError> {
    let io = |error| KeyError::Io {
        path: path.to_owned(),
        error,
    };
    let mode = fs::metadata(path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    let pem = fs::read(path).map_err(io)?;
    read_private_key(&pem).map_err(|reason| KeyError::BadKey {
        path: path.to_owned(),
        reason,
    })
}

/// Reads the private key at `path` for making certificates.
pub(super) fn read_key_pair(path: &Path) -> Result<rcgen::KeyPair, KeyError> {
    let bad = |reason: String| KeyError::BadKey {
        path: path.to_owned(),
        reason,
    };
    let pkcs8 = read_key(path)?
        .to_pkcs8_der()
        .map_err(|e| bad(e.to_string()))?;
    rcgen::KeyPair::try_from(pkcs8.as_bytes()).map_err(|e| bad(e.to_string()))
}

/// Replaces the public file at `path` atomically (a reader sees the old or the new content).
pub(super) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let io = |error| KeyError::Io {
        path: path.to_owned(),
        error,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io)?;
    let mut file = temporary.as_file();
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    temporary.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
