//! Realm signing keys. Each key lives in its own directory below `<keys.dir>/<realm>/` (PKCS#8 PEM,
//! mode 0600, plus its certificate: self-signed, or issued by the realm's CA); the key made before
//! rotation existed sits in the realm's directory itself. A key is parsed once and described three
//! ways: libtrust key id, PEM certificate and JWK. Which key signs when is the [`ring`]'s and the
//! [`schedule`]'s business; signing itself is `jwt`'s.

pub mod cert;
mod file;
pub mod ring;
pub mod schedule;

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse,
};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};

use self::cert::Certificate;
use crate::names::RealmName;

/// Validity of self-signed certificates. The registry checks it on the `x5c` path (not on the
/// `kid` path), so it is long; rotate keys deliberately rather than let a certificate lapse.
pub const CERT_VALIDITY_DAYS: i64 = 3650;
/// Name of the private key file in a key's directory.
pub const KEY_FILE: &str = "key.pem";
/// Name of the certificate file in a key's directory.
pub const CERT_FILE: &str = "cert.pem";
/// Bytes of the SPKI digest that make up a libtrust key id.
const LIBTRUST_KID_BYTES: usize = 30;
/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// A key problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} is not a PEM-encoded P-256 private key (PKCS#8): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
}

/// The time now, Unix milliseconds (the unit of key schedules).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A schedule time for people: RFC 3339, UTC, whole seconds.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

/// Replaces a public file (a certificate, a bundle) atomically, mode 0644.
pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    file::write_public(path, bytes)
}

/// One signing key, parsed once, with everything derived from it.
pub struct SigningKey {
    signer: EcdsaKeyPair,
    kid: String,
    certificate: Certificate,
    jwk: Jwk,
    dir: PathBuf,
}

impl SigningKey {
    /// Loads the key in `dir`, first making a key and a self-signed certificate for whichever is
    /// missing: a realm's first key, and the key of tests and benchmarks.
    pub fn load_or_create(dir: &Path, realm: &RealmName) -> Result<SigningKey, KeyError> {
        create_dir(dir)?;
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
            file::write_key(&key_path, &p256::SecretKey::random(&mut rand_core::OsRng))?;
        }
        let cert_path = dir.join(CERT_FILE);
        if !cert_path.exists() {
            let key = file::read_key_pair(&key_path)?;
            let not_after_ms = now_ms() + CERT_VALIDITY_DAYS * MS_PER_DAY;
            let pem = cert::self_signed(&key, realm, not_after_ms, &cert_path)?;
            file::write_new(&cert_path, pem.as_bytes(), 0o644)?;
        }
        SigningKey::load(dir)
    }

    /// Makes a new key in a new directory below `realm_dir`, named after its key id, with the
    /// certificate `certify` makes for it.
    pub fn create(
        realm_dir: &Path,
        certify: impl FnOnce(&rcgen::KeyPair, &Path) -> Result<String, KeyError>,
    ) -> Result<SigningKey, KeyError> {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let spki = secret
            .public_key()
            .to_public_key_der()
            .map_err(|e| KeyError::BadKey {
                path: realm_dir.to_owned(),
                reason: e.to_string(),
            })?;
        let dir = realm_dir.join(libtrust_key_id(spki.as_bytes()).replace(':', ""));
        create_dir(&dir)?;
        let key_path = dir.join(KEY_FILE);
        file::write_key(&key_path, &secret)?;
        let cert_path = dir.join(CERT_FILE);
        let pem = certify(&file::read_key_pair(&key_path)?, &cert_path)?;
        file::write_new(&cert_path, pem.as_bytes(), 0o644)?;
        SigningKey::load(&dir)
    }

    /// Loads the key and certificate in `dir`; the certificate must hold the key.
    pub fn load(dir: &Path) -> Result<SigningKey, KeyError> {
        let key_path = dir.join(KEY_FILE);
        let secret = file::read_key(&key_path)?;
        let bad_key = |reason: String| KeyError::BadKey {
            path: key_path.clone(),
            reason,
        };
        let pkcs8 = secret.to_pkcs8_der().map_err(|e| bad_key(e.to_string()))?;
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_bytes())
            .map_err(|e| bad_key(e.to_string()))?;
        let cert_path = dir.join(CERT_FILE);
        let pem = fs::read_to_string(&cert_path).map_err(|error| KeyError::Io {
            path: cert_path.clone(),
            error,
        })?;
        let bad_cert = |reason: String| KeyError::BadCertificate {
            path: cert_path.clone(),
            reason,
        };
        let certificate = Certificate::from_pem(&pem).map_err(bad_cert)?;
        let spki = secret
            .public_key()
            .to_public_key_der()
            .map_err(|e| bad_key(e.to_string()))?;
        if certificate.spki_der() != spki.as_bytes() {
            return Err(bad_cert(
                "certificate does not hold this key; delete it to regenerate".to_owned(),
            ));
        }
        let kid = libtrust_key_id(spki.as_bytes());
        let jwk = jwk(&certificate, &kid);
        Ok(SigningKey {
            signer,
            kid,
            certificate,
            jwk,
            dir: dir.to_owned(),
        })
    }

    /// The parsed signing key (aws-lc-rs, raw `r||s` signatures as the registry requires).
    pub fn signer(&self) -> &EcdsaKeyPair {
        &self.signer
    }

    /// The libtrust key id, as registry 2.x matches it against `rootcertbundle`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificate, PEM, for the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        self.certificate.pem()
    }

    /// The public key as a JWK whose `kid` equals the token `kid`.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The directory holding this key and its certificate.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `x5c` header value: the certificate, standard base64 with padding.
    pub fn x5c(&self) -> String {
        STANDARD.encode(self.certificate.der())
    }
}

