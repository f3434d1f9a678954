//! The test harness: a real server on port 0 with a fresh database per test (SQLite, or a
//! new database on the PostgreSQL server that `CHAT_TEST_POSTGRES_URL` names), one
//! method per endpoint, and the client-side crypto (done with `common`) that real users do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use common::account::{derive_account_keys, KdfParams};
use common::api::endpoints::{
    AppendLog, BodyKind, CreateRoom, Endpoint, GetClientState, GetEnvelopes, GetLog,
    ListJoinRequests, ListMessages, ListRooms, Login, Logout, Me, Method, PostMessage, Prelogin,
    PutClientState, PutEnvelopes, RefuseJoinRequest, Register, RequestKey, RequestToJoin, Session,
    UserIdentity,
};
use common::api::{
    AppendLogRequest, CreateRoomRequest, ErrorBody, ErrorCode, JoinRequestBody, KeyRequestBody,
    LoginRequest, PostMessageRequest, PreloginRequest, PutClientStateRequest, PutEnvelopesRequest,
    RegisterRequest,
};
use common::identity::IdentitySecrets;
use common::membership::{LogAction, Role, RoomId, RoomState, SignedLogEntry};
use common::message::{seal_message, ChainLink, InnerMessage, MessageKind};
use common::room_key::{create_room, KeyEnvelope, RoomKey, RoomMetadata};
use common::wire::{Base64, Base64Array};
use common::OsRng;
use reqwest::cookie::Jar;
use reqwest::{Client, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use server::{Application, Config};
use tempfile::TempDir;

/// Cheap Argon2id parameters (the lowest the client accepts), so tests stay fast.
pub const TEST_KDF: KdfParams = KdfParams {
    m_kib: 19_456,
    t: 2,
    p: 1,
};

/// The body of the test client's `index.html`, with one inline script as Trunk writes one.
pub const INDEX_HTML: &str = "<!doctype html><title>chat test client</title>\
<script type=\"module\">console.log(\"chat test client\");</script>";

/// The content of the inline script in [`INDEX_HTML`].
pub const INLINE_SCRIPT: &str = "console.log(\"chat test client\");";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_test_writer()
            .init();
    }
});

/// The environment variable naming a PostgreSQL server to run the tests on instead of
/// SQLite: the URL of a database of a superuser's, from which each test creates its own.
/// `cargo xtask test` runs the tests once without it and once with a throwaway server.
pub const POSTGRES_URL_VARIABLE: &str = "CHAT_TEST_POSTGRES_URL";

/// The PostgreSQL server of this run, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
}

/// Creates a new, empty database on the PostgreSQL server at `admin_url` and returns its URL.
pub async fn create_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection as _;
    let mut suffix = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut suffix);
    let name = format!("chat_test_{}", hex::encode(suffix));
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("a test database is created");
    admin.close().await.expect("connection closes");
    let mut url = url::Url::parse(admin_url).expect("the PostgreSQL URL parses");
    url.set_path(&name);
    url.to_string()
}

/// The environment variable that, set to `remote`, runs every test app with its second
/// factors in a [`TestMfaService`] over mutual TLS instead of in-process. `cargo xtask test`
/// runs the second-factor tests both ways.
pub const MFA_VARIABLE: &str = "CHAT_TEST_MFA";

/// Whether this run keeps second factors in a remote service.
pub fn remote_mfa() -> bool {
    std::env::var(MFA_VARIABLE).is_ok_and(|value| value == "remote")
}

/// A second-factor service (`mfa-service`'s code) on port 0 of loopback, with its own
/// SQLite database and key in a folder of its own, and development certificates.
pub struct TestMfaService {
    /// `https://127.0.0.1:PORT`.
    pub url: url::Url,
    /// The CA, the service's and the chat server's certificates.
    pub certificates: dev_certificates::DevCertificates,
    /// The folder of its database, key and certificates.
    pub directory: TempDir,
    /// The port it listens on (kept across [`TestMfaService::stop`] and
    /// [`TestMfaService::start_again`]).
    pub port: u16,
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

impl TestMfaService {
    /// Makes certificates and starts the service.
    pub async fn start() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let certificates =
            dev_certificates::generate(&directory.path().join("tls"), "chat test CA")
                .expect("certificates");
        let mut service = Self {
            url: "https://127.0.0.1:1/".parse().expect("url"),
            certificates,
            directory,
            port: 0,
            running: None,
        };
        service.start_again().await;
        service
    }

