//! Certificates of signing keys and realm certificate authorities: reading one (its public key,
//! expiry, whether it is a CA, who issued it) and making one (self-signed, a realm CA, or a leaf
//! issued by that CA).

use std::path::Path;

use p256::elliptic_curve::sec1::ToEncodedPoint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{file, KeyError};
use crate::names::RealmName;

/// A parsed certificate, kept in both encodings.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    pem: String,
    spki_der: Vec<u8>,
    point: p256::EncodedPoint,
    not_after_ms: i64,
}

impl Certificate {
    /// Reads one PEM certificate holding a P-256 public key.
    pub fn from_pem(pem: &str) -> Result<Certificate, String> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| "not a PEM certificate".to_owned())?
            .to_vec();
        let (spki_der, point, not_after_ms) = {
            let (_, cert) = X509Certificate::from_der(&der)
                .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
            let spki = cert.public_key();
            let point = p256::PublicKey::from_sec1_bytes(&spki.subject_public_key.data)
                .map_err(|_| "its public key is not a P-256 key".to_owned())?
                .to_encoded_point(false);
            let not_after_ms = cert.validity().not_after.timestamp().saturating_mul(1000);
            (spki.raw.to_vec(), point, not_after_ms)
        };
        Ok(Certificate {
            der,
            pem: pem.to_owned(),
            spki_der,
            point,
            not_after_ms,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The DER SubjectPublicKeyInfo of the certified key.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The certified public key as an uncompressed point.
    pub fn point(&self) -> &p256::EncodedPoint {
        &self.point
    }

    /// When it stops being valid, Unix milliseconds.
    pub fn not_after_ms(&self) -> i64 {
        self.not_after_ms
    }

    /// True when `issuer`'s key signed this certificate and `issuer` is a CA.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        let (Ok((_, cert)), Ok((_, ca))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        ca.is_ca()
            && cert.issuer().as_raw() == ca.subject().as_raw()
            && cert.verify_signature(Some(ca.public_key())).is_ok()
    }
}

/// How long a certificate is valid for, from an hour ago (for clocks a little behind).
fn validity(params: &mut rcgen::CertificateParams, not_after_ms: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::milliseconds(not_after_ms - crate::keys::now_ms());
}

fn rcgen_error(path: &Path) -> impl Fn(rcgen::Error) -> KeyError + '_ {
    move |e| KeyError::BadCertificate {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A self-signed certificate for a signing key, valid until `not_after_ms`, as PEM.
pub fn self_signed(
    key: &rcgen::KeyPair,
    realm: &RealmName,
    not_after_ms: i64,
    path: &Path,
) -> Result<String, KeyError> {
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error(path))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("portcullis realm {realm}"),
    );
    validity(&mut params, not_after_ms);
    Ok(params.self_signed(key).map_err(rcgen_error(path))?.pem())
}

/// The subject of a realm's CA; leaf certificates name it as their issuer.
fn ca_params(realm: &RealmName, not_after_ms: i64) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("portcullis realm {realm} CA"),
    );
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, not_after_ms);
    params
}

/// A realm's certificate authority with its private key at hand, able to certify signing keys.
pub struct Authority {
    realm: RealmName,
    key: rcgen::KeyPair,
    certificate: Certificate,
}

impl Authority {
    /// Makes a new CA: its private key goes to `key_path` (mode 0600), its certificate is
    /// returned (the caller stores it and writes it beside the key).
    pub fn create(
        key_path: &Path,
        realm: &RealmName,
        not_after_ms: i64,
    ) -> Result<Authority, KeyError> {
        file::write_key(key_path, &p256::SecretKey::random(&mut rand_core::OsRng))?;
        let key = file::read_key_pair(key_path)?;
        let pem = ca_params(realm, not_after_ms)
            .self_signed(&key)
            .map_err(rcgen_error(key_path))?
            .pem();
        let certificate =
            Certificate::from_pem(&pem).map_err(|reason| KeyError::BadCertificate {
                path: key_path.to_owned(),
                reason,
            })?;
        Ok(Authority {
            realm: realm.clone(),
            key,
            certificate,
        })
    }

