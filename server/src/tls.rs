//! TLS for serving HTTPS and WSS directly: a rustls server configuration on the `ring`
//! provider from PEM files, offering HTTP/2 and HTTP/1.1 by ALPN.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of `--tls-cert` and `--tls-key` was given.
    #[error("--tls-cert and --tls-key must be given together")]
    Incomplete,
    /// A PEM file could not be read or holds no usable item.
    #[error("cannot read {what} from {path}")]
    Pem {
        /// `certificates` or `a private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused the certificate chain or the key (e.g. they do not match).
    #[error("invalid certificate or key")]
    Rustls(#[from] rustls::Error),
}

/// Builds the server configuration from a PEM certificate chain and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1), with rustls' safe default protocol versions (TLS 1.2 and 1.3)
/// on the `ring` provider.
///
/// # Errors
/// [`TlsError`] naming the file or check that failed.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<RustlsConfig, TlsError> {
    let certificates = CertificateDer::pem_file_iter(cert_path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            what: "certificates",
            path: cert_path.to_path_buf(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Pem {
        what: "a private key",
        path: key_path.to_path_buf(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
