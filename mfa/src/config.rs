//! The service's settings (`mfa-service --help`): flags, each with an `MFA_*` environment
//! variable, and the [`Service`] they start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Parser;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::net::TcpListener;

use crate::error::MfaError;
use crate::factors::{Factors, RelyingParty};
use crate::key::{ServerKey, ServerKeyError};
use crate::tls::MutualTlsError;

/// Settings of `mfa-service`. `Debug` never prints the key.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mfa-service",
    about = "Second login factors of the end-to-end encrypted chat, served to chat servers over mutual TLS"
)]
pub struct ServiceConfig {
    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "MFA_BIND", default_value = "127.0.0.1:8443")]
    pub bind: SocketAddr,
    /// The database: `sqlite://FILE` (created when missing) or `postgres://USER@HOST/NAME`.
    #[arg(long, env = "MFA_DATABASE_URL", default_value = "sqlite://data/mfa.db")]
    pub database_url: String,
    /// The key that seals TOTP secrets and keys recovery code MACs: 32 bytes in standard
    /// base64. Takes precedence over `--key-file`.
    #[arg(long, env = "MFA_KEY", hide_env_values = true)]
    pub key: Option<ServerKey>,
    /// File holding the 32-byte key, created (mode 0600) with random bytes when missing.
    /// Default: `mfa.key` next to the SQLite file, or `data/mfa.key`. A chat server's
    /// `server.key` works too, for a store moved out of a chat server (see the deploy guide).
    #[arg(long, env = "MFA_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// PEM file with the service's certificate chain (the chat servers' `--mfa-ca` must have
    /// issued it).
    #[arg(long, env = "MFA_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM file with the service's private key.
    #[arg(long, env = "MFA_TLS_KEY")]
    pub tls_key: PathBuf,
    /// PEM file with the CA whose client certificates are accepted; every other client is
    /// refused during the TLS handshake.
    #[arg(long, env = "MFA_CLIENT_CA")]
    pub client_ca: PathBuf,
    /// The WebAuthn relying party id of the chat's web client: its domain (never an IP
    /// address), e.g. `chat.example.org`.
    #[arg(long, env = "MFA_WEBAUTHN_RP_ID", default_value = "localhost")]
    pub webauthn_rp_id: String,
    /// The origin the web client runs at, e.g. `https://chat.example.org` (with the id
    /// `localhost`, any port is accepted).
    #[arg(
        long,
        env = "MFA_WEBAUTHN_ORIGIN",
        default_value = "http://localhost:8080"
    )]
    pub webauthn_origin: url::Url,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceStartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database")]
    Database(#[from] MfaError),
    /// The key could not be read or created.
    #[error("cannot load the key")]
    Key(#[from] ServerKeyError),
    /// The certificates could not be loaded.
    #[error("cannot set up mutual tls")]
    Tls(#[from] MutualTlsError),
    /// The listening socket could not be bound.
    #[error("cannot bind the listening socket")]
    Bind(#[source] std::io::Error),
}

impl ServiceConfig {
    /// Where the key file is: `--key-file`, else `mfa.key` next to the SQLite file, else
    /// `data/mfa.key`.
    pub fn key_path(&self) -> PathBuf {
        if let Some(path) = &self.key_file {
            return path.clone();
        }
        let folder = self
            .database_url
            .starts_with("sqlite:")
            .then(|| SqliteConnectOptions::from_str(&self.database_url).ok())
            .flatten()
            .map(|options| options.get_filename().to_path_buf())
            .filter(|file| !file.as_os_str().is_empty() && file != Path::new(":memory:"))
            .and_then(|file| file.parent().map(Path::to_path_buf));
        folder
            .unwrap_or_else(|| PathBuf::from("data"))
            .join("mfa.key")
    }
}

/// A service that is bound and migrated, ready to run.
pub struct Service {
    listener: TcpListener,
    port: u16,
    factors: Factors,
    tls: std::sync::Arc<rustls::ServerConfig>,
}

impl Service {
    /// Loads the certificates and the key, opens (creating and migrating) the database and
    /// binds the listener.
    ///
    /// # Errors
    /// [`ServiceStartError`] naming the step that failed.
    pub async fn build(config: ServiceConfig) -> Result<Self, ServiceStartError> {
        let tls = crate::tls::server_config(&config.tls_cert, &config.tls_key, &config.client_ca)?;
        let key = match &config.key {
            Some(key) => key.clone(),
            None => ServerKey::load_or_create(&config.key_path())?,
        };
        let relying_party = RelyingParty {
            id: config.webauthn_rp_id.clone(),
            origin: config.webauthn_origin.clone(),
        };
        let factors = Factors::open(&config.database_url, key, &relying_party).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(ServiceStartError::Bind)?;
        let port = listener
            .local_addr()
            .map_err(ServiceStartError::Bind)?
            .port();
        Ok(Self {
            listener,
            port,
            factors,
            tls,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store it serves (tests read its database).
    pub fn factors(&self) -> &Factors {
        &self.factors
    }

    /// Serves until `shutdown` completes.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = crate::service::router(self.factors);
        crate::service::serve(self.listener, router, self.tls, shutdown).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(extra: &[&str]) -> ServiceConfig {
        let mut arguments = vec![
            "mfa-service",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--client-ca",
            "ca.pem",
        ];
        arguments.extend_from_slice(extra);
        ServiceConfig::try_parse_from(arguments).unwrap()
    }

    #[test]
    fn the_key_lives_next_to_the_database() {
        assert_eq!(parse(&[]).key_path(), Path::new("data/mfa.key"));
        let config = parse(&["--database-url", "sqlite:///srv/mfa/factors.db"]);
        assert_eq!(config.key_path(), Path::new("/srv/mfa/mfa.key"));
        let config = parse(&["--database-url", "postgres://mfa@db/mfa"]);
        assert_eq!(config.key_path(), Path::new("data/mfa.key"));
        let config = parse(&["--key-file", "/etc/mfa/key"]);
        assert_eq!(config.key_path(), Path::new("/etc/mfa/key"));
    }

    #[test]
    fn certificates_are_required_and_the_key_never_printed() {
        assert!(ServiceConfig::try_parse_from(["mfa-service"]).is_err());
        let key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let printed = format!("{:?}", parse(&["--key", key]));
        assert!(!printed.contains(key), "{printed}");
    }
}
