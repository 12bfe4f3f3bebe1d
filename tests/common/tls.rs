//! Certificates for the TLS tests, made with the `openssl` CLI (`scripts/install-deps.sh` installs
//! it): a test CA, a server certificate it signed for `IP:127.0.0.1` and `DNS:localhost`, and an
//! unrelated CA that signed nothing, for the refused-certificate cases. ECDSA P-256, valid for
//! [`CERT_DAYS`] days. Used by `slapd.rs` (LDAPS and StartTLS) and `https.rs` (an HTTPS server).

use std::fs;
use std::path::Path;
use std::process::Command;

use super::external::describe;

/// Lifetime of the generated certificates.
pub const CERT_DAYS: &str = "2";

/// The test CA (PEM) that signed `server.pem`, in the directory given to [`write_certificates`].
pub const CA: &str = "ca.pem";
/// A CA (PEM) that signed nothing here.
pub const OTHER_CA: &str = "other-ca.pem";
/// The server certificate (PEM).
pub const SERVER_CERTIFICATE: &str = "server.pem";
/// The server certificate's private key (PEM, unencrypted).
pub const SERVER_KEY: &str = "server.key";

/// Writes `ca.pem` (the test CA), `server.pem`/`server.key` (signed by it, for 127.0.0.1 and
/// localhost) and `other-ca.pem` (an unrelated CA) into `dir`, with the `openssl` CLI.
pub fn write_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}); run scripts/install-deps.sh"));
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            describe(&output)
        );
    };
    let new_ca = |name: &str, subject: &str| {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            CERT_DAYS,
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    };
    new_ca("ca", "/CN=Portcullis test CA");
    new_ca("other-ca", "/CN=Portcullis unrelated test CA");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        CERT_DAYS,
        "-extfile",
        "server.ext",
    ]);
}
