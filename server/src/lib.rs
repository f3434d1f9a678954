//! The chat server: accounts, rooms, membership logs, key envelopes and ciphertext over a JSON
//! HTTP API, with live events over a WebSocket, stored in SQLite (one instance) or PostgreSQL
//! (several instances behind a load balancer, which relay events to each other through
//! [`relay`]).
//!
//! The server never sees a password, a room key or a plaintext message. It checks everything
//! it can check without them: the self-signature of identities, the replay of each room's
//! signed membership log, the signatures of key envelopes, and who may read or write a room.
//!
//! Accounts are guarded by the auth key, optionally a second factor (a TOTP code or a
//! passkey: [`routes::totp`], [`routes::passkeys`], kept by the `mfa` store in this process
//! or in `mfa-service`, see [`factors`]) and a list of trusted networks, with login throttling, history and new-network notices
//! ([`routes::login`], [`routes::account`]); sessions can be listed and revoked
//! ([`routes::sessions`]), which closes their WebSockets. Every response carries the
//! security headers of [`headers`]; with `--tls-cert` and `--tls-key` the server speaks
//! HTTPS itself ([`tls`]).
//!
//! [`Application::build`] opens the database, runs the migrations and binds the listener;
//! [`router`] builds the routes for an [`AppState`], so tests can run the real app on port 0.

pub mod blobs;
pub mod client;
pub mod config;
pub mod error;
pub mod extract;
pub mod factors;
pub mod fuzzing;
pub mod headers;
pub mod hub;
pub mod membership_cache;
pub mod origin;
pub mod password;
pub mod relay;
pub mod routes;
pub mod session;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::HandlerWithoutStateExt;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::blobs::BlobStore;
use crate::config::AttachmentStore;
pub use crate::config::Config;
use crate::headers::SecurityHeaders;
use crate::hub::Hub;
use crate::membership_cache::MembershipCache;
use crate::store::secrets::ServerSecret;
use crate::throttle::LoginThrottle;
use crate::tls::TlsError;
use crate::writer::MessageWriter;
use mfa::{SecondFactors, ServerKeyError};

/// Largest request body the API accepts, in bytes (256 KiB); larger bodies get a JSON 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long one API request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a request handler needs, cloned cheaply into each request.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: AnyPool,
    /// Open WebSocket connections, by username.
    pub hub: Hub,
    /// The settings the server started with.
    pub config: Arc<Config>,
    /// The server's own 32-byte secret (keys the fake salts of unknown usernames).
    pub secret: ServerSecret,
    /// Second factors: in this process, or the remote service ([`factors`]).
    pub factors: Arc<dyn SecondFactors>,
    /// Attempt counters of logins and code checks.
    pub throttle: Arc<LoginThrottle>,
    /// An Argon2id PHC string of a random key, verified against when a login names an
    /// unknown user so that the answer takes as long as for a known one.
    pub dummy_auth_hash: Arc<str>,
    /// Where attachment chunks are stored.
    pub blobs: BlobStore,
    /// The group-commit writer messages are stored through.
    pub writer: MessageWriter,
    /// Who may post to which room, kept true by the membership log.
    pub membership: MembershipCache,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database URL does not parse.
    #[error("invalid database url")]
    DatabaseUrl(#[source] sqlx::Error),
    /// The database URL names neither SQLite nor PostgreSQL.
    #[error("the database url must start with sqlite:, postgres:// or postgresql://")]
    DatabaseScheme,
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
    /// The server key could not be read or created.
    #[error("cannot load the server key")]
    ServerKey(#[from] ServerKeyError),
    /// The TLS certificate or key could not be loaded.
    #[error("cannot set up tls")]
    Tls(#[from] TlsError),
    /// The second-factor store could not be opened.
    #[error("cannot open the second-factor store")]
    Factors(#[from] mfa::MfaError),
    /// The second-factor service's certificates or URL are unusable.
    #[error("cannot set up the second-factor service client")]
    RemoteFactors(#[from] mfa::remote::RemoteSetupError),
    /// Second factors an older version left in the chat database could not be read or
    /// deleted.
    #[error("cannot move the second factors of the chat database")]
    Legacy(#[source] crate::error::ApiError),
    /// The chat database still holds second factors of an older version, which a remote
    /// store cannot take.
    #[error(
        "the chat database still holds second factors of {0} accounts: start once without \
         --mfa-url to move them into the in-process store, then move that store and the \
         server key to the service (see the deploy guide)"
    )]
    OldFactors(i64),
    /// The attachment store could not be opened.
    #[error("cannot open the attachment store")]
    Blobs(#[from] blobs::BlobError),
}

/// A server that is bound and migrated, ready to run.
pub struct Application {
    hub: Hub,
    membership: MembershipCache,
    listener: TcpListener,
    port: u16,
    router: Router,
    tls: Option<RustlsConfig>,
}

impl Application {
    /// Loads the TLS files if configured, opens (creating if needed) and migrates the
    /// database, loads or creates the server secret and the server key, and binds the
    /// listener.
    ///
    /// # Errors
    /// [`StartupError`] naming the step that failed.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::load(cert, key)?),
            (None, None) => None,
            _ => return Err(TlsError::Incomplete.into()),
        };
        let pool = store::connect(&config.database_url).await?;
        let membership = MembershipCache::default();
        let hub = match store::Backend::of(&config.database_url)? {
            store::Backend::Sqlite => {
                tokio::spawn(store::checkpoint_periodically(pool.clone()));
                Hub::default()
            }
            store::Backend::Postgres => {
                // Listening before serving: nothing announced after this is missed.
                let listener = relay::listener(&config.database_url).await?;
                let (publisher, outbox) = relay::publisher();
                let hub = Hub::relayed(publisher.clone());
                tokio::spawn(relay::publish(pool.clone(), outbox));
                tokio::spawn(relay::listen(
                    config.database_url.clone(),
                    listener,
                    relay::Recipients {
                        pool: pool.clone(),
                        hub: hub.clone(),
                        membership: membership.clone(),
                        origin: publisher.origin(),
                    },
                ));
                hub
            }
        };
        let secret = store::secrets::load_or_create(&pool).await?;
        let factors = factors::start(&config, &pool).await?;
        let dummy_auth_hash = password::dummy_hash().await?;
        let blobs = match config.attachment_store() {
            AttachmentStore::Folder(folder) => BlobStore::local(&folder)?,
            AttachmentStore::Memory => BlobStore::memory(),
            AttachmentStore::Url(url) => BlobStore::from_url(&url)?,
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(StartupError::Bind)?;
        let port = listener.local_addr().map_err(StartupError::Bind)?.port();
        let throttle = LoginThrottle::new(config.login_attempts, config.login_window())
            .with_registrations(config.register_attempts);
        let state = AppState {
            writer: MessageWriter::start(pool.clone(), hub.clone(), membership.clone()),
            pool,
            hub,
            config: Arc::new(config),
            secret,
            factors,
            throttle: Arc::new(throttle),
            dummy_auth_hash: dummy_auth_hash.into(),
            blobs,
            membership,
        };
        let period = state.config.attachment_collect_period();
        routes::attachments::spawn_collector(state.clone(), period);
        Ok(Self {
            hub: state.hub.clone(),
            membership: state.membership.clone(),
            listener,
            port,
            router: router(state),
            tls,
        })
    }

    /// The port the listener is bound to (useful when the configured port was 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance's membership cache (shared with its handlers): for tests and
    /// diagnostics.
    pub fn membership_cache(&self) -> MembershipCache {
        self.membership.clone()
    }

    /// Serves requests until the process ends.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Whether the server speaks HTTPS and WSS itself.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves requests (over TLS when configured) until `shutdown` completes, then drains:
    /// stops accepting connections, closes every WebSocket with
    /// [`hub::RESTART_CLOSE_CODE`] (clients reconnect, through a load balancer to another
    /// instance), and waits for the requests in flight (with TLS at most
    /// [`REQUEST_TIMEOUT`]). Handlers see the peer address as `ConnectInfo<SocketAddr>`.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let hub = self.hub;
        let shutdown = async move {
            shutdown.await;
            let closed = hub.close_all();
            tracing::info!(
                websockets = closed,
                "draining: websockets told to reconnect"
            );
        };
        let Some(tls) = self.tls else {
            return axum::serve(self.listener, service)
                .with_graceful_shutdown(shutdown)
                .await;
        };
        let handle = axum_server::Handle::<SocketAddr>::new();
        let shutdown_handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            shutdown_handle.graceful_shutdown(Some(REQUEST_TIMEOUT));
        });
        axum_server::Server::from_listener(self.listener)
            .acceptor(RustlsAcceptor::new(tls))
            .handle(handle)
            .serve(service)
            .await
    }
}

