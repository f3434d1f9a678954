//! The chat server: accounts, rooms, membership logs, key envelopes and ciphertext over a JSON
//! HTTP API, with live events over a WebSocket, stored in SQLite.
//!
//! The server never sees a password, a room key or a plaintext message. It checks everything
//! it can check without them: the self-signature of identities, the replay of each room's
//! signed membership log, the signatures of key envelopes, and who may read or write a room.
//!
//! [`Application::build`] opens the database, runs the migrations and binds the listener;
//! [`router`] builds the routes for an [`AppState`], so tests can run the real app on port 0.

pub mod error;
pub mod extract;
pub mod hub;
pub mod password;
pub mod routes;
pub mod session;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::any;
use axum::Router;
use clap::Parser;
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::hub::Hub;
use crate::store::secrets::ServerSecret;

/// Largest request body the API accepts, in bytes (256 KiB); larger bodies get a JSON 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long one API request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Server settings, read from command-line flags or `CHAT_*` environment variables.
#[derive(Debug, Clone, Parser)]
#[command(name = "server", about = "End-to-end encrypted group chat server")]
pub struct Config {
    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// SQLite database URL; the file and its parent directory are created when missing.
    #[arg(
        long,
        env = "CHAT_DATABASE_URL",
        default_value = "sqlite://data/chat.db"
    )]
    pub database_url: String,
    /// Directory of the built web client, served for every path outside `/api`.
    #[arg(long, env = "CHAT_STATIC_DIR", default_value = "web-client/dist")]
    pub static_dir: PathBuf,
    /// How long a login session lasts, in hours.
    #[arg(long, env = "CHAT_SESSION_TTL_HOURS", default_value_t = 720)]
    pub session_ttl_hours: u64,
}

impl Config {
    /// The session lifetime as a duration.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_hours.saturating_mul(3600))
    }
}

/// Everything a request handler needs, cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: SqlitePool,
    /// Open WebSocket connections, by username.
    pub hub: Hub,
    /// The settings the server started with.
    pub config: Arc<Config>,
    /// The server's own 32-byte secret (keys the fake salts of unknown usernames).
    pub secret: ServerSecret,
    /// An Argon2id PHC string of a random key, verified against when a login names an
    /// unknown user so that the answer takes as long as for a known one.
    pub dummy_auth_hash: Arc<str>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database URL does not parse.
    #[error("invalid database url")]
    DatabaseUrl(#[source] sqlx::Error),
    /// The database directory could not be created.
    #[error("cannot create the database directory")]
    DatabaseDirectory(#[source] std::io::Error),
    /// The database could not be opened or queried.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The listening socket could not be bound.
    #[error("cannot bind the listening socket")]
    Bind(#[source] std::io::Error),
    /// The dummy password hash could not be computed.
    #[error("cannot prepare the password hasher")]
    PasswordHash(#[from] password::PasswordError),
}

/// A server that is bound and migrated, ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
}

impl Application {
    /// Opens (creating if needed) and migrates the database, loads or creates the server
    /// secret, and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] naming the step that failed.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let pool = store::connect(&config.database_url).await?;
        let secret = store::secrets::load_or_create(&pool).await?;
        let dummy_auth_hash = password::dummy_hash().await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(StartupError::Bind)?;
        let port = listener.local_addr().map_err(StartupError::Bind)?.port();
        let state = AppState {
            pool,
            hub: Hub::default(),
            config: Arc::new(config),
            secret,
            dummy_auth_hash: dummy_auth_hash.into(),
        };
        Ok(Self {
            listener,
            port,
            router: router(state),
        })
    }

    /// The port the listener is bound to (useful when the configured port was 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves requests until the process ends.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves requests until `shutdown` completes, then stops accepting connections and
    /// waits for the requests in flight.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Builds every route: the JSON API under `/api` (with a request timeout, except for the
/// WebSocket), `/healthz`, and the web client's static files for every other path, where
/// unknown paths get `index.html` so the client's own routing works.
pub fn router(state: AppState) -> Router {
    let static_dir = state.config.static_dir.clone();
    let static_files =
        ServeDir::new(&static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
    let api = Router::new()
        .merge(routes::accounts::router())
        .merge(routes::rooms::router())
        .merge(routes::messages::router())
        .merge(routes::join_requests::router())
        .merge(routes::pins::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(routes::ws::router())
        .route("/api", any(error::api_not_found))
        .route("/api/{*rest}", any(error::api_not_found))
        .layer(axum::middleware::map_response(error::json_error_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .merge(api)
        .merge(routes::health::router())
        .fallback_service(static_files)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
