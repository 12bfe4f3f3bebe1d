//! The TLS trust of the connections the credential backends open (directories, OpenID issuers): a
//! root store from an operator's `ca_file`, and a client configuration on aws-lc-rs. It reads
//! certificates; which server to connect to is each backend's business.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

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