    /// The CA of `realm` whose certificate is `certificate`, with the private key read from
    /// `key_path`; refused when the key is not the certificate's.
    pub fn load(
        key_path: &Path,
        realm: &RealmName,
        certificate: &Certificate,
    ) -> Result<Authority, KeyError> {
        let key = file::read_key_pair(key_path)?;
        if key.public_key_raw() != certificate.point().as_bytes() {
            return Err(KeyError::BadKey {
                path: key_path.to_owned(),
                reason: format!("it is not the key of realm {realm}'s certificate authority"),
            });
        }
        Ok(Authority {
            realm: realm.clone(),
            key,
            certificate: certificate.clone(),
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// A certificate for a signing key, issued by this CA and valid until `not_after_ms`, as PEM.
    pub fn certify(
        &self,
        key: &rcgen::KeyPair,
        generation: i64,
        not_after_ms: i64,
        path: &Path,
    ) -> Result<String, KeyError> {
        // rcgen takes the issuer's name and key identifier from a certificate of its own making:
        // the same parameters give the same subject, and the same key the same identifier.
        let issuer = ca_params(&self.realm, self.certificate.not_after_ms())
            .self_signed(&self.key)
            .map_err(rcgen_error(path))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error(path))?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("portcullis realm {} key {generation}", self.realm),
        );
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, not_after_ms);
        let pem = params
            .signed_by(key, &issuer, &self.key)
            .map_err(rcgen_error(path))?
            .pem();
        let leaf = Certificate::from_pem(&pem).map_err(|reason| KeyError::BadCertificate {
            path: path.to_owned(),
            reason,
        })?;
        if !leaf.is_issued_by(&self.certificate) {
            return Err(KeyError::BadCertificate {
                path: path.to_owned(),
                reason: "the issued certificate does not verify against the CA certificate"
                    .to_owned(),
            });
        }
        Ok(pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn realm() -> RealmName {
        RealmName::parse("default").unwrap()
    }

    /// A leaf the realm CA certifies verifies against the CA with openssl, names it as issuer, and
    /// is told apart from one another CA certified.
    #[test]
    fn certified_keys_chain_to_their_ca_only() {
        let dir = tempfile::tempdir().unwrap();
        let not_after = crate::keys::now_ms() + 10 * crate::keys::MS_PER_DAY;
        let ca = Authority::create(&dir.path().join("ca.pem"), &realm(), not_after * 2).unwrap();
        let other =
            Authority::create(&dir.path().join("other.pem"), &realm(), not_after * 2).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let path = dir.path().join("leaf.pem");
        let leaf = Certificate::from_pem(&ca.certify(&key, 7, not_after, &path).unwrap()).unwrap();
        let stranger =
            Certificate::from_pem(&other.certify(&key, 7, not_after, &path).unwrap()).unwrap();
        assert!(leaf.is_issued_by(ca.certificate()));
        assert!(!stranger.is_issued_by(ca.certificate()));
        assert!(!leaf.is_issued_by(&leaf), "a leaf is no CA");
        assert!((leaf.not_after_ms() - not_after).abs() < 2_000);

        std::fs::write(dir.path().join("ca.crt"), ca.certificate().pem()).unwrap();
        std::fs::write(&path, leaf.pem()).unwrap();
        let verified = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.path().join("ca.crt"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }

    #[test]
    fn a_ca_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let not_after = crate::keys::now_ms() + crate::keys::MS_PER_DAY;
        let ca = Authority::create(&dir.path().join("ca.pem"), &realm(), not_after).unwrap();
        Authority::create(&dir.path().join("other.pem"), &realm(), not_after).unwrap();
        let err = Authority::load(&dir.path().join("other.pem"), &realm(), ca.certificate())
            .err()
            .unwrap();
        assert!(err
            .to_string()
            .contains("not the key of realm default's certificate authority"));
        assert!(Certificate::from_pem("not pem").is_err());
    }
}