/// Makes a private directory (mode 0700) and its parents.
fn create_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| KeyError::Io {
            path: dir.to_owned(),
            error,
        })
}

/// libtrust key id: SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 without padding,
/// twelve groups of four joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = digest(&SHA256, spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&hash.as_ref()[..LIBTRUST_KID_BYTES]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The JWK of a certified key, under `kid`, with the certificate as its `x5c`.
pub fn jwk(certificate: &Certificate, kid: &str) -> Jwk {
    let point = certificate.point();
    let coordinate =
        |c: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(c.expect("uncompressed point"));
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::ES256),
            key_id: Some(kid.to_owned()),
            x509_chain: Some(vec![STANDARD.encode(certificate.der())]),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: coordinate(point.x()),
            y: coordinate(point.y()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::file::{read_private_key, write_new};
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn realm() -> RealmName {
        RealmName::parse("default").unwrap()
    }

    #[test]
    fn generates_once_with_private_mode_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        let key_path = dir.path().join("default").join(KEY_FILE);
        let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.cert_pem(), second.cert_pem());
        assert_eq!(first.kid().len(), 59);
        assert_eq!(first.kid().split(':').count(), 12);
    }

    #[test]
    fn refuses_a_key_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        let key_path = dir.path().join("default").join(KEY_FILE);
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKey::load_or_create(&dir.path().join("default"), &realm())
            .err()
            .unwrap();
        assert!(matches!(err, KeyError::TooOpen { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn refuses_a_certificate_of_another_key() {
        let dir = tempfile::tempdir().unwrap();
        SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        let other = RealmName::parse("other").unwrap();
        SigningKey::load_or_create(&dir.path().join("other"), &other).unwrap();
        fs::copy(
            dir.path().join("other").join(CERT_FILE),
            dir.path().join("default").join(CERT_FILE),
        )
        .unwrap();
        let err = SigningKey::load_or_create(&dir.path().join("default"), &realm())
            .err()
            .unwrap();
        assert!(matches!(err, KeyError::BadCertificate { .. }), "{err}");
    }

    #[test]
    fn garbage_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let realm_dir = dir.path().join("default");
        fs::create_dir_all(&realm_dir).unwrap();
        write_new(&realm_dir.join(KEY_FILE), b"not a key", 0o600).unwrap();
        let err = SigningKey::load_or_create(&dir.path().join("default"), &realm())
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .ends_with("is not a PEM-encoded P-256 private key (PKCS#8): it is not PEM (no intact -----BEGIN PRIVATE KEY----- block)"),
            "{err}"
        );
    }

    /// Keys of other kinds, made by openssl as an operator would, are named in words.
    #[test]
    fn other_keys_are_named_in_words() {
        let cases: [(&[&str], &str); 5] = [
            (
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:1024",
                ],
                "it holds an RSA key",
            ),
            (
                &["genpkey", "-algorithm", "ED25519"],
                "it holds an Ed25519 key",
            ),
            (
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                ],
                "it holds an EC key on curve P-384",
            ),
            (
                &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
                "older SEC1 form",
            ),
            (
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ],
                "",
            ),
        ];
        for (args, expected) in cases {
            let made = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(made.status.success(), "{args:?}");
            match read_private_key(&made.stdout) {
                Ok(_) => assert_eq!(expected, "", "{args:?}"),
                Err(reason) => assert!(
                    reason.contains(expected) && !expected.is_empty(),
                    "{args:?}: {reason}"
                ),
            }
        }
        let mut damaged = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
        damaged.extend_from_slice(b"AAAA\0\n-----END PRIVATE KEY-----\n");
        assert!(read_private_key(&damaged).is_err());
        assert!(read_private_key(b"\0\x01garbage")
            .unwrap_err()
            .contains("not PEM"));
    }

    /// The kid must equal what libtrust computes; recompute the SPKI digest with openssl.
    #[test]
    fn libtrust_kid_matches_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        let key_path = dir.path().join("default").join(KEY_FILE);
        let spki = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key_path)
            .output()
            .expect("openssl runs");
        assert!(spki.status.success());
        assert_eq!(keys.kid(), libtrust_key_id(&spki.stdout));
        let dgst = Command::new("openssl")
            .args(["dgst", "-sha256", "-binary"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(&spki.stdout)?;
                child.wait_with_output()
            })
            .unwrap();
        let expected = data_encoding::BASE32_NOPAD.encode(&dgst.stdout[..30]);
        assert_eq!(keys.kid().replace(':', ""), expected);

        let cert = Command::new("openssl")
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(dir.path().join("default").join(CERT_FILE))
            .output()
            .unwrap();
        let key_pub = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key_path)
            .output()
            .unwrap();
        assert!(cert.status.success());
        assert_eq!(
            cert.stdout, key_pub.stdout,
            "certificate holds the realm key"
        );
    }

    #[test]
    fn jwk_kid_equals_token_kid() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKey::load_or_create(&dir.path().join("default"), &realm()).unwrap();
        let key = serde_json::to_value(keys.jwk()).unwrap();
        assert_eq!(key["kid"], keys.kid());
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
}