    /// The service's settings, on `port`.
    pub fn config(&self, port: u16) -> mfa::ServiceConfig {
        mfa::ServiceConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: format!(
                "sqlite://{}",
                self.directory.path().join("mfa.db").display()
            ),
            key: None,
            key_file: Some(self.directory.path().join("mfa.key")),
            tls_cert: self.certificates.service_cert.clone(),
            tls_key: self.certificates.service_key.clone(),
            client_ca: self.certificates.ca_cert.clone(),
            webauthn_rp_id: "localhost".to_owned(),
            webauthn_origin: mfa::factors::RelyingParty::localhost().origin,
        }
    }

    /// Starts the service (again, after [`TestMfaService::stop`], on the same port and
    /// database).
    pub async fn start_again(&mut self) {
        let service = mfa::config::Service::build(self.config(self.port))
            .await
            .expect("the second-factor service starts");
        self.port = service.port();
        self.url = format!("https://127.0.0.1:{}/", self.port)
            .parse()
            .expect("url");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(service.run_until(async {
            let _ = stopped.await;
        }));
        self.running = Some((stop, task));
    }

    /// Stops the service and waits until it no longer listens.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Points a chat server's configuration at this service.
    pub fn configure(&self, config: &mut Config) {
        config.mfa_url = Some(self.url.clone());
        config.mfa_ca = Some(self.certificates.ca_cert.clone());
        config.mfa_client_cert = Some(self.certificates.client_cert.clone());
        config.mfa_client_key = Some(self.certificates.client_key.clone());
    }

    /// The files of its SQLite database.
    pub fn database_files(&self) -> Vec<PathBuf> {
        ["mfa.db", "mfa.db-wal", "mfa.db-shm"]
            .iter()
            .map(|name| self.directory.path().join(name))
            .filter(|path| path.exists())
            .collect()
    }
}

