//! TLS for serving HTTPS and WSS directly: a rustls server configuration on the `ring`
//! provider from PEM files, offering HTTP/2 and HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of `--tls-cert` and `--tls-key` was given.
    #[error("--tls-cert and --tls-key must be given together")]
    Incomplete,
    /// A PEM file could not be read, or holds no certificate or key.
    #[error(transparent)]
    Pem(#[from] mfa::tls::MutualTlsError),
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
    let certificates = mfa::tls::read_certificates(cert_path)?;
    let key = mfa::tls::read_private_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
