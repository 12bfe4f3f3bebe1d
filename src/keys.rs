//! Realm signing keys: generated on first use into `<keys.dir>/<realm>/` (PKCS#8 PEM, mode 0600, plus a
//! long-lived self-signed certificate for the registry's `rootcertbundle`), loaded and parsed once, and
//! described three ways: libtrust key id, PEM bundle and JWKS. Signing itself lives in `token`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use p256::pkcs8::der::pem;
use p256::pkcs8::{
    DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding, ObjectIdentifier,
    PrivateKeyInfo,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::names::RealmName;

/// Validity of generated certificates. The registry checks it on the `x5c` path (not on the `kid`
/// path), so it is long; rotate keys deliberately rather than let a certificate lapse.
pub const CERT_VALIDITY_DAYS: i64 = 3650;
/// Name of the private key file in a realm's key directory.
pub const KEY_FILE: &str = "key.pem";
/// Name of the certificate file in a realm's key directory.
pub const CERT_FILE: &str = "cert.pem";
/// Bytes of the SPKI digest that make up a libtrust key id.
const LIBTRUST_KID_BYTES: usize = 30;

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

/// A realm's signing key, parsed once, with everything derived from it.
pub struct RealmKeys {
    signer: EcdsaKeyPair,
    kid: String,
    cert_der: Vec<u8>,
    cert_pem: String,
    jwk: Jwk,
    dir: PathBuf,
}

impl RealmKeys {
    /// Loads the realm's key and certificate, generating whichever is missing.
    pub fn load_or_create(keys_dir: &Path, realm: &RealmName) -> Result<RealmKeys, KeyError> {
        let dir = keys_dir.join(realm.as_str());
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| KeyError::Io { path, error }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        if !key_path.exists() {
            generate_key(&key_path)?;
        }
        let mode = fs::metadata(&key_path)
            .map_err(io(&key_path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: key_path,
                mode: mode & 0o777,
            });
        }
        let key_pem = fs::read(&key_path).map_err(io(&key_path))?;
        let bad_key = |reason: String| KeyError::BadKey {
            path: key_path.clone(),
            reason,
        };
        let secret = read_private_key(&key_pem).map_err(bad_key)?;
        let pkcs8 = secret.to_pkcs8_der().map_err(|e| bad_key(e.to_string()))?;
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_bytes())
            .map_err(|e| bad_key(e.to_string()))?;
        let public = secret.public_key();
        if !cert_path.exists() {
            write_certificate(&cert_path, pkcs8.as_bytes(), realm)?;
        }
        let cert_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let bad_cert = |reason: &str| KeyError::BadCertificate {
            path: cert_path.clone(),
            reason: reason.to_owned(),
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| bad_cert("not a PEM certificate"))?
            .to_vec();
        let point = p256::EncodedPoint::from(public);
        let contains_key = cert_der.windows(point.len()).any(|w| w == point.as_bytes());
        if !contains_key {
            return Err(bad_cert(
                "certificate does not hold this realm's public key; delete it to regenerate",
            ));
        }
        let spki = public
            .to_public_key_der()
            .map_err(|e| bad_key(e.to_string()))?;
        let kid = libtrust_key_id(spki.as_bytes());
        let jwk = jwk(&point, &kid, &cert_der);
        Ok(RealmKeys {
            signer,
            kid,
            cert_der,
            cert_pem,
            jwk,
            dir,
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

    /// The certificate, DER, for the `x5c` header.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM, for the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The public key as a JWK whose `kid` equals the token `kid`.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The directory holding this realm's key and certificate.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JWKS document of this realm (one key today; several during a rotation).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// `x5c` header value: standard base64 with padding.
    pub fn x5c(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }
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
fn read_private_key(pem_text: &[u8]) -> Result<p256::SecretKey, String> {
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

fn generate_key(path: &Path) -> Result<(), KeyError> {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::BadKey {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    write_new(path, pem.as_bytes(), 0o600)
}

fn write_certificate(path: &Path, pkcs8_der: &[u8], realm: &RealmName) -> Result<(), KeyError> {
    let bad = |e: rcgen::Error| KeyError::BadCertificate {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let key = rcgen::KeyPair::try_from(pkcs8_der).map_err(bad)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("portcullis realm {realm}"),
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CERT_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(bad)?;
    write_new(path, cert.pem().as_bytes(), 0o644)
}

/// Publishes a new file atomically, with `mode` from the start: the bytes go to a private temporary
/// file that is then hard-linked into place. When another process (a second instance, an operator
/// command) published the file first, theirs is kept and ours is dropped, so every process ends up
/// loading the same key.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
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

fn jwk(point: &p256::EncodedPoint, kid: &str, cert_der: &[u8]) -> Jwk {
    let coordinate =
        |c: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(c.expect("uncompressed point"));
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::ES256),
            key_id: Some(kid.to_owned()),
            x509_chain: Some(vec![STANDARD.encode(cert_der)]),
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
    use super::*;
    use std::process::Command;

    fn realm() -> RealmName {
        RealmName::parse("default").unwrap()
    }

    #[test]
    fn generates_once_with_private_mode_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
        let key_path = dir.path().join("default").join(KEY_FILE);
        let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.cert_pem(), second.cert_pem());
        assert_eq!(first.kid().len(), 59);
        assert_eq!(first.kid().split(':').count(), 12);
    }

    #[test]
    fn refuses_a_key_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
        let key_path = dir.path().join("default").join(KEY_FILE);
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = RealmKeys::load_or_create(dir.path(), &realm())
            .err()
            .unwrap();
        assert!(matches!(err, KeyError::TooOpen { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn refuses_a_certificate_of_another_key() {
        let dir = tempfile::tempdir().unwrap();
        RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
        let other = RealmName::parse("other").unwrap();
        RealmKeys::load_or_create(dir.path(), &other).unwrap();
        fs::copy(
            dir.path().join("other").join(CERT_FILE),
            dir.path().join("default").join(CERT_FILE),
        )
        .unwrap();
        let err = RealmKeys::load_or_create(dir.path(), &realm())
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
        let err = RealmKeys::load_or_create(dir.path(), &realm())
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
        let keys = RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
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
        let keys = RealmKeys::load_or_create(dir.path(), &realm()).unwrap();
        let jwks = serde_json::to_value(keys.jwks()).unwrap();
        let key = &jwks["keys"][0];
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