/// A running server and the directory holding its database (or, on PostgreSQL, its server
/// key and attachments) and static files.
pub struct TestApp {
    /// The URL of the app's database.
    pub database_url: String,
    /// `http://127.0.0.1:PORT` (`https://` when the app serves TLS).
    pub address: String,
    /// The port the server listens on.
    pub port: u16,
    /// The directory of the database; deleted when the app is dropped.
    pub directory: TempDir,
    /// A client without a session.
    pub anonymous: Client,
    /// The instance's membership cache.
    pub membership: server::membership_cache::MembershipCache,
    /// The second-factor service of a remote run ([`remote_mfa`]), or of a test that
    /// started one with [`spawn_app_with_mfa_service`].
    pub mfa: Option<TestMfaService>,
    /// Completing this starts a graceful shutdown of the server.
    shutdown: tokio::sync::oneshot::Sender<()>,
    /// The task serving requests.
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A registered user with their secrets and their own cookie-keeping client.
pub struct TestUser {
    /// The account name.
    pub username: String,
    /// The password (never sent to the server).
    pub password: String,
    /// The auth key derived from the password.
    pub auth_key: [u8; 32],
    /// The identity secrets.
    pub secrets: IdentitySecrets,
    /// A client with this user's cookies.
    pub client: Client,
    /// The client's cookie jar, to copy the session cookie onto WebSocket handshakes.
    pub jar: Arc<Jar>,
}

/// A room as its creator's client knows it.
pub struct TestRoom {
    /// The room id.
    pub room_id: RoomId,
    /// The replayed log.
    pub state: RoomState,
    /// The current epoch's key.
    pub key: RoomKey,
    /// Every epoch's key, by epoch.
    pub keys: BTreeMap<u64, RoomKey>,
}

impl TestRoom {
    /// The id as it appears in URLs.
    pub fn hex(&self) -> String {
        self.room_id.to_hex()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

/// A client that keeps cookies in `jar`.
pub fn client_with_jar(jar: Arc<Jar>) -> Client {
    Client::builder()
        .cookie_provider(jar)
        .build()
        .expect("reqwest client builds")
}

/// Starts the app with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with its second factors in a new [`TestMfaService`], whatever
/// [`MFA_VARIABLE`] says.
pub async fn spawn_app_with_mfa_service() -> TestApp {
    let service = TestMfaService::start().await;
    let mut app = spawn_app_with(|config| service.configure(config)).await;
    app.mfa = Some(service);
    app
}

/// Starts the app after letting `customize` change the configuration.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    LazyLock::force(&TRACING);
    let directory = tempfile::tempdir().expect("temporary directory");
    let static_dir = directory.path().join("static");
    std::fs::create_dir_all(&static_dir).expect("static directory");
    std::fs::write(static_dir.join("index.html"), INDEX_HTML).expect("index.html");
    let data = directory.path().join("db");
    let database_url = match postgres_url() {
        Some(admin_url) => create_postgres_database(&admin_url).await,
        None => format!("sqlite://{}", data.join("chat.db").display()),
    };
    let mut config = Config::new(database_url.clone(), static_dir);
    if database_url.starts_with("postgres") {
        // What SQLite keeps next to its file, kept in the same folder.
        std::fs::create_dir_all(&data).expect("data directory");
        keep_files_in(&mut config, &data);
    }
    config.bind = "127.0.0.1:0".parse().expect("address");
    // Tests choose their client address with this header.
    config.client_ip_header = Some(reqwest::header::HeaderName::from_static("x-forwarded-for"));
    // Tests register many accounts from one address; the throttle test sets its own limit.
    config.register_attempts = 10_000;
    let mut mfa = None;
    if remote_mfa() {
        let service = TestMfaService::start().await;
        service.configure(&mut config);
        mfa = Some(service);
    }
    customize(&mut config);
    if config.mfa_url.as_ref() != mfa.as_ref().map(|service: &TestMfaService| &service.url) {
        // Started above, but the test chose otherwise.
        mfa = None;
    }
    let database_url = config.database_url.clone();
    let application = Application::build(config).await.expect("app builds");
    let port = application.port();
    let membership = application.membership_cache();
    let scheme = if application.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(application.run_until(async {
        let _ = shutdown_signal.await;
    }));
    TestApp {
        database_url,
        address: format!("{scheme}://127.0.0.1:{port}"),
        port,
        directory,
        anonymous: Client::new(),
        membership,
        mfa,
        shutdown,
        server,
    }
}

/// A second instance of `app`'s deployment: another server on the same PostgreSQL database,
/// with the same server key and attachment store (as the instances behind a load balancer
/// share them).
pub async fn spawn_instance_of(app: &TestApp) -> TestApp {
    assert!(app.on_postgres(), "several instances need PostgreSQL");
    let data = app.directory.path().join("db");
    let database_url = app.database_url.clone();
    spawn_app_with(|config| {
        config.database_url = database_url;
        keep_files_in(config, &data);
        // The same second-factor store: the first instance's service, or the schema of
        // the shared database.
        match &app.mfa {
            Some(service) => service.configure(config),
            None => config.mfa_url = None,
        }
    })
    .await
}

/// Points the server key file and the attachment store of `config` into `data`.
fn keep_files_in(config: &mut Config, data: &std::path::Path) {
    config.server_key_file = Some(data.join("server.key"));
    let attachments =
        url::Url::from_directory_path(data.join("attachments")).expect("an absolute folder");
    config.attachments_url = Some(attachments.to_string());
}

/// On PostgreSQL, a superuser connection to the test server and the name of `app`'s
/// database, as an operator editing it would have them; `None` on SQLite.
pub async fn postgres_admin(app: &TestApp) -> Option<(sqlx::PgConnection, String)> {
    use sqlx::Connection as _;
    let admin_url = postgres_url().filter(|_| app.on_postgres())?;
    let name = app
        .database_url
        .rsplit('/')
        .next()
        .expect("a database name")
        .to_owned();
    let admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("the test PostgreSQL server answers");
    Some((admin, name))
}

/// The reqwest form of an endpoint's method.
pub fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// Reads a JSON body, panicking with the status and text when it does not parse.
pub async fn json<T: DeserializeOwned>(response: Response) -> T {
    let status = response.status();
    let text = response.text().await.expect("response body");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{status} {text:?}: {error}"))
}

/// Checks the status of an error response and returns its `error` message.
pub async fn error_message(response: Response, expected: StatusCode) -> String {
    error_body(response, expected).await.error
}

/// Checks the status of an error response and returns its `code`.
pub async fn error_code(response: Response, expected: StatusCode) -> ErrorCode {
    error_body(response, expected).await.code
}

/// Checks the status of an error response and that its body is an [`ErrorBody`] with a
/// message and a known code of that status, and returns the body.
pub async fn error_body(response: Response, expected: StatusCode) -> ErrorBody {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("response body");
    assert_eq!(status, expected, "body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "{status} with content type {content_type:?}: {text}"
    );
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
    assert!(!body.error.is_empty());
    assert!(
        !body.error.ends_with('.'),
        "{:?} ends with a period",
        body.error
    );
    assert_ne!(body.code, ErrorCode::Unknown, "{text}");
    assert_eq!(body.code.status(), status.as_u16(), "{text}");
    body
}

impl TestApp {
    /// Asks the server to shut down and waits (at most five seconds) until it has.
    pub async fn shut_down(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), self.server)
            .await
            .expect("the server stops within five seconds")
            .expect("the server task does not panic")
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Whether the app runs on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// The files holding the database: on SQLite, the file and its WAL and shared-memory
    /// companions; on PostgreSQL, after a checkpoint, the file of every table, index and
    /// TOAST table of the app's database (the server's write-ahead log, shared by every
    /// test database, is not included).
    pub async fn database_files(&self) -> Vec<PathBuf> {
        if self.on_postgres() {
            let database = self.database().await;
            sqlx::query("CHECKPOINT")
                .execute(&database)
                .await
                .expect("checkpoint");
            let data_directory: String = sqlx::query_scalar("SHOW data_directory")
                .fetch_one(&database)
                .await
                .expect("data directory");
            let files: Vec<String> = sqlx::query_scalar(
                "SELECT pg_relation_filepath(oid) FROM pg_class \
                 WHERE pg_relation_filepath(oid) IS NOT NULL",
            )
            .fetch_all(&database)
            .await
            .expect("relation files");
            return files
                .into_iter()
                .map(|file| PathBuf::from(&data_directory).join(file))
                .filter(|path| path.exists())
                .collect();
        }
        let database = self.directory.path().join("db");
        [
            "chat.db",
            "chat.db-wal",
            "chat.db-shm",
            "mfa.db",
            "mfa.db-wal",
            "mfa.db-shm",
        ]
        .iter()
        .map(|name| database.join(name))
        .filter(|path| path.exists())
        .collect()
    }