/// The web client's files in `static_dir`. A path that names no file gets `index.html`, so
/// that the client's own routing works, unless its last segment has an extension (a `.wasm`,
/// `.js` or `.css` of a build): that gets 404, so that a tab of an older build asking for a
/// chunk the new build no longer has is told so, rather than handed the page.
fn static_files(static_dir: &std::path::Path) -> Router {
    let index = static_dir.join("index.html");
    let page_or_not_found = move |request: Request| {
        let index = index.clone();
        async move {
            let last_segment = request.uri().path().rsplit('/').next().unwrap_or_default();
            if last_segment.contains('.') {
                return StatusCode::NOT_FOUND.into_response();
            }
            match ServeFile::new(index).oneshot(request).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }
    };
    Router::new()
        .fallback_service(ServeDir::new(static_dir).fallback(page_or_not_found.into_service()))
}

/// Builds every route: the JSON API under `/api` (with a request timeout, except for the
/// WebSocket), `/healthz`, and the web client's static files for every other path (see
/// [`static_files`]).
///
/// Every response carries the security headers of [`SecurityHeaders`], whose Content
/// Security Policy allows the inline scripts of `index.html` as it is now.
pub fn router(state: AppState) -> Router {
    let static_dir = state.config.static_dir.clone();
    let security_headers = Arc::new(SecurityHeaders::for_static_dir(&static_dir));
    let static_files = static_files(&static_dir);
    let api = Router::new()
        .merge(routes::accounts::router())
        .merge(routes::login::router())
        .merge(routes::totp::router())
        .merge(routes::passkeys::router())
        .merge(routes::sessions::router())
        .merge(routes::account::router())
        .merge(routes::rooms::router())
        .merge(routes::messages::router())
        .merge(routes::join_requests::router())
        .merge(routes::client_state::router())
        .merge(routes::attachments::router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(routes::ws::router())
        .merge(routes::health::router())
        .merge(routes::openapi::router())
        .route("/api", any(error::api_not_found))
        .route("/api/{*rest}", any(error::api_not_found))
        .layer(axum::middleware::from_fn(origin::require_same_origin))
        .layer(axum::middleware::map_response(error::json_error_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .merge(api)
        .fallback_service(static_files)
        .layer(axum::middleware::map_response(move |response| {
            let security_headers = security_headers.clone();
            async move { security_headers.apply(response) }
        }))
        // Ciphertext does not compress, and a compressed 206 would not match its range.
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream")),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
