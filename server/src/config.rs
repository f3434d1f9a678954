//! The server's settings: command-line flags, each with a `CHAT_*` environment variable and a
//! default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderName;
use clap::Parser;
use sqlx::sqlite::SqliteConnectOptions;

use mfa::ServerKey;

/// The reverse proxies trusted by default: loopback.
pub const DEFAULT_TRUSTED_PROXIES: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Name of the server key file when neither `--server-key` nor `--server-key-file` is given;
/// it lives next to the SQLite file.
pub const DEFAULT_SERVER_KEY_FILE: &str = "server.key";

/// Where attachment chunks go ([`Config::attachment_store`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentStore {
    /// A local folder.
    Folder(PathBuf),
    /// Memory (an in-memory database's attachments).
    Memory,
    /// An object store URL.
    Url(String),
}

/// Server settings, read from command-line flags or `CHAT_*` environment variables.
///
/// `Debug` prints every setting except the server key, which prints as `[redacted]`.
#[derive(Debug, Clone, Parser)]
#[command(name = "server", about = "End-to-end encrypted group chat server")]
pub struct Config {
    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The database: `sqlite://FILE` (embedded, the default; the file and its folder are
    /// created when missing) or `postgres://USER@HOST/NAME`
    /// (shared by several instances; see README, "Deploying beyond one machine").
    #[arg(
        long,
        env = "CHAT_DATABASE_URL",
        default_value = "sqlite://data/chat.db"
    )]
    pub database_url: String,
    /// Directory of the built web client, served for every path outside `/api`.
    #[arg(long, env = "CHAT_STATIC_DIR", default_value = "web-client/dist")]
    pub static_dir: PathBuf,
    /// How long a login session lasts at most, in hours.
    #[arg(long, env = "CHAT_SESSION_TTL_HOURS", default_value_t = 720)]
    pub session_ttl_hours: u64,
    /// How long a session may go unused before it ends, in minutes (default one week).
    #[arg(long, env = "CHAT_SESSION_IDLE_MINUTES", default_value_t = 10_080)]
    pub session_idle_minutes: u64,
    /// The server key that seals TOTP secrets and keys recovery code MACs: 32 bytes in
    /// standard base64. Takes precedence over `--server-key-file`.
    #[arg(long, env = "CHAT_SERVER_KEY", hide_env_values = true)]
    pub server_key: Option<ServerKey>,
    /// File holding the 32-byte server key, created (mode 0600) with random bytes when
    /// missing. Default: `server.key` in the directory of the SQLite file (`data/server.key`
    /// for an in-memory database).
    #[arg(long, env = "CHAT_SERVER_KEY_FILE")]
    pub server_key_file: Option<PathBuf>,
    /// Header that carries the client's address when the server runs behind a reverse proxy
    /// (for example `X-Forwarded-For`). It is believed only from `--trusted-proxies`, and
    /// only as far as their own entries go: the client is the rightmost address that is not
    /// a trusted proxy (a client can write anything to the left). Without this setting the
    /// socket's peer address is used and the header ignored.
    #[arg(long, env = "CHAT_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<HeaderName>,
    /// The reverse proxies whose `--client-ip-header` entries are believed, as CIDR blocks
    /// separated by commas (default: loopback only).
    #[arg(
        long,
        env = "CHAT_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Attempts allowed per username on each of prelogin, login and the TOTP step within
    /// one window; each client IP gets three times as many.
    #[arg(long, env = "CHAT_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: u32,
    /// Accounts that one client address (an IPv4 address or an IPv6 /64) may register within
    /// one window.
    #[arg(long, env = "CHAT_REGISTER_ATTEMPTS", default_value_t = 10)]
    pub register_attempts: u32,
    /// Length of the login throttling window, in seconds.
    #[arg(long, env = "CHAT_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,
    /// PEM file with the TLS certificate chain; with `--tls-key`, the server speaks HTTPS
    /// and WSS itself.
    #[arg(long, env = "CHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the TLS private key (PKCS#8, PKCS#1 or SEC1); needs `--tls-cert`.
    #[arg(long, env = "CHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Marks the session cookie `Secure`, so browsers send it over HTTPS only: for a server
    /// behind a TLS-terminating reverse proxy. Implied by `--tls-cert`.
    #[arg(long, env = "CHAT_COOKIE_SECURE")]
    pub cookie_secure: bool,
    /// The second-factor service (`https://HOST:PORT`, see `mfa-service`): TOTP secrets,
    /// recovery codes and login challenges are then kept there, and the chat database holds
    /// none. Needs `--mfa-ca`, `--mfa-client-cert` and `--mfa-client-key`. Without it they
    /// are kept in this process, in `--mfa-database-url`.
    #[arg(
        long,
        env = "CHAT_MFA_URL",
        requires_all = ["mfa_ca", "mfa_client_cert", "mfa_client_key"]
    )]
    pub mfa_url: Option<url::Url>,
    /// PEM file with the CA that issued the service's certificate: the only one trusted for
    /// it.
    #[arg(long, env = "CHAT_MFA_CA", requires = "mfa_url")]
    pub mfa_ca: Option<PathBuf>,
    /// PEM file with this server's client certificate chain for the service.
    #[arg(long, env = "CHAT_MFA_CLIENT_CERT", requires = "mfa_url")]
    pub mfa_client_cert: Option<PathBuf>,
    /// PEM file with the private key of `--mfa-client-cert`.
    #[arg(long, env = "CHAT_MFA_CLIENT_KEY", requires = "mfa_url")]
    pub mfa_client_key: Option<PathBuf>,
    /// The database of second factors kept in this process (no `--mfa-url`). Default:
    /// `mfa.db` next to the SQLite file, memory for an in-memory database, and the schema
    /// `mfa` of the PostgreSQL database.
    #[arg(long, env = "CHAT_MFA_DATABASE_URL", conflicts_with = "mfa_url")]
    pub mfa_database_url: Option<String>,
    /// The WebAuthn relying party id for passkeys kept in this process: the web client's
    /// domain, never an IP address (browsers refuse passkeys on `http://127.0.0.1`; open
    /// `http://localhost:8080` instead). With `--mfa-url` the service's own setting applies.
    #[arg(long, env = "CHAT_WEBAUTHN_RP_ID", default_value = "localhost")]
    pub webauthn_rp_id: String,
    /// The origin the web client runs at, e.g. `https://chat.example.org` (with the id
    /// `localhost`, any port is accepted).
    #[arg(
        long,
        env = "CHAT_WEBAUTHN_ORIGIN",
        default_value = "http://localhost:8080"
    )]
    pub webauthn_origin: url::Url,
    /// Where attachment chunks are stored, as an object store URL (`file:///srv/chat/files`,
    /// `memory:///`, or `s3://bucket/prefix` in a build with the `s3` feature). Default: the
    /// folder `attachments` next to the SQLite file (in memory for an in-memory database).
    #[arg(long, env = "CHAT_ATTACHMENTS_URL")]
    pub attachments_url: Option<String>,
    /// How much attachment ciphertext one user may have stored, in MiB, over every room.
    #[arg(long, env = "CHAT_ATTACHMENT_QUOTA_MIB", default_value_t = 1024)]
    pub attachment_quota_mib: u64,
    /// How long an uploaded attachment that no message names is kept, in seconds (a day).
    #[arg(long, env = "CHAT_ATTACHMENT_TTL_SECS", default_value_t = 86_400)]
    pub attachment_ttl_secs: u64,
    /// How often unattached uploads past their time are looked for, in seconds.
    #[arg(long, env = "CHAT_ATTACHMENT_COLLECT_SECS", default_value_t = 600)]
    pub attachment_collect_secs: u64,
}