    /// Every (table, column) of the app's schema but the migrations' own table, and but
    /// PostgreSQL's `rowid` columns (SQLite has one in every table without saying so).
    pub async fn columns(&self) -> BTreeSet<(String, String)> {
        let database = self.database().await;
        let query = if self.on_postgres() {
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_name <> 'rowid'"
        } else {
            "SELECT sqlite_master.name, columns.name FROM sqlite_master \
             JOIN pragma_table_info(sqlite_master.name) AS columns \
             WHERE sqlite_master.type = 'table'"
        };
        let rows: Vec<(String, String)> = sqlx::query_as(query)
            .fetch_all(&database)
            .await
            .expect("schema");
        rows.into_iter()
            .filter(|(table, _)| table != "_sqlx_migrations" && table != "sqlite_sequence")
            .collect()
    }

    /// `GET path` with `client`.
    pub async fn get(&self, client: &Client, path: &str) -> Response {
        client
            .get(self.url(path))
            .send()
            .await
            .expect("request is sent")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, client: &Client, path: &str, body: &impl Serialize) -> Response {
        client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request is sent")
    }

    /// `POST path` with a raw body and optional content type.
    pub async fn post_raw(
        &self,
        client: &Client,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Response {
        let mut request = client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        request.send().await.expect("request is sent")
    }

    /// Calls endpoint `E` with `values` for its path parameters, unchecked and in template
    /// order (so a test can send malformed ones), and `body` when it takes JSON.
    pub async fn call<E: Endpoint>(
        &self,
        client: &Client,
        values: &[&str],
        body: &E::Request,
    ) -> Response {
        self.call_at::<E>(client, &E::INFO.render_path(values), body)
            .await
    }

    /// Calls endpoint `E` at `path` (its path, perhaps with a query).
    async fn call_at<E: Endpoint>(
        &self,
        client: &Client,
        path: &str,
        body: &E::Request,
    ) -> Response {
        self.request::<E>(client, path, body)
            .send()
            .await
            .expect("request is sent")
    }

    /// A request of endpoint `E` to `path`, with `body` when it takes JSON.
    pub fn request<E: Endpoint>(
        &self,
        client: &Client,
        path: &str,
        body: &E::Request,
    ) -> reqwest::RequestBuilder {
        let request = client.request(reqwest_method(E::INFO.method), self.url(path));
        if E::INFO.request_body == BodyKind::Json {
            request.json(body)
        } else {
            request
        }
    }

    /// `POST /api/register`.
    pub async fn register(&self, client: &Client, body: &RegisterRequest) -> Response {
        self.call::<Register>(client, &[], body).await
    }

    /// `POST /api/prelogin`.
    pub async fn prelogin(&self, client: &Client, username: &str) -> Response {
        let body = PreloginRequest {
            username: username.to_owned(),
        };
        self.call::<Prelogin>(client, &[], &body).await
    }

    /// `POST /api/login`.
    pub async fn login(&self, client: &Client, username: &str, auth_key: [u8; 32]) -> Response {
        let body = LoginRequest {
            username: username.to_owned(),
            auth_key: Base64Array(auth_key),
        };
        self.call::<Login>(client, &[], &body).await
    }

    /// `POST /api/logout`.
    pub async fn logout(&self, client: &Client) -> Response {
        self.call::<Logout>(client, &[], &()).await
    }

    /// `GET /api/me`.
    pub async fn me(&self, client: &Client) -> Response {
        self.call::<Me>(client, &[], &()).await
    }

    /// `GET /api/session`.
    pub async fn session_status(&self, client: &Client) -> Response {
        self.call::<Session>(client, &[], &()).await
    }

    /// `GET /api/users/{username}`.
    pub async fn user_identity(&self, client: &Client, username: &str) -> Response {
        self.call::<UserIdentity>(client, &[username], &()).await
    }

    /// `POST /api/rooms`.
    pub async fn create_room(&self, client: &Client, body: &CreateRoomRequest) -> Response {
        self.call::<CreateRoom>(client, &[], body).await
    }

    /// `GET /api/rooms`.
    pub async fn list_rooms(&self, client: &Client) -> Response {
        self.call::<ListRooms>(client, &[], &()).await
    }

    /// `GET /api/rooms/{room}/log`.
    pub async fn get_log(&self, client: &Client, room: &str) -> Response {
        self.call::<GetLog>(client, &[room], &()).await
    }

    /// `POST /api/rooms/{room}/log`.
    pub async fn append_log(
        &self,
        client: &Client,
        room: &str,
        entry: &SignedLogEntry,
    ) -> Response {
        self.append_log_with(client, room, entry, Vec::new()).await
    }

    /// `POST /api/rooms/{room}/log` with key envelopes stored together with the entry.
    pub async fn append_log_with(
        &self,
        client: &Client,
        room: &str,
        entry: &SignedLogEntry,
        envelopes: Vec<KeyEnvelope>,
    ) -> Response {
        let body = AppendLogRequest {
            entry: Base64(entry.as_bytes().to_vec()),
            envelopes,
        };
        self.call::<AppendLog>(client, &[room], &body).await
    }

    /// `POST /api/rooms/{room}/envelopes`.
    pub async fn put_envelopes(
        &self,
        client: &Client,
        room: &str,
        envelopes: Vec<KeyEnvelope>,
    ) -> Response {
        let body = PutEnvelopesRequest { envelopes };
        self.call::<PutEnvelopes>(client, &[room], &body).await
    }

    /// `GET /api/rooms/{room}/envelopes`.
    pub async fn get_envelopes(&self, client: &Client, room: &str) -> Response {
        self.call::<GetEnvelopes>(client, &[room], &()).await
    }

    /// `GET /api/rooms/{room}/messages?{query}`.
    pub async fn get_messages(&self, client: &Client, room: &str, query: &str) -> Response {
        let path = ListMessages::INFO.render_path(&[room]);
        self.call_at::<ListMessages>(client, &format!("{path}?{query}"), &())
            .await
    }

    /// `POST /api/rooms/{room}/messages`.
    pub async fn post_message(
        &self,
        client: &Client,
        room: &str,
        body: &PostMessageRequest,
    ) -> Response {
        self.call::<PostMessage>(client, &[room], body).await
    }

    /// `POST /api/rooms/{room}/join-requests` with `token`.
    pub async fn request_to_join(&self, client: &Client, room: &str, token: &[u8]) -> Response {
        let body = JoinRequestBody {
            token: Base64(token.to_vec()),
        };
        self.call::<RequestToJoin>(client, &[room], &body).await
    }

    /// `GET /api/rooms/{room}/join-requests`.
    pub async fn list_join_requests(&self, client: &Client, room: &str) -> Response {
        self.call::<ListJoinRequests>(client, &[room], &()).await
    }

    /// `DELETE /api/rooms/{room}/join-requests/{username}`.
    pub async fn refuse_join_request(
        &self,
        client: &Client,
        room: &str,
        username: &str,
    ) -> Response {
        self.call::<RefuseJoinRequest>(client, &[room, username], &())
            .await
    }

    /// `POST /api/rooms/{room}/key-requests` for `epoch`.
    pub async fn request_key(&self, client: &Client, room: &str, epoch: u64) -> Response {
        let body = KeyRequestBody { epoch };
        self.call::<RequestKey>(client, &[room], &body).await
    }

    /// `GET /api/me/state`.
    pub async fn get_client_state(&self, client: &Client) -> Response {
        self.call::<GetClientState>(client, &[], &()).await
    }

    /// `PUT /api/me/state`.
    pub async fn put_client_state(
        &self,
        client: &Client,
        body: &PutClientStateRequest,
    ) -> Response {
        self.call::<PutClientState>(client, &[], body).await
    }

    /// A second connection to the app's database, as a malicious operator (or a test
    /// checking what is stored) would open it.
    pub async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url)
            .await
            .expect("database opens")
    }

