//! The TLS trust of the connections the credential backends open (directories, OpenID issuers): a
//! root store from an operator's `ca_file`, and a client configuration on aws-lc-rs; and the
//! secrets those connections present, read from files only their owner may read. It reads
//! certificates and secrets; which server to connect to is each backend's business.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Adds the PEM certificates in `path` (a `ca_file`) to `roots`; an error names the file and says
/// what is wrong with it, for the start-up message.
pub fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), String> {
    let shown = path.display();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("ca_file {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_file {shown}: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("ca_file {shown}: no PEM certificate in it"));
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| format!("ca_file {shown}: {e}"))?;
    }
    Ok(())
}

/// A TLS client configuration trusting `roots` only, with no client certificate.
pub fn client_config(roots: RootCertStore) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Longest secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 4_096;

/// A secret an operator keeps in a file (a directory's bind password, a console client's secret),
/// for the setting `key`: the file's first line. The file must be a regular file that neither
/// group nor others may read (as private keys).
pub fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{key} {shown}: {e}"))?;
    let metadata = file.metadata().map_err(|e| format!("{key} {shown}: {e}"))?;
    if !metadata.is_file() {
        return Err(format!("{key} {shown}: not a regular file"));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{key} {shown}: mode {mode:o} lets group or others read it; chmod 600 it"
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_SECRET_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("{key} {shown}: {e}"))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(format!("{key} {shown}: empty"));
    }
    Ok(SecretString::from(password.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_secret_file_must_be_private_and_is_read_to_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bind.pw");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"s3cret pass\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let refused = read_secret_file("bind_password_file", &path).unwrap_err();
        assert!(refused.contains("mode 640"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret_file("bind_password_file", &path)
                .unwrap()
                .expose_secret(),
            "s3cret pass"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret_file("bind_password_file", &path)
            .unwrap_err()
            .contains("empty"));
        assert!(
            read_secret_file("bind_password_file", dir.path()).is_err(),
            "a directory"
        );
    }
}