impl Config {
    /// The default settings with the given database URL and static directory, as the flags
    /// would give them (tests and embedders change fields from there).
    pub fn new(database_url: impl Into<String>, static_dir: impl Into<PathBuf>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: database_url.into(),
            static_dir: static_dir.into(),
            session_ttl_hours: 720,
            session_idle_minutes: 10_080,
            server_key: None,
            server_key_file: None,
            client_ip_header: None,
            // The same as the flag's default; a block that did not parse would only be
            // trusted less.
            trusted_proxies: DEFAULT_TRUSTED_PROXIES
                .iter()
                .filter_map(|block| block.parse().ok())
                .collect(),
            login_attempts: 10,
            register_attempts: 10,
            login_window_secs: 900,
            tls_cert: None,
            tls_key: None,
            cookie_secure: false,
            mfa_url: None,
            mfa_ca: None,
            mfa_client_cert: None,
            mfa_client_key: None,
            mfa_database_url: None,
            webauthn_rp_id: "localhost".to_owned(),
            webauthn_origin: mfa::factors::RelyingParty::localhost().origin,
            attachments_url: None,
            attachment_quota_mib: 1024,
            attachment_ttl_secs: 86_400,
            attachment_collect_secs: 600,
        }
    }

    /// The attachment quota per user, in bytes.
    pub fn attachment_quota_bytes(&self) -> u64 {
        self.attachment_quota_mib.saturating_mul(1024 * 1024)
    }

    /// How long an unattached upload is kept.
    pub fn attachment_ttl(&self) -> Duration {
        Duration::from_secs(self.attachment_ttl_secs)
    }

    /// How often unattached uploads are collected (at least every second).
    pub fn attachment_collect_period(&self) -> Duration {
        Duration::from_secs(self.attachment_collect_secs.max(1))
    }

    /// Whether the database is an in-memory SQLite database (gone when the process ends).
    fn database_in_memory(&self) -> bool {
        self.database_url.starts_with("sqlite:")
            && (self.database_url.contains(":memory:") || self.database_url.contains("mode=memory"))
    }

    /// The folder of the SQLite file, or `None` for an in-memory database or PostgreSQL.
    fn database_directory(&self) -> Option<PathBuf> {
        if !self.database_url.starts_with("sqlite:") || self.database_in_memory() {
            return None;
        }
        SqliteConnectOptions::from_str(&self.database_url)
            .ok()
            .map(|options| options.get_filename().to_path_buf())
            .filter(|file| !file.as_os_str().is_empty())
            .map(|file| file.parent().map(Path::to_path_buf).unwrap_or_default())
    }

    /// Where attachments are stored: `--attachments-url`, else the folder `attachments` next
    /// to the SQLite file, else memory for an in-memory database, else `data/attachments`
    /// (PostgreSQL; several instances must share one `--attachments-url` instead).
    pub fn attachment_store(&self) -> AttachmentStore {
        if let Some(url) = &self.attachments_url {
            return AttachmentStore::Url(url.clone());
        }
        match self.database_directory() {
            Some(directory) => AttachmentStore::Folder(directory.join("attachments")),
            None if self.database_in_memory() => AttachmentStore::Memory,
            None => AttachmentStore::Folder(Path::new("data").join("attachments")),
        }
    }

    /// The absolute session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_hours.saturating_mul(3600))
    }

    /// How long a session may go unused.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_minutes.saturating_mul(60))
    }

    /// The login throttling window.
    pub fn login_window(&self) -> Duration {
        Duration::from_secs(self.login_window_secs)
    }

    /// Whether the server serves HTTPS itself (both TLS files are set).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The database of in-process second factors: `--mfa-database-url`, else `mfa.db` next
    /// to the SQLite file, else a database in memory (in-memory chat database), else the
    /// schema `mfa` of the PostgreSQL database.
    pub fn mfa_database_url(&self) -> String {
        if let Some(url) = &self.mfa_database_url {
            return url.clone();
        }
        if let Some(directory) = self.database_directory() {
            return format!("sqlite://{}", directory.join("mfa.db").display());
        }
        if self.database_in_memory() {
            return "sqlite::memory:".to_owned();
        }
        mfa::store::postgres_schema_url(&self.database_url, "mfa")
    }

    /// Whether the session cookie is marked `Secure`: with `--cookie-secure`, or when the
    /// server speaks TLS itself.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure || self.tls_enabled()
    }

    /// Where the server key file is: `--server-key-file`, else `server.key` next to the
    /// SQLite file, else `data/server.key`.
    pub fn server_key_path(&self) -> PathBuf {
        if let Some(path) = &self.server_key_file {
            return path.clone();
        }
        match self.database_directory() {
            Some(directory) => directory.join(DEFAULT_SERVER_KEY_FILE),
            None => Path::new("data").join(DEFAULT_SERVER_KEY_FILE),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_server_key_lives_next_to_the_database_by_default() {
        let mut config = Config::new("sqlite://data/chat.db", "dist");
        assert_eq!(config.server_key_path(), Path::new("data/server.key"));
        config.database_url = "sqlite:///var/lib/chat/chat.db".to_owned();
        assert_eq!(
            config.server_key_path(),
            Path::new("/var/lib/chat/server.key")
        );
        config.database_url = "sqlite::memory:".to_owned();
        assert_eq!(config.server_key_path(), Path::new("data/server.key"));
        config.server_key_file = Some("/etc/chat/key".into());
        assert_eq!(config.server_key_path(), Path::new("/etc/chat/key"));
    }

    #[test]
    fn flags_parse_and_the_defaults_match_new() {
        let parsed = Config::try_parse_from(["server", "--database-url", "sqlite://x.db"]).unwrap();
        let built = Config::new("sqlite://x.db", "web-client/dist");
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
    }

    #[test]
    fn in_process_factors_live_beside_the_chat_database() {
        let mut config = Config::new("sqlite://data/chat.db", "dist");
        assert_eq!(config.mfa_database_url(), "sqlite://data/mfa.db");
        config.database_url = "sqlite::memory:".to_owned();
        assert_eq!(config.mfa_database_url(), "sqlite::memory:");
        config.database_url = "postgres://chat@db/chat".to_owned();
        assert_eq!(
            config.mfa_database_url(),
            "postgres://chat@db/chat?options=-c%20search_path%3Dmfa"
        );
        config.mfa_database_url = Some("sqlite:///srv/mfa.db".to_owned());
        assert_eq!(config.mfa_database_url(), "sqlite:///srv/mfa.db");
    }

    #[test]
    fn the_remote_service_needs_its_three_files() {
        let partial = Config::try_parse_from([
            "server",
            "--mfa-url",
            "https://mfa.internal:8443",
            "--mfa-ca",
            "ca.pem",
        ]);
        assert!(partial.is_err());
        let full = Config::try_parse_from([
            "server",
            "--mfa-url",
            "https://mfa.internal:8443",
            "--mfa-ca",
            "ca.pem",
            "--mfa-client-cert",
            "chat.pem",
            "--mfa-client-key",
            "chat.key",
        ])
        .unwrap();
        assert!(full.mfa_url.is_some());
        let without_url = Config::try_parse_from(["server", "--mfa-ca", "ca.pem"]);
        assert!(without_url.is_err());
    }

    #[test]
    fn tls_needs_both_files() {
        let only_cert = Config::try_parse_from(["server", "--tls-cert", "cert.pem"]);
        assert!(only_cert.is_err());
        let both = Config::try_parse_from(["server", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap();
        assert!(both.tls_enabled());
    }

    #[test]
    fn debug_never_prints_the_server_key() {
        let key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let config = Config::try_parse_from(["server", "--server-key", key]).unwrap();
        assert!(config.server_key.is_some());
        let printed = format!("{config:?}");
        assert!(!printed.contains(key), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
    }
}