    /// The database of the app's second-factor store: the remote service's, or the
    /// in-process one (`mfa.db` next to the chat database, or the schema `mfa` of the
    /// PostgreSQL database).
    pub async fn factor_store(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.mfa {
            Some(service) => service.config(0).database_url,
            None if self.on_postgres() => {
                mfa::store::postgres_schema_url(&self.database_url, "mfa")
            }
            None => format!(
                "sqlite://{}",
                self.directory.path().join("db").join("mfa.db").display()
            ),
        };
        sqlx::AnyPool::connect(&url)
            .await
            .expect("the second-factor store opens")
    }

    /// Rows naming `username` in the second-factor store, over all its tables.
    pub async fn factor_rows(&self, username: &str) -> i64 {
        let store = self.factor_store().await;
        let mut rows = 0;
        for table in ["user_totp", "recovery_codes", "login_challenges"] {
            let count: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE username = $1"))
                    .bind(username)
                    .fetch_one(&store)
                    .await
                    .expect("count");
            rows += count;
        }
        rows
    }

    /// The registration request a real client would send for `username` and `password`.
    pub fn registration(
        username: &str,
        password: &str,
    ) -> (RegisterRequest, [u8; 32], IdentitySecrets) {
        let salt = [7u8; 16];
        let keys = derive_account_keys(password, &salt, &TEST_KDF).expect("keys derive");
        let secrets = IdentitySecrets::generate(&mut OsRng);
        let request = RegisterRequest::new(username, TEST_KDF, salt, &keys, &secrets, &mut OsRng);
        (request, *keys.auth_key.as_bytes(), secrets)
    }

