//! Certificates for development and tests of the second-factor service's mutual TLS: a local
//! CA, the service's certificate for `localhost` and `127.0.0.1`, and a chat server's client
//! certificate, written as PEM files. `cargo xtask mfa`, `cargo xtask cluster` and the tests
//! use them; a deployment uses certificates of its own CA (see `deploy/README.md`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Where [`generate`] wrote each file.
#[derive(Debug, Clone)]
pub struct DevCertificates {
    /// The CA's certificate: the service's `--client-ca` and the chat's `--mfa-ca`.
    pub ca_cert: PathBuf,
    /// The service's certificate (`--tls-cert`), for `localhost` and `127.0.0.1`.
    pub service_cert: PathBuf,
    /// Its private key (`--tls-key`).
    pub service_key: PathBuf,
    /// The chat server's client certificate (`--mfa-client-cert`).
    pub client_cert: PathBuf,
    /// Its private key (`--mfa-client-key`).
    pub client_key: PathBuf,
}

impl DevCertificates {
    /// The files [`generate`] writes into `folder`, whether or not they exist yet.
    pub fn in_folder(folder: &Path) -> Self {
        Self {
            ca_cert: folder.join("ca.pem"),
            service_cert: folder.join("mfa-service.pem"),
            service_key: folder.join("mfa-service.key"),
            client_cert: folder.join("chat-client.pem"),
            client_key: folder.join("chat-client.key"),
        }
    }

    /// Whether every file exists.
    pub fn exist(&self) -> bool {
        [
            &self.ca_cert,
            &self.service_cert,
            &self.service_key,
            &self.client_cert,
            &self.client_key,
        ]
        .iter()
        .all(|path| path.is_file())
    }
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCertificateError {
    /// rcgen refused the parameters.
    #[error("cannot make a certificate")]
    Rcgen(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {0}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// A new CA named `name`, able to sign certificates.
fn certificate_authority(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

/// A leaf certificate signed by `issuer`: its PEM and its key's PEM.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    subject_alt_names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), rcgen::Error> {
    let names: Vec<String> = subject_alt_names
        .iter()
        .map(|&name| name.to_owned())
        .collect();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let certificate = params.signed_by(&key, issuer)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Writes `contents` to `path` (creating its folder), readable by its owner only.
fn write(path: &Path, contents: &str) -> Result<(), DevCertificateError> {
    let failed = |error| DevCertificateError::Io(path.to_path_buf(), error);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| DevCertificateError::Io(parent.to_path_buf(), error))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(failed)
}

/// Makes a CA named `ca_name`, the service's certificate and a chat server's client
/// certificate (ECDSA P-256), and writes them into `folder` (see
/// [`DevCertificates::in_folder`]), replacing any there.
///
/// # Errors
/// [`DevCertificateError`].
pub fn generate(folder: &Path, ca_name: &str) -> Result<DevCertificates, DevCertificateError> {
    let files = DevCertificates::in_folder(folder);
    let ca = certificate_authority(ca_name)?;
    let (service_cert, service_key) = leaf(
        &ca,
        "mfa-service",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = leaf(
        &ca,
        "chat-server",
        &["chat-server"],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    write(&files.ca_cert, &ca.pem())?;
    write(&files.service_cert, &service_cert)?;
    write(&files.service_key, &service_key)?;
    write(&files.client_cert, &client_cert)?;
    write(&files.client_key, &client_key)?;
    Ok(files)
}
