//! Mutual TLS between chat servers and the service, with rustls on the `ring` provider:
//! the service accepts only client certificates issued by its configured CA, and a chat
//! server accepts only a service certificate issued by the CA it pins (no system roots).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MutualTlsError {
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
    /// A certificate file holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(PathBuf),
    /// rustls refused a certificate, a key or the CA.
    #[error("invalid certificate, key or CA")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built from the CA.
    #[error("invalid client CA")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// Every certificate of a PEM file, in order.
///
/// # Errors
/// [`MutualTlsError::Pem`] or [`MutualTlsError::NoCertificate`].
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, MutualTlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|source| MutualTlsError::Pem {
            what: "certificates",
            path: path.to_path_buf(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(MutualTlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certificates)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`MutualTlsError::Pem`].
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, MutualTlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| MutualTlsError::Pem {
        what: "a private key",
        path: path.to_path_buf(),
        source,
    })
}

fn roots(ca_path: &Path) -> Result<RootCertStore, MutualTlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(ca_path)? {
        roots.add(certificate)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The service's configuration: its certificate chain and key, and the CA whose client
/// certificates it requires (a handshake without one, or with another CA's, fails). TLS 1.2
/// and 1.3, HTTP/1.1 by ALPN.
///
/// # Errors
/// [`MutualTlsError`] naming the file or check that failed.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    client_ca_path: &Path,
) -> Result<Arc<ServerConfig>, MutualTlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca_path)?), provider())
            .build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certificates(cert_path)?, read_private_key(key_path)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A chat server's configuration: trusts only service certificates issued by the CA of
/// `ca_path`, and presents the client certificate chain and key.
///
/// # Errors
/// [`MutualTlsError`] naming the file or check that failed.
pub fn client_config(
    ca_path: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> Result<ClientConfig, MutualTlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_path)?)
        .with_client_auth_cert(read_certificates(cert_path)?, read_private_key(key_path)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