    /// Registers `username` with real keys and returns the logged-in user.
    pub async fn register_user(&self, username: &str) -> TestUser {
        let password = format!("{username} has a long passphrase");
        let (request, auth_key, secrets) = Self::registration(username, &password);
        let jar = Arc::new(Jar::default());
        let client = client_with_jar(jar.clone());
        let response = self.register(&client, &request).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        TestUser {
            username: username.to_owned(),
            password,
            auth_key,
            secrets,
            client,
            jar,
        }
    }

    /// Creates a room named `name` owned by `owner`.
    pub async fn create_test_room(&self, owner: &TestUser, name: &str) -> TestRoom {
        let new_room = create_room(
            &owner.username,
            &owner.secrets,
            &RoomMetadata::named(name),
            now_ms(),
            &mut OsRng,
        )
        .expect("room is created");
        let body = CreateRoomRequest {
            genesis: Base64(new_room.genesis.as_bytes().to_vec()),
            key_envelope: new_room.creator_envelope.clone(),
        };
        let response = self.create_room(&owner.client, &body).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        TestRoom {
            room_id: new_room.state.room_id(),
            state: new_room.state,
            keys: BTreeMap::from([(0, new_room.key.clone())]),
            key: new_room.key,
        }
    }

    /// Signs the entry by which `author` adds `new_member` with `role` (not yet sent).
    pub fn add_member_entry(
        room: &TestRoom,
        author: &TestUser,
        new_member: &TestUser,
        role: Role,
    ) -> SignedLogEntry {
        room.state
            .next_entry(
                &author.username,
                now_ms(),
                LogAction::AddMember {
                    username: new_member.username.clone(),
                    keys: new_member.secrets.public_keys(),
                    role,
                },
            )
            .sign(&author.secrets)
    }

    /// Adds `new_member` to the room as `author` would: appends the entry, then seals the
    /// current epoch's key to the new member and uploads the envelope.
    pub async fn add_member(
        &self,
        room: &mut TestRoom,
        author: &TestUser,
        new_member: &TestUser,
        role: Role,
    ) {
        let entry = Self::add_member_entry(room, author, new_member, role);
        let response = self.append_log(&author.client, &room.hex(), &entry).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        room.state.apply(&entry).expect("entry applies locally");
        let envelope = Self::envelope(room, author, new_member);
        let response = self
            .put_envelopes(&author.client, &room.hex(), vec![envelope])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::NO_CONTENT,
            "{:?}",
            response.text().await
        );
    }

    /// The current epoch's key sealed by `distributor` to `recipient`.
    pub fn envelope(room: &TestRoom, distributor: &TestUser, recipient: &TestUser) -> KeyEnvelope {
        KeyEnvelope::seal(
            &room.state,
            room.state.current_epoch(),
            &room.key,
            &recipient.username,
            &distributor.username,
            &distributor.secrets,
            &mut OsRng,
        )
        .expect("envelope seals")
    }

    /// `text` sealed by `sender` as message number `counter` of its chain in the current
    /// epoch (the server reads none of it; the chain link names a made-up predecessor).
    pub fn sealed_text(
        room: &TestRoom,
        sender: &TestUser,
        counter: u64,
        text: &str,
    ) -> PostMessageRequest {
        let chain = ChainLink {
            device: [1; 16],
            counter,
            prev_hash: if counter == 1 { [0; 32] } else { [1; 32] },
        };
        Self::post_request(room, sender, &Self::text_message(room, sender, chain, text))
    }

    /// The inner plaintext of `text` by `sender` at `chain` in the current epoch, naming the
    /// room's current log head.
    pub fn text_message(
        room: &TestRoom,
        sender: &TestUser,
        chain: ChainLink,
        text: &str,
    ) -> InnerMessage {
        InnerMessage {
            room_id: room.room_id,
            epoch: room.state.current_epoch(),
            sender: sender.username.clone(),
            chain,
            log_length: room.state.length(),
            log_head: room.state.head_hash(),
            sent_at_ms: now_ms(),
            kind: MessageKind::Text,
            body: text.as_bytes().to_vec(),
        }
    }

    /// `inner` sealed by `sender` under the room's current key, as posted.
    pub fn post_request(
        room: &TestRoom,
        sender: &TestUser,
        inner: &InnerMessage,
    ) -> PostMessageRequest {
        let sealed =
            seal_message(inner, &room.key, &sender.secrets, &mut OsRng).expect("message seals");
        PostMessageRequest {
            epoch: sealed.epoch,
            nonce: Base64Array(sealed.nonce),
            ciphertext: Base64(sealed.ciphertext),
            attachments: Vec::new(),
        }
    }
}
